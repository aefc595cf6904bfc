"""Kinked ReLU runs: exactdyn against a plain numpy gradient-descent loop reaching the same
accuracy against a reference (issues 5 and 15).

Two instances (issue 15, item 1), each run through its whole kinked early phase:

- ``teacher``: m = 64 neurons, n = 40 samples, d = 4 (3 Gaussian features plus the bias
  column), labels from a two-neuron ReLU teacher y = relu(x·u1) − ½ relu(x·u2), Gaussian
  init with β1 = β2 = 1e-3 (α = 1), seed 0, t in [0, 50]: the early-alignment phase
  (every neuron rotating through activation regions, ~1,360 kinks) and the loss drop.
  ``python benchmarks/bench_twolayer_gd.py teacher M N`` for other sizes.
- ``bf256``: the Boursier–Flammarion three-point instance
  (:func:`exactdyn.models.datasets.boursier_flammarion_instance`, the tests' data) at m = 256, a
  balanced init of scale λ/√m, λ = 1e-3 (their code's), seed 0, t in [0, 100]: alignment
  onto the all-active direction and convergence to the least-squares fit (~265 kinks).

For each:

- Reference: exactdyn at rtol = 1e-13.
- Error of a run: max_j |θ_j(T) − θ_ref,j(T)| / max_j |θ_ref,j(T)|, θ = (a, W).
- exactdyn: ``ed.solve`` at its default rtol = 1e-10 and at looser rtol; kinks, rhs
  evaluations (``meta["nfev"]``), evaluations per kink and wall time (``meta["seconds"]``).
- Gradient descent, the loop a researcher writes: θ ← θ − η ∇L(θ), η = T/N, σ'(0) = 0,
  for a ladder of N, gives the N at which GD's error equals a target (log-log
  interpolation inside the ladder; outside it Euler's order 1, error ∝ 1/N, from the
  nearest ladder point, marked "extrapolated"); GD's time there is N times its measured
  time per step (the ladder's largest N).
- Matched accuracy 1e-6: GD's time to relative error 1e-6 against the time of the loosest
  exactdyn rtol whose error is at most 1e-6; the ratio is the speed-up.
- ``--before DIR``: the same solves with the exactdyn package found in DIR (e.g. a
  ``git archive <commit> exactdyn`` export), each in a subprocess between this run's own,
  so before/after are measured side by side under the same load.

Both sides run with single-threaded BLAS (the shared 2-core machine; multithreaded
OpenBLAS on these small products was 5-10× slower for both). One run each, wall time; on
a loaded machine only the ratios inside one run mean much.

Run: ``python benchmarks/bench_twolayer_gd.py [teacher] [bf256] [--before DIR]`` (writes
benchmarks/results/twolayer_gd_<instance>.md).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import best_of  # noqa: E402

import exactdyn as ed  # noqa: E402

M, N_SAMPLES, D_FEATURES, SCALE, SEED = 64, 40, 3, 1e-3, 0
BF_WIDTH, BF_LAMBDA = 256, 1e-3
REF_RTOL = 1e-13
RTOLS = (1e-10, 1e-8, 1e-6, 1e-5, 1e-4)
TARGET = 1e-6
INSTANCES = {
    # name: (horizon T, GD ladder)
    "teacher": (50.0, (4_000, 16_000, 64_000, 256_000)),
    "bf256": (100.0, (4_000, 16_000, 64_000, 256_000)),
}


def build(name, m, n):
    """The instance ``name`` at width m (n samples for ``teacher``)."""
    if name == "teacher":
        rng = np.random.default_rng(0)
        X = rng.normal(size=(n, D_FEATURES))
        U = rng.normal(size=(2, D_FEATURES))
        y = np.maximum(X @ U[0], 0.0) - 0.5 * np.maximum(X @ U[1], 0.0)
        return ed.TwoLayer(m, X, y, activation="relu", beta1=SCALE, beta2=SCALE, seed=SEED)
    from exactdyn.models.datasets import boursier_flammarion_instance

    X, y = boursier_flammarion_instance()
    scale = BF_LAMBDA / np.sqrt(m)
    return ed.TwoLayer(m, X, y, init="balanced", beta1=scale, beta2=scale, seed=SEED)


# A --before run: the exactdyn in DIR imported first, then this file's build() on it.
BEFORE = """
import importlib.util, json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import exactdyn as ed
spec = importlib.util.spec_from_file_location("bench_gd", sys.argv[2])
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
assert bench.ed is ed
name, m, n, T, rtol = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), \\
    float(sys.argv[7])
net = bench.build(name, m, n)
ed.solve(net, [0.0, 1e-3])  # lowering and derivation outside the timing
t0 = time.perf_counter()
tr = ed.solve(net, [0.0, T], rtol=rtol)
dt = time.perf_counter() - t0
theta = np.r_[tr["a"][-1], tr["W"][-1].ravel()]
print(json.dumps({"time": dt, "kinks": tr.meta["kinks"], "nfev": tr.meta["nfev"], "file": ed.__file__,
                  "theta": theta.tolist()}))
"""


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


def gd_steps_for(err, ladder_n, ladder_e):
    """GD steps for relative error ``err``: log-log interpolation inside the ladder, order 1
    outside (``(steps, extrapolated)``)."""
    order = np.argsort(ladder_e)
    if ladder_e.min() <= err <= ladder_e.max():
        return float(np.exp(np.interp(np.log(err), np.log(ladder_e[order]),
                                      np.log(ladder_n[order])))), False
    j = int(np.argmin(ladder_e)) if err < ladder_e.min() else int(np.argmax(ladder_e))
    return float(ladder_n[j] * ladder_e[j] / err), True


def before_run(before, name, m, n, T, rtol):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", BEFORE, str(before), str(Path(__file__)
                          .resolve()), name, str(m), str(n), str(T), str(rtol)], env=env,
                         capture_output=True, text=True, check=True, cwd=str(before))
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(name, m, n, before=None):
    T, ladder = INSTANCES[name]
    net = build(name, m, n)
    ed.solve(net, [0.0, 1e-3])  # lowering and derivation outside the timing
    t_ref, ref_traj = best_of(lambda: ed.solve(net, [0.0, T], rtol=REF_RTOL), repeat=1)
    ref = state(ref_traj)

    ed_rows = []
    for rtol in RTOLS:
        dt, traj = best_of(lambda r=rtol: ed.solve(net, [0.0, T], rtol=r), repeat=1)
        ed_rows.append({"rtol": rtol, "time": dt, "err": rel_err(state(traj), ref),
                        "kinks": traj.meta["kinks"], "nfev": traj.meta["nfev"],
                        "steps": traj.meta["steps"]})

    gd_rows = []
    for steps in ladder:
        dt, (a, W) = best_of(lambda s=steps: gradient_descent(net.a0, net.W0, net.X, net.y,
                                                              T / s, s), repeat=1)
        gd_rows.append((steps, dt, rel_err(np.r_[a, W.ravel()], ref)))
    per_step = gd_rows[-1][1] / gd_rows[-1][0]
    ladder_n = np.array([r[0] for r in gd_rows], float)
    ladder_e = np.array([r[2] for r in gd_rows])
    orders = [np.log(e1 / e2) / np.log(n2 / n1)
              for (n1, _t1, e1), (n2, _t2, e2) in zip(gd_rows, gd_rows[1:])]

    # matched accuracy: the loosest rtol within TARGET, and GD to TARGET
    within = [r for r in ed_rows if r["err"] <= TARGET]
    match = max(within, key=lambda r: r["rtol"]) if within else min(ed_rows,
                                                                     key=lambda r: r["err"])
    gd_n, gd_extra = gd_steps_for(TARGET, ladder_n, ladder_e)
    gd_time = gd_n * per_step

    befores = {}
    if before is not None:
        for rtol in sorted({RTOLS[0], match["rtol"]}):
            b = before_run(before, name, m, n, T, rtol)
            b["err"] = rel_err(np.array(b.pop("theta")), ref)
            assert str(before) in b.pop("file")
            # this version again, right after, under the same load
            dt, traj = best_of(lambda r=rtol: ed.solve(net, [0.0, T], rtol=r), repeat=1)
            befores[rtol] = (b, dt)

    desc = {"teacher": f"m = {m}, n = {n}, d = {D_FEATURES + 1} (bias included), ReLU "
                       f"teacher, beta1 = beta2 = {SCALE:g}, seed {SEED}",
            "bf256": f"Boursier-Flammarion instance, m = {m}, balanced init lambda/sqrt(m), "
                     f"lambda = {BF_LAMBDA:g}, seed {SEED}"}[name]
    mark = " (extrapolated)" if gd_extra else ""
    lines = [f"Instance `{name}`: {desc}, t in [0, {T:g}]; loss "
             f"{float(ref_traj['loss'][0]):.4g} -> {float(ref_traj['loss'][-1]):.6g}. "
             f"Reference: exactdyn rtol = {REF_RTOL:g} ({t_ref:.1f} s, "
             f"{ref_traj.meta['kinks']} kinks).",
             "",
             "| exactdyn rtol | time (s) | kinks | rhs evals | evals / kink | ms / kink | "
             "rel. error at T | GD steps for that error | GD time (s) | GD / exactdyn |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in ed_rows:
        steps, extra = gd_steps_for(r["err"], ladder_n, ladder_e)
        mk = " (extrapolated)" if extra else ""
        k = max(r["kinks"], 1)
        lines.append(f"| {r['rtol']:g} | {r['time']:.2f} | {r['kinks']} | {r['nfev']} | "
                     f"{r['nfev'] / k:.1f} | {1e3 * r['time'] / k:.2f} | {r['err']:.2e} | "
                     f"{steps:.3g}{mk} | {steps * per_step:.3g} | "
                     f"{steps * per_step / r['time']:.3g} |")
    lines += ["",
              f"Matched accuracy {TARGET:g}: exactdyn rtol = {match['rtol']:g} (error "
              f"{match['err']:.2e}) {match['time']:.2f} s; GD to {TARGET:g}: "
              f"{gd_n:.3g} steps{mark}, {gd_time:.3g} s; **GD / exactdyn = "
              f"{gd_time / match['time']:.3g}**.",
              "",
              "| GD steps N (η = T/N) | time (s) | rel. error at T |",
              "|---|---|---|"]
    for steps, dt, err in gd_rows:
        lines.append(f"| {steps} | {dt:.2f} | {err:.2e} |")
    lines += ["",
              "GD's measured local orders between ladder points: "
              + ", ".join(f"{o:.2f}" for o in orders)
              + f"; extrapolation at order 1; {per_step * 1e6:.1f} us per GD step."]
    if befores:
        lines += ["",
                  f"Before (exactdyn from `{before}`) and after (this tree), side by side:",
                  "",
                  "| rtol | before (s) | after (s) | before / after | kinks before/after | "
                  "evals / kink before/after | error before/after |",
                  "|---|---|---|---|---|---|---|"]
        after = {r["rtol"]: r for r in ed_rows}
        for rtol, (b, dt) in befores.items():
            a = after[rtol]
            lines.append(f"| {rtol:g} | {b['time']:.2f} | {dt:.2f} | {b['time'] / dt:.2f} | "
                         f"{b['kinks']}/{a['kinks']} | {b['nfev'] / max(b['kinks'], 1):.1f}/"
                         f"{a['nfev'] / max(a['kinks'], 1):.1f} | {b['err']:.1e}/"
                         f"{a['err']:.1e} |")
            if rtol == match["rtol"]:
                lines.append(f"| GD / before at {TARGET:g} | | | {gd_time / b['time']:.3g} "
                             "| | | |")
    return "\n".join(lines)


def main(argv):
    before = None
    if "--before" in argv:
        i = argv.index("--before")
        before = Path(argv[i + 1]).resolve()
        argv = argv[:i] + argv[i + 2:]
    names = [a for a in argv if a in INSTANCES] or list(INSTANCES)
    sizes = [int(a) for a in argv if a.isdigit()]
    out = Path(__file__).parent / "results"
    os.makedirs(out, exist_ok=True)
    for name in names:
        m, n = (sizes if len(sizes) == 2 else
                ((M, N_SAMPLES) if name == "teacher" else (BF_WIDTH, 3)))
        text = run(name, m, n, before)
        print(text + "\n", flush=True)
        suffix = "" if (m, n) in ((M, N_SAMPLES), (BF_WIDTH, 3)) else f"_m{m}_n{n}"
        (out / f"twolayer_gd_{name}{suffix}.md").write_text(text + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
