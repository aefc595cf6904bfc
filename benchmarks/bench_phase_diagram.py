"""200 x 200 phase diagrams: vectorized closed form vs a loop of per-cell classifications.

Linear1D, in one run:

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

SingleNeuron (delta x product, in_dim 3) and decoupled DeepLinear (mode_init x s2, depth 3,
teacher (3, s2)): the 200 x 200 closed-form diagram (best of 3) against the per-cell path
(``method="trajectory"``: ``classify(model)`` per cell, a closed-form trajectory for the
single neuron, ``solve`` for the deep network) timed on ``--cells`` random cells (default 12
and 4; the deep network's among mode_init >= 1e-2, whose solves take seconds, not minutes)
and extrapolated; their labels are compared with the grid's.

Decoupled LinearNet (strengths a x b_strengths b, teacher diag(3, 1, 0.5), taxonomy
``linear_net``): the 200 x 200 closed-form diagram (the modes' end points, no time stepping)
against ``classify(model)`` per cell (``solve`` over the horizon) on ``--cells`` random
cells (default 6).

Run: ``python benchmarks/bench_phase_diagram.py`` (writes benchmarks/results/phase_diagram.md);
``--families single-neuron,deep-linear,linear`` for a part.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import exactdyn as ed
from exactdyn.regimes.linear1d import diagram_times


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--cells", default="12,4,6",
                    help="per-cell path: cells timed for single-neuron, deep-linear, linear")
    ap.add_argument("--families", default="linear1d,single-neuron,deep-linear,linear")
    args = ap.parse_args(argv)
    fams = args.families.split(",")
    rows = []
    if "linear1d" in fams:
        rows += bench_linear1d(args)
    cells = [int(c) for c in args.cells.split(",")]
    if "single-neuron" in fams:
        rows += bench_single_neuron(args.n, cells[0])
    if "deep-linear" in fams:
        rows += bench_deep_linear(args.n, cells[1])
    if "linear" in fams:
        rows += bench_linear_net(args.n, cells[2])
    text = "\n".join(rows) + "\n"
    print(text)
    out = os.path.join(os.path.dirname(__file__), "results", "phase_diagram.md")
    with open(out, "w") as fh:
        fh.write(text)


def _best_of(run, repeat=3):
    run()  # warm-up (imports)
    best, result = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _per_cell(pd, model_at, pick):
    """Time classify(model) on the cells ``pick`` (i, j); labels equal to the grid's."""
    t0 = time.perf_counter()
    agree = 0
    for i, j in pick:
        agree += ed.classify(model_at(i, j)).label == pd.labels[i, j]
    return (time.perf_counter() - t0) / len(pick), agree


def _table(title, n, best, per_cell, cells, agree, note):
    total = n * n
    return [
        "", f"# {n} x {n} phase diagram of {title}", "",
        "| path | time for all cells | per cell | ratio to vectorized |",
        "|---|---:|---:|---:|",
        f"| vectorized closed form (`phase_diagram`) | {best * 1e3:.1f} ms | "
        f"{best / total * 1e6:.2f} us | 1x |",
        f"| per cell: `classify(model)` (`method=\"trajectory\"`) | "
        f"{per_cell * total:,.0f} s (extrapolated) | {per_cell * 1e3:.1f} ms | "
        f"{per_cell * total / best:,.0f}x |",
        "", f"Per-cell path timed on {cells} random cells{note}; labels equal to the grid's: "
        f"{agree}/{cells}.",
    ]


def bench_single_neuron(n, cells):
    xs, ys = np.linspace(-10, 10, n), np.geomspace(1e-4, 1, n)
    fixed = {"in_dim": 3}
    best, pd = _best_of(lambda: ed.phase_diagram(ed.SingleNeuron, x=("delta", xs),
                                                 y=("product", ys), fixed=fixed))
    rng = np.random.default_rng(0)
    pick = [tuple(rng.integers(0, n, 2)) for _ in range(cells)]
    per, agree = _per_cell(pd, lambda i, j: ed.SingleNeuron(delta=xs[j], product=ys[i],
                                                            **fixed), pick)
    ag = pd.agreement()
    return _table("SingleNeuron (in_dim 3, delta x product)", n, best, per, cells, agree, "") \
        + [f"Measured = predicted on {ag['fraction']:.4f} of the {ag['compared']} cells away "
           "from a theory boundary."]


def bench_deep_linear(n, cells):
    from exactdyn.models.deep_linear import teacher_matrix

    xs, ys = np.geomspace(1e-4, 2, n), np.linspace(0.05, 3, n)
    fixed = {"sigma_yx": teacher_matrix([3.0, 1.0], 2, 2), "depth": 3, "width": 4}
    best, pd = _best_of(lambda: ed.phase_diagram(ed.DeepLinear, x=("mode_init", xs),
                                                 y=("s2", ys), fixed=fixed))
    rng = np.random.default_rng(0)
    big = np.flatnonzero(xs >= 1e-2)
    pick = [(int(rng.integers(0, n)), int(rng.choice(big))) for _ in range(cells)]
    per, agree = _per_cell(
        pd, lambda i, j: ed.DeepLinear.decoupled(3, 4, teacher_matrix([3.0, ys[i]], 2, 2),
                                                 xs[j]), pick)
    counts = ", ".join(f"{k} {v}" for k, v in pd.counts().items())
    return _table("decoupled DeepLinear (depth 3, teacher (3, s2), mode_init x s2)", n, best,
                  per, cells, agree, " among mode_init >= 1e-2") + [f"Labels: {counts}."]


def bench_linear_net(n, cells):
    xs, ys = np.geomspace(1e-4, 10, n), np.geomspace(1e-4, 10, n)
    syx = np.diag([3.0, 1.0, 0.5])
    best, pd = _best_of(lambda: ed.phase_diagram(ed.LinearNet, x=("strengths", xs),
                                                 y=("b_strengths", ys),
                                                 fixed={"sigma_yx": syx}))
    rng = np.random.default_rng(0)
    pick = [tuple(int(k) for k in rng.integers(0, n, 2)) for _ in range(cells)]
    per, agree = _per_cell(pd, lambda i, j: ed.LinearNet.decoupled(
        syx, strengths=xs[j], b_strengths=ys[i]), pick)
    counts = ", ".join(f"{k} {v}" for k, v in pd.counts().items())
    return _table("decoupled LinearNet (teacher diag(3, 1, 0.5), strengths x b_strengths)",
                  n, best, per, cells, agree, "") + [f"Labels: {counts}."]


def bench_linear1d(args):
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
        label = ed.classify(ed.exact(model, diagram_times(model))).label
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
    return [
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


if __name__ == "__main__":
    main()
