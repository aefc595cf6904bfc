"""Cost of the two-layer linear network's trajectory: matrix closed form vs integration.

Zero-balanced init (Riccati closed form, MATH.md §2) of f(x) = W2 W1 x with
in = out = 8, teacher singular values 3 ... 0.5 in random frames, init scale 1e-3, for
hidden widths 10, 100, 1000, on t in [0, 20] (every mode learned) at 101 output times:

- ``exact``: the Riccati solution by semigroup steps (the hidden width enters only
  through one QR of the init), end-to-end map, loss and singular values included;
- ``solve``: DOP853 on the full lowered matrix flow (h (in + out) ODEs), rtol 1e-12;
- a plain numpy Euler loop on the same flow (what a user would otherwise write), with
  the largest step (halving) at which it matches the exact end-to-end map to 1e-6
  relative.

Run: ``python benchmarks/bench_linearnet.py`` (writes benchmarks/results/linearnet.md).
"""

from __future__ import annotations

import os
import time

import numpy as np
from _timing import best_of

import exactdyn as ed


def euler_match(model, T, n_out, ref, target=1e-6, max_steps=400_000):
    """Plain gradient descent (Euler) on W1, W2; returns (steps, seconds, error)."""
    init = model.initial_state()
    S = np.asarray(model.sigma_yx)
    per = 8
    while True:
        n_steps = (n_out - 1) * per
        lr = T / n_steps
        t0 = time.perf_counter()
        W1, W2 = init["W1"].copy(), init["W2"].copy()
        rec = [W2 @ W1]
        for k in range(1, n_steps + 1):
            R = W2 @ W1 - S
            W1, W2 = W1 - lr * (W2.T @ R), W2 - lr * (R @ W1.T)
            if k % per == 0:
                rec.append(W2 @ W1)
        sec = time.perf_counter() - t0
        err = np.abs(np.array(rec) - ref).max() / np.abs(ref).max()
        if err <= target or n_steps >= max_steps:
            return n_steps, sec, err
        per *= 2


def main():
    rng = np.random.default_rng(0)
    n = 8
    U, _ = np.linalg.qr(rng.normal(size=(n, n)))
    V, _ = np.linalg.qr(rng.normal(size=(n, n)))
    syx = U @ np.diag(np.linspace(3.0, 0.5, n)) @ V.T
    T, n_out = 20.0, 101
    t = np.linspace(0, T, n_out)
    rows = []
    for hidden in (10, 100, 1000):
        m = ed.LinearNet.zero_balanced(syx, hidden=hidden, scale=1e-3, seed=1)
        ed.exact(m, t[:2])
        ed.solve(m, t[:2])  # derive, lower and compile once, outside the timings
        te, ex = best_of(lambda m=m: ed.exact(m, t))
        ts, nu = best_of(lambda m=m: ed.solve(m, t, rtol=1e-12), repeat=1)
        W = ex["end_to_end"]
        err = np.abs(nu["end_to_end"] - W).max() / np.abs(W).max()
        steps, tg, gerr = euler_match(m, T, n_out, W)
        rows.append((hidden, te, ts, nu.meta["nfev"], err, steps, tg, gerr))
        print(rows[-1], flush=True)
    lines = ["| hidden | exact (Riccati) | solve (DOP853, full flow) | numpy Euler loop (steps) "
             "| solve / exact | Euler / exact | max rel err solve | max rel err Euler |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for h, te, ts, nfev, err, steps, tg, gerr in rows:
        lines.append(f"| {h:,} | {te * 1e3:.2f} ms | {ts * 1e3:.1f} ms ({nfev} rhs) | "
                     f"{tg * 1e3:.0f} ms ({steps:,}) | {ts / te:.0f}x | {tg / te:.0f}x | "
                     f"{err:.1e} | {gerr:.1e} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = os.path.join(os.path.dirname(__file__), "results", "linearnet.md")
    with open(out, "w") as fh:
        fh.write("Measured by benchmarks/bench_linearnet.py (one run, same machine).\n\n" + text)


if __name__ == "__main__":
    main()
