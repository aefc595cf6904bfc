"""A full small-init ReLU run: exactdyn against a plain numpy gradient-descent loop reaching
the same accuracy against a reference (issue 5).

Setup: m = 64 neurons, n = 32 samples, d = 4 (3 Gaussian features plus the bias column;
``python benchmarks/bench_twolayer_gd.py M N`` for other sizes; at m = 256, n = 64 one
exactdyn run reached t = 35 after ~390 s and ~7300 kinks on the shared machine),
labels from a two-neuron ReLU teacher y = relu(x·u1) − ½ relu(x·u2), Gaussian init with
β1 = β2 = 1e-3 (α = 1), seed 0, t in [0, 40]: the early-alignment phase (every neuron
rotating through activation regions, many kinks per unit time) and the loss drop.

- Reference: exactdyn at rtol = 1e-13.
- Error of a run: max_j |θ_j(T) − θ_ref,j(T)| / max_j |θ_ref,j(T)|, θ = (a, W).
- exactdyn: ``ed.solve`` at its default rtol = 1e-10 and at looser rtol.
- Gradient descent, the loop a researcher writes: θ ← θ − η ∇L(θ), η = T/N, σ'(0) = 0,
  for a ladder of N, gives the N at which GD's error equals each exactdyn error (log-log
  interpolation inside the ladder; outside it Euler's order 1, error ∝ 1/N, from the
  nearest ladder point, marked "extrapolated"); GD's time there is N times its
  measured time per step. Far beyond the ladder the extrapolation is notional: with
  10^9+ steps float64 rounding alone would stop GD short of that error.

Both sides run with single-threaded BLAS (the shared 2-core machine; multithreaded
OpenBLAS on these small products was 5-10× slower for both). One run each, wall time.

Run: ``python benchmarks/bench_twolayer_gd.py`` (writes benchmarks/results/twolayer_gd.md).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import best_of  # noqa: E402

import exactdyn as ed  # noqa: E402

M, N_SAMPLES, D_FEATURES, SCALE, SEED, T = 64, 32, 3, 1e-3, 0, 40.0
REF_RTOL = 1e-13
RTOLS = (1e-10, 1e-8, 1e-6, 1e-4, 1e-3)
GD_STEPS = (4_000, 16_000, 64_000, 256_000, 1_500_000)


def model(m, n):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, D_FEATURES))
    U = rng.normal(size=(2, D_FEATURES))
    y = np.maximum(X @ U[0], 0.0) - 0.5 * np.maximum(X @ U[1], 0.0)
    return ed.TwoLayer(m, X, y, activation="relu", beta1=SCALE, beta2=SCALE, seed=SEED)


def gradient_descent(a, W, X, y, lr, steps):
    """Plain numpy GD on L = (1/2n) sum (f - y)^2, f = sum_k a_k relu(w_k . x)."""
    n = len(y)
    for _ in range(steps):
        h = W @ X.T
        act = h > 0
        s = h * act
        e = a @ s - y
        ga = s @ e / n
        gW = a[:, None] * ((act * e) @ X) / n
        a = a - lr * ga
        W = W - lr * gW
    return a, W


def state(traj):
    return np.r_[traj["a"][-1], traj["W"][-1].ravel()]


def rel_err(theta, ref):
    return float(np.max(np.abs(theta - ref)) / np.max(np.abs(ref)))


def main(argv):
    m, n = (int(v) for v in argv) if argv else (M, N_SAMPLES)
    net = model(m, n)
    assert net.alpha == 1.0 and net.X.shape == (n, D_FEATURES + 1)
    t_ref, ref_traj = best_of(lambda: ed.solve(net, [0.0, T], rtol=REF_RTOL), repeat=1)
    ref = state(ref_traj)
    loss_ref = float(ref_traj["loss"][-1])

    ed_rows = []
    for rtol in RTOLS:
        dt, traj = best_of(lambda r=rtol: ed.solve(net, [0.0, T], rtol=r), repeat=1)
        ed_rows.append((rtol, dt, rel_err(state(traj), ref), traj.meta["kinks"],
                        traj.meta["nfev"], abs(float(traj["loss"][-1]) - loss_ref)))

    gd_rows = []
    for steps in GD_STEPS:
        dt, (a, W) = best_of(lambda s=steps: gradient_descent(net.a0, net.W0, net.X, net.y,
                                                              T / s, s), repeat=1)
        out, loss = ed.lower(net).observe(a, W)
        gd_rows.append((steps, dt, rel_err(np.r_[a, W.ravel()], ref), abs(loss - loss_ref)))
    # Outside the ladder GD's error is extrapolated at Euler's order, error ~ C / N,
    # anchored at the nearest ladder point (the measured local orders are printed).
    per_step = gd_rows[-1][1] / gd_rows[-1][0]
    orders = [np.log(e1 / e2) / np.log(n2 / n1)
              for (n1, _t1, e1, _l1), (n2, _t2, e2, _l2) in zip(gd_rows, gd_rows[1:])]

    lines = [f"Setup: m = {m}, n = {n}, d = {D_FEATURES + 1} (bias included), ReLU, "
             f"beta1 = beta2 = {SCALE:g}, seed {SEED}, t in [0, {T:g}]; loss "
             f"{float(ref_traj['loss'][0]):.4f} -> {loss_ref:.4f}. Reference: exactdyn "
             f"rtol = {REF_RTOL:g} ({t_ref:.1f} s, {ref_traj.meta['kinks']} kinks).",
             "",
             "| exactdyn rtol | time (s) | kinks | rhs evals | rel. error at T | "
             "GD steps for that error | GD time (s) | GD / exactdyn |",
             "|---|---|---|---|---|---|---|---|"]
    ladder_n = np.array([r[0] for r in gd_rows], float)
    ladder_e = np.array([r[2] for r in gd_rows])
    for rtol, dt, err, kinks, nfev, _lerr in ed_rows:
        if ladder_e[-1] <= err <= ladder_e[0]:  # inside the ladder: log-log interpolation
            steps = float(np.exp(np.interp(np.log(err), np.log(ladder_e[::-1]),
                                           np.log(ladder_n[::-1]))))
            mark = ""
        else:
            j = -1 if err < ladder_e[-1] else 0
            steps = ladder_n[j] * ladder_e[j] / err
            mark = " (extrapolated)"
        gd_time = steps * per_step
        lines.append(f"| {rtol:g} | {dt:.1f} | {kinks} | {nfev} | {err:.2e} | {steps:.3g}{mark} "
                     f"| {gd_time:.3g}{mark} | {gd_time / dt:.3g} |")
    lines += ["",
              "| GD steps N (η = T/N) | time (s) | rel. error at T | loss error at T |",
              "|---|---|---|---|"]
    for steps, dt, err, lerr in gd_rows:
        lines.append(f"| {steps} | {dt:.2f} | {err:.2e} | {lerr:.2e} |")
    lines += ["",
              "GD's measured local orders between ladder points: "
              + ", ".join(f"{o:.2f}" for o in orders)
              + f"; extrapolation at order 1; {per_step * 1e6:.0f} us per GD step."]
    text = "\n".join(lines)
    print(text)
    out = Path(__file__).parent / "results"
    os.makedirs(out, exist_ok=True)
    name = "twolayer_gd.md" if not argv else f"twolayer_gd_m{m}_n{n}.md"
    (out / name).write_text(text + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
