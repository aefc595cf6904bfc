"""Cost of the two-layer network's lowered right-hand side against a hand-written numpy rhs.

For (m, n) in (100, 20), (1000, 200), (10000, 1000), 1-D input plus bias, and the issue's
size m = 4096, n = 256, d = 16 (15 random features plus bias), tanh and relu:
the median time of one evaluation of the generated rhs (``lower``ed from the symbolic
derivation, ``h = W @ X.T`` once) and of the obvious hand-written numpy rhs, after
checking that they agree to 1e-12 relative. Also one ReLU integration through its kinks
(m = 50, n = 20, t in [0, 20]) with its number of located kinks.

Run: ``python benchmarks/bench_twolayer.py`` (writes benchmarks/results/twolayer.md).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import exactdyn as ed  # noqa: E402
from exactdyn.numeric.twolayer import lowered_two_layer  # noqa: E402

HAND = {"tanh": (np.tanh, lambda h: 1 - np.tanh(h) ** 2),
        "relu": (lambda h: np.maximum(h, 0), lambda h: (h > 0) * 1.0)}


def hand_rhs(a, W, X, y, alpha, act):
    s, ds = HAND[act]
    h = W @ X.T
    sh = s(h)
    e = a @ sh / alpha - y
    n = len(y)
    return np.concatenate([-(sh @ e) / (alpha * n),
                           (-(a[:, None] / (alpha * n)) * ((ds(h) * e) @ X)).ravel()])


def median_time(f, reps=5):
    f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main():
    rows = ["| activation | m | n | d | generated rhs (ms) | hand-written rhs (ms) | ratio |",
            "|---|---|---|---|---|---|---|"]
    rng = np.random.default_rng(0)
    X16 = rng.normal(size=(256, 15))
    y16 = np.sin(X16 @ rng.normal(size=15) / 4)
    for act in ("tanh", "relu"):
        for m, n in ((100, 20), (1000, 200), (10000, 1000), (4096, 256)):
            if n == 256:
                model = ed.TwoLayer(m, X16, y16, activation=act, beta1=1e-2, beta2=1e-2)
            else:
                model = ed.TwoLayer(m, "1d-sine", activation=act, n=n, beta1=1e-2,
                                    beta2=1e-2)
            low = lowered_two_layer(model)
            y = low.pack(model.a0, model.W0)
            ref = hand_rhs(model.a0, model.W0, model.X, model.y, model.alpha, act)
            np.testing.assert_allclose(low.rhs(0, y), ref, rtol=1e-12, atol=1e-300)
            tg = median_time(lambda: low.rhs(0, y))
            th = median_time(lambda: hand_rhs(model.a0, model.W0, model.X, model.y, 1.0, act))
            rows.append(f"| {act} | {m} | {n} | {model.X.shape[1]} | {tg * 1e3:.3g} | "
                        f"{th * 1e3:.3g} | {tg / th:.2f} |")
    model = ed.TwoLayer(50, "1d-sine", activation="relu", beta1=0.1, beta2=0.1, seed=1)
    t0 = time.perf_counter()
    traj = ed.solve(model, np.linspace(0, 20, 11))
    dt = time.perf_counter() - t0
    rows.append("")
    rows.append(f"ReLU m = 50, n = 20, t in [0, 20]: {traj.meta['kinks']} kinks located, "
                f"{traj.meta['nfev']} rhs evaluations, {dt:.3g} s")
    text = "\n".join(rows)
    print(text)
    out = Path(__file__).parent / "results"
    os.makedirs(out, exist_ok=True)
    (out / "twolayer.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
