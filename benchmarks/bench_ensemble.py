"""Ensembles (issue 15, item 2): Luo et al.'s (gamma, gamma') diagram with measured RD-slope
labels, per-member path vs ensembles, in one run.

Cells are ``classify(TwoLayer(width, "1d-linear", n=10, activation, init="mirrored",
gamma, gamma_prime, seed=0))``: RD at the stopping loss (5 % of the start) of widths
width/4, width/2, width fitted against log m (:func:`exactdyn.regimes.two_layer.rd_slope`).

- one cell at three points (condensed (1.75, 0), linear (1.25, 0.5), NTK-like (0.5, 0)):
  ``rd_slope(..., ensemble=False)`` (one ``stop_rd`` per run) vs ``ensemble=True``;
- an N x N diagram (``--grid``, default 5) through ``phase_diagram`` with ``jobs`` workers,
  ``ensemble=False`` (one classify per cell in a process pool) vs the default (cells
  batched as ensembles, one chunk per worker); labels compared;
- ``--big N``: the ensemble diagram at N x N (e.g. 20); with ``--big-before`` the
  per-member one too (else extrapolated from the small grid);
- ``--relu K``: ReLU (kinked, per-member path) timed on K cells of the grid and
  extrapolated to the 20 x 20 diagram on ``jobs`` cores;
- ``--relu-before PATH``: ``stop_rd`` of three ReLU runs (m = 64 and 256 condensed, 256
  linear) in a process on the tree at PATH (e.g. a checkout of main) and in one on this
  tree, one after the other (each decade and the bracket continue from the state reached
  instead of solving from t = 0 again).

Run: ``python benchmarks/bench_ensemble.py [--width 256] [--grid 5] [--big 20 [--big-before]]
[--relu 4]``
(writes benchmarks/results/ensemble.md).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import exactdyn as ed
from exactdyn.regimes.two_layer import rd_slope


def fixed(width, activation):
    return {"width": width, "X": "1d-linear", "n": 10, "activation": activation,
            "init": "mirrored", "seed": 0}


def axes(n):
    return ("gamma", np.linspace(0.5, 2.0, n)), ("gamma_prime", np.linspace(0.0, 1.0, n))


def diagram(width, n, jobs, activation="tanh", **kw):
    x, y = axes(n)
    t0 = time.perf_counter()
    pd = ed.phase_diagram(ed.TwoLayer, x=x, y=y, fixed=fixed(width, activation), jobs=jobs,
                          progress=False, **kw)
    return time.perf_counter() - t0, pd


RELU_SCRIPT = """
import json, time, exactdyn as ed
from exactdyn.regimes.two_layer import stop_rd
out = []
for m, g, gp in [(64, 1.75, 0.0), (256, 1.75, 0.0), (256, 1.25, 0.5)]:
    net = ed.TwoLayer(m, "1d-linear", n=10, activation="relu", init="mirrored", gamma=g,
                      gamma_prime=gp, seed=0)
    t0 = time.perf_counter()
    r = stop_rd(net)
    out.append([f"m={m} ({g}, {gp})", time.perf_counter() - t0, list(r)])
print(json.dumps(out))
"""


def relu_stops(tree):
    """``[(run, seconds, (t*, RD))]`` of :data:`RELU_SCRIPT` run on the tree at ``tree``."""
    import json
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": tree}
    res = subprocess.run([sys.executable, "-c", RELU_SCRIPT], env=env, cwd=tree,
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--grid", type=int, default=5)
    ap.add_argument("--big", type=int, default=0)
    ap.add_argument("--big-before", action="store_true")
    ap.add_argument("--relu", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--relu-before", default=None)
    args = ap.parse_args(argv)
    m = args.width
    ws = (m // 4, m // 2, m)
    rows = [f"# Ensembles: (gamma, gamma') diagram, tanh, widths {ws}, 1d-linear n=10, "
            f"mirrored, seed 0, {args.jobs} workers", "",
            "| measurement | per-member | ensemble | ratio | labels agree |",
            "|---|---|---|---|---|"]
    rd_slope(1.0, 0.0, widths=ws[:2])  # derive and lower once before timing
    rd_slope(1.0, 0.0, widths=ws[:2], ensemble=False)
    for g, gp in [(1.75, 0.0), (1.25, 0.5), (0.5, 0.0)]:
        t0 = time.perf_counter()
        a = rd_slope(g, gp, widths=ws, ensemble=False)
        t1 = time.perf_counter()
        b = rd_slope(g, gp, widths=ws, ensemble=True)
        t2 = time.perf_counter()
        rows.append(f"| one cell ({g}, {gp}) | {t1 - t0:.3f} s | {t2 - t1:.3f} s | "
                    f"{(t1 - t0) / (t2 - t1):.1f}x | {a.label == b.label} "
                    f"(slopes {a.slope:.6f}, {b.slope:.6f}) |")
        print(rows[-1], flush=True)
    n = args.grid
    ta, pa = diagram(m, n, args.jobs, ensemble=False)
    tb, pb = diagram(m, n, args.jobs)
    agree = int(np.sum(pa.labels == pb.labels))
    rows.append(f"| {n} x {n} diagram | {ta:.1f} s | {tb:.1f} s | {ta / tb:.1f}x | "
                f"{agree}/{n * n}; max slope diff "
                f"{np.nanmax(np.abs(pa.scores['rd_slope'] - pb.scores['rd_slope'])):.1e} |")
    print(rows[-1], flush=True)
    if args.big:
        N = args.big
        tc, pc = diagram(m, N, args.jobs)
        if args.big_before:
            td, pdd = diagram(m, N, args.jobs, ensemble=False)
            rows.append(f"| {N} x {N} diagram | {td:.1f} s | {tc:.1f} s | {td / tc:.1f}x | "
                        f"{int(np.sum(pc.labels == pdd.labels))}/{N * N}; counts "
                        f"{pc.counts()} |")
        else:
            est = ta * N * N / (n * n)
            rows.append(f"| {N} x {N} diagram | ~{est:.0f} s (extrapolated from {n} x {n}) | "
                        f"{tc:.1f} s | ~{est / tc:.1f}x | counts {pc.counts()} |")
        print(rows[-1], flush=True)
    if args.relu:
        x, y = axes(n)
        rng = np.random.default_rng(0)
        times = []
        for _ in range(args.relu):
            g, gp = float(rng.choice(x[1])), float(rng.choice(y[1]))
            net = ed.TwoLayer(m, "1d-linear", n=10, activation="relu", init="mirrored",
                              gamma=g, gamma_prime=gp, seed=0)
            t0 = time.perf_counter()
            ed.classify(net)
            times.append(time.perf_counter() - t0)
        per = float(np.mean(times))
        rows.append(f"| ReLU cell (per-member, kinks), mean of {args.relu} random cells | "
                    f"{per:.2f} s | (not batched) | | 20 x 20 on {args.jobs} cores: "
                    f"~{per * 400 / args.jobs / 60:.1f} min |")
        print(rows[-1], flush=True)
    if args.relu_before:
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        before, after = (relu_stops(path) for path in (args.relu_before, here))
        for (key, tb, rb), (_k, ta, ra) in zip(before, after):
            rows.append(f"| ReLU stop_rd {key} | {tb:.2f} s | {ta:.2f} s | {tb / ta:.1f}x | "
                        f"(t*, RD) {rb[0]:.9g}, {rb[1]:.9g} -> {ra[0]:.9g}, {ra[1]:.9g} |")
            print(rows[-1], flush=True)
    text = "\n".join(rows) + "\n"
    out = os.path.join(os.path.dirname(__file__), "results", "ensemble.md")
    with open(out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
