"""A user-written two-layer network (``ed.Network(..., indices=...)``) against the built-in.

The same network — :math:`f(x_s) = \\frac1\\alpha\\sum_i a_i\\tanh(\\sum_k W_{ik}X_{sk})`,
:math:`L = \\frac1{2n}\\sum_s (f(x_s) - Y_s)^2` — written by the user in plain sympy and
lowered by :mod:`exactdyn.numeric.multi_index`, against :class:`exactdyn.TwoLayer`'s lowered
right-hand side and the hand-written numpy rhs of ``bench_twolayer.py`` (all checked equal
to 1e-12 first), timed in alternating blocks, best of 7 (a load change on a shared machine
hits all alike). Ratios are what to read.

Run: ``python benchmarks/bench_network_twolayer.py``
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = Path(__file__).resolve().parent


def user_two_layer():
    import sympy as sp

    import exactdyn as ed

    i, k, s = sp.symbols("i k s", integer=True)
    d, D, n = sp.symbols("d D n", integer=True, positive=True)
    a, W, X, Y = (sp.IndexedBase(x) for x in ("a", "W", "X", "Y"))
    alpha = sp.Symbol("alpha", positive=True)
    out = sp.Sum(a[i] * sp.tanh(sp.Sum(W[i, k] * X[s, k], (k, 0, D - 1))), (i, 0, d - 1)) / alpha
    return ed.Network("user_two_layer", params=[a, W], indices={i: d, k: D, s: n},
                      loss=sp.Sum((out - Y[s]) ** 2, (s, 0, n - 1)) / (2 * n), data=[X, Y],
                      hyper=[alpha])


def _interleaved(fs, rounds=7, target=0.05):
    import time

    t0 = time.perf_counter()
    for f in fs:
        f()
    number = max(1, int(target / max(time.perf_counter() - t0, 1e-7)))
    best = [float("inf")] * len(fs)
    for _ in range(rounds):
        for q, f in enumerate(fs):
            t0 = time.perf_counter()
            for _ in range(number):
                f()
            best[q] = min(best[q], (time.perf_counter() - t0) / number)
    return best


def main():
    import numpy as np

    import exactdyn as ed

    sys.path.insert(0, str(HERE))
    from bench_twolayer import hand_rhs

    net = user_two_layer()
    rows = ["| m | D | n | user Network rhs (us) | TwoLayer rhs (us) | hand-written (us) | "
            "user / TwoLayer | user / hand |", "|---|---|---|---|---|---|---|---|"]
    for m, dim, n in ((10, 3, 20), (100, 10, 50), (1000, 20, 200), (4096, 16, 256)):
        rng = np.random.default_rng(0)
        X, Y = rng.standard_normal((n, dim)), rng.standard_normal(n)
        a0, W0 = rng.standard_normal(m), rng.standard_normal((m, dim)) / np.sqrt(dim)
        user = ed.lower(net.from_init({"a": a0, "W": W0}, X=X, Y=Y, alpha=1.0))
        builtin = ed.lower(ed.TwoLayer.from_init(a0, W0, X, Y, activation="tanh", bias=False))
        y = np.concatenate([a0, W0.ravel()])
        ref = hand_rhs(a0, W0, X, Y, 1.0, "tanh")
        for f in (lambda: user.rhs(0.0, y), lambda: builtin.rhs(0.0, y)):
            np.testing.assert_allclose(f(), ref, rtol=1e-12, atol=1e-12 * np.max(np.abs(ref)))
        tu, tb, th = _interleaved([lambda: user.rhs(0.0, y), lambda: builtin.rhs(0.0, y),
                                   lambda: hand_rhs(a0, W0, X, Y, 1.0, "tanh")])
        rows.append(f"| {m} | {dim} | {n} | {tu * 1e6:.1f} | {tb * 1e6:.1f} | {th * 1e6:.1f} | "
                    f"{tu / tb:.2f} | {tu / th:.2f} |")
        print(rows[-1], flush=True)
    text = "\n".join(rows) + "\n"
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "network_twolayer.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
