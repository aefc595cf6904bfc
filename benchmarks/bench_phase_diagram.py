"""200 x 200 phase diagram of the 1-D linear network: vectorized closed form vs a loop.

In one run:

- ``phase_diagram``: the vectorized closed-form path (all 40,000 cells as array
  expressions on the unit draw of (width, seed)), measured and predicted labels and
  every score; best of 3;
- loop baseline (what a user would otherwise write): per cell, build the model, call
  ``exact`` at 201 times (0 and 200 geometric times up to 50/K_inf, as the trajectory
  path does) and classify the trajectory. Timed on a random sample of cells
  (``--sample``, default 2000) and reported per cell and extrapolated to 40,000 cells;
  ``--full`` loops over every cell instead;
- loop of ``classify(model)`` (exact scalars per cell, no trajectory), same sample.

The labels of the sampled cells from the loop are compared with the grid's.

Run: ``python benchmarks/bench_phase_diagram.py`` (writes benchmarks/results/phase_diagram.md).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import exactdyn as ed
from exactdyn.sweep.phase_diagram import _times_for


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--full", action="store_true")
    args = ap.parse_args(argv)
    n = args.n
    xs, ys = np.geomspace(1e-3, 1e1, n), np.geomspace(1e-4, 1e2, n)
    fixed = {"width": 64, "seed": 0}
    run = lambda: ed.phase_diagram(ed.Linear1D, x=("sigma_u", xs), y=("kappa", ys),
                                   fixed=fixed)
    run()  # warm-up (imports)
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        pd = run()
        best = min(best, time.perf_counter() - t0)
    cells = [(i, j) for i in range(n) for j in range(n)]
    if not args.full:
        rng = np.random.default_rng(0)
        pick = rng.choice(len(cells), size=min(args.sample, len(cells)), replace=False)
        cells = [cells[k] for k in pick]
    t0 = time.perf_counter()
    agree = 0
    for i, j in cells:
        model = ed.Linear1D(sigma_u=xs[j], kappa=ys[i], **fixed)
        label = ed.classify(ed.exact(model, _times_for(model, None))).label
        agree += label == pd.labels[i, j]
    t_loop = (time.perf_counter() - t0) / len(cells)
    t0 = time.perf_counter()
    agree_exact = 0
    for i, j in cells:
        model = ed.Linear1D(sigma_u=xs[j], kappa=ys[i], **fixed)
        agree_exact += ed.classify(model).label == pd.labels[i, j]
    t_cls = (time.perf_counter() - t0) / len(cells)
    total = n * n
    ag = pd.agreement()
    rows = [
        f"# {n} x {n} phase diagram of Linear1D (width 64, sigma_u x kappa)",
        "",
        "| path | time for all cells | per cell | ratio to vectorized |",
        "|---|---:|---:|---:|",
        f"| vectorized closed form (`phase_diagram`) | {best * 1e3:.1f} ms | "
        f"{best / total * 1e6:.2f} us | 1x |",
        f"| loop: `exact` (201 times) + classify per cell | {t_loop * total:.1f} s"
        f"{'' if args.full else ' (extrapolated)'} | {t_loop * 1e3:.3f} ms | "
        f"{t_loop * total / best:,.0f}x |",
        f"| loop: `classify(model)` (exact scalars) per cell | {t_cls * total:.1f} s"
        f"{'' if args.full else ' (extrapolated)'} | {t_cls * 1e3:.3f} ms | "
        f"{t_cls * total / best:,.0f}x |",
        "",
        f"Loop cells timed: {len(cells)}{' (all)' if args.full else ' (random sample)'}; "
        f"labels equal to the grid's: trajectory loop {agree}/{len(cells)}, "
        f"classify loop {agree_exact}/{len(cells)}.",
        f"Agreement of measured with predicted labels away from theory boundaries: "
        f"{ag['fraction']:.4f} of {ag['compared']} cells ({len(ag['disagreements'])} "
        "disagree).",
    ]
    text = "\n".join(rows) + "\n"
    print(text)
    out = os.path.join(os.path.dirname(__file__), "results", "phase_diagram.md")
    with open(out, "w") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
