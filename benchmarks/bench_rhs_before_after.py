"""The generated right-hand sides, this tree against another, in one process.

Every family's cases of ``bench_rhs_ratios.py`` (Linear1D, LinearNet, DeepLinear, the
two-layer network, the CNN). ``bench_rhs_ratios.py`` times each tree in its own process
against a hand-written rhs; on a machine loaded by other jobs (load 10+ on 2 cores) its
wall-clock ratios moved by ±50% even for code that did not change. Here both trees are imported into one process (the ``exactdyn``
modules of the first are dropped from ``sys.modules`` before the second is imported; the
first tree's lowered flows keep working through their own module globals), checked equal
to 1e-13, and timed in alternating blocks of at least 50 ms of **CPU time** (what the
process itself spent, so time spent waiting for a core does not count), best of 15 per
side. Prints after / before per case.

Run: ``python benchmarks/bench_rhs_before_after.py --before PATH`` (e.g. a pristine
worktree of main).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_cnn import synthetic_images  # noqa: E402


def _cases(tree: str) -> dict:
    """``name -> (rhs, y)`` of the lowered flows of ``tree``'s exactdyn."""
    for k in [k for k in sys.modules if k == "exactdyn" or k.startswith("exactdyn.")]:
        del sys.modules[k]
    sys.path.insert(0, tree)
    try:
        ed = importlib.import_module("exactdyn")
    finally:
        sys.path.remove(tree)
    if not Path(ed.__file__).resolve().is_relative_to(Path(tree).resolve()):
        raise RuntimeError(f"imported {ed.__file__}, not the tree {tree}")
    cases = {}
    for width in (8, 1000, 100_000):
        model = ed.Linear1D(width=width, teacher=0.5, sigma_u=0.3, sigma_w=0.7, eta_w=0.5)
        low = ed.lower(model)
        cases[f"Linear1D width {width}"] = (low.rhs, low.pack(model.initial_state()))
    for hidden in (4, 200):
        model = ed.LinearNet(3, hidden, 2, sigma_yx=[[1.0, 0.5, 0.0], [0.0, 1.0, 0.3]],
                             eta2=0.5)
        low = ed.lower(model)
        cases[f"LinearNet 3-{hidden}-2"] = (low.rhs, low.pack(model.initial_state()))
    teacher = importlib.import_module("exactdyn.models.deep_linear").teacher_matrix(
        [4.0, 2.0, 1.0], 3, 3)
    for width in (10, 100, 300):
        model = ed.DeepLinear.decoupled(3, width, teacher, mode_init=0.05)
        low = ed.lower(model)
        cases[f"DeepLinear depth 3 width {width}"] = (low.rhs,
                                                      low.pack(model.initial_state()))
    for act in ("tanh", "relu"):
        for m, n in ((100, 20), (1000, 200)):
            model = ed.TwoLayer(m, "1d-sine", activation=act, n=n, beta1=1e-2, beta2=1e-2)
            low = ed.lower(model)
            cases[f"TwoLayer {act} m {m} n {n}"] = (low.rhs, low.pack(model.initial_state()))
        for n, M in ((64, 8), (256, 32)):
            images, labels = synthetic_images(n, 8, 8, 1, seed=0)
            model = ed.TwoLayerCNN(M, 3, images, labels, activation=act, scale=1e-2)
            low = ed.lower(model)
            cases[f"TwoLayerCNN {act} N {n} M {M}"] = (low.rhs,
                                                       low.pack(model.initial_state()))
    return cases


def _block(f, y, target=0.05) -> float:
    """CPU seconds per call, over a block of at least ``target`` seconds."""
    k = 1
    while True:
        t0 = time.process_time()
        for _ in range(k):
            f(0.0, y)
        dt = time.process_time() - t0
        if dt > target:
            return dt / k
        k *= 2


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="an exactdyn checkout to compare with")
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args()
    before = _cases(str(Path(args.before).resolve()))
    after = _cases(str(HERE.parent))
    rows = ["| case | before (µs, CPU) | after (µs, CPU) | after / before |",
            "|---|---:|---:|---:|"]
    for name, (fb, yb) in before.items():
        fa, ya = after[name]
        np.testing.assert_allclose(fa(0.0, ya), fb(0.0, yb), rtol=1e-13, atol=1e-300)
        tb, ta = [], []
        for _ in range(args.rounds):
            tb.append(_block(fb, yb))
            ta.append(_block(fa, ya))
        b, a = min(tb), min(ta)
        rows.append(f"| {name} | {b * 1e6:.1f} | {a * 1e6:.1f} | {a / b:.3f} |")
        print(rows[-1], flush=True)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "rhs_before_after.md").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
