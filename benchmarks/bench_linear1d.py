"""Cost of the 1-D linear network's trajectory, in one run (issue: cost independent of width).

For widths 10, 10^3, 10^5 it times, on t in [0, T] with T = 5/K_inf and 101 output times:

- ``exact``: the closed form (stable Möbius form), state and observables included;
- ``solve``: DOP853 on the full lowered flow (2 x width ODEs), rtol 1e-12;
- a plain numpy gradient-descent loop (what a user would otherwise write), with the
  largest step (halving) at which it matches the exact end_to_end to 1e-6 relative
  (max abs error over the output times / max |end_to_end|).

Run: ``python benchmarks/bench_linear1d.py`` (writes benchmarks/results/linear1d.md).

``python benchmarks/bench_linear1d.py --wide [BEFORE_TREE]``: ``exact`` at width 10^6 on
1, 10 and 101 times against three dot products over the init (|u0|^2, |w0|^2, u0.w0), the
ratio taken in one process (one BLAS thread); with the state asked for too (``traj["u"]``,
1 and 10 times). With a second
source tree (a checkout of an earlier commit) each tree runs in its own process, side by
side (writes benchmarks/results/linear1d_wide.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from _timing import best_of

import exactdyn as ed


def gd_loop(u, w, kappa, eta_u, eta_w, c, sxx, lr, n_steps, record_every):
    """Plain gradient descent on L = 1/2 Sigma_xx (kappa u.w - c)^2, recording u.w."""
    u, w = u.copy(), w.copy()
    rec = [float(u @ w)]
    for step in range(1, n_steps + 1):
        r = kappa * sxx * (kappa * (u @ w) - c)
        u, w = u - lr * eta_u * r * w, w - lr * eta_w * r * u
        if step % record_every == 0:
            rec.append(float(u @ w))
    return np.array(rec)


def gd_match(model, T, n_out, target=1e-6, max_steps=2_000_000):
    init = model.initial_state()
    ref = ed.exact(model, np.linspace(0, T, n_out))["end_to_end"] / model.kappa
    per = 8
    while True:
        n_steps = (n_out - 1) * per
        lr = T / n_steps
        p = gd_loop(init["u"], init["w"], model.kappa, model.eta_u, model.eta_w,
                    model.teacher, model.x_var, lr, n_steps, per)
        err = np.max(np.abs(p - ref)) / np.max(np.abs(ref))
        if err <= target or n_steps >= max_steps:
            return n_steps, err
        per *= 2


def main():
    rows = []
    for width in (10, 1_000, 100_000):
        model = ed.Linear1D(width=width, sigma_u=1.0 / np.sqrt(width), sigma_w=1.0, seed=1)
        K_inf = ed.exact(model, [0.0]).meta["K_inf"]
        T = 5.0 / K_inf
        t = np.linspace(0, T, 101)
        ed.exact(model, t), ed.solve(model, t)  # warm-up: symbolic derivation, lowering
        t_exact, a = best_of(lambda: ed.exact(model, t))
        t_solve, b = best_of(lambda: ed.solve(model, t), repeat=1 if width > 10_000 else 3)
        err = np.max(np.abs(a["end_to_end"] - b["end_to_end"])) / np.max(np.abs(a["end_to_end"]))
        n_steps, gd_err = gd_match(model, T, 101) if width <= 1_000 else (None, None)
        if n_steps is None:
            # Same K, same step count as at width 1000 (the step needed depends on the
            # dynamics of p, not on the width); timed here at this width.
            n_steps = rows[-1]["gd_steps"]
        init = model.initial_state()
        t_gd, p_gd = best_of(lambda: gd_loop(init["u"], init["w"], model.kappa, model.eta_u,
                                             model.eta_w, model.teacher, model.x_var,
                                             T / n_steps, n_steps, n_steps // 100), repeat=1)
        gd_err = np.max(np.abs(p_gd - a["end_to_end"] / model.kappa)) / np.max(np.abs(a["end_to_end"]))
        rows.append(dict(width=width, exact=t_exact, solve=t_solve, gd=t_gd, gd_steps=n_steps,
                         gd_err=gd_err, solve_err=err, nfev=b.meta["nfev"]))
        print(rows[-1], flush=True)
    lines = ["| width | exact | solve (DOP853, full flow) | numpy GD loop (steps) | "
             "solve / exact | GD / exact | max rel err solve | max rel err GD |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['width']:,} | {r['exact']*1e3:.2f} ms | {r['solve']*1e3:.1f} ms "
                     f"({r['nfev']} rhs) | {r['gd']*1e3:.0f} ms ({r['gd_steps']:,}) | "
                     f"{r['solve']/r['exact']:.0f}x | {r['gd']/r['exact']:.0f}x | "
                     f"{r['solve_err']:.1e} | {r['gd_err']:.1e} |")
    table = "\n".join(lines)
    print(table)
    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "results", "linear1d.md"), "w") as fh:
        fh.write(table + "\n")


_WIDE_CHILD = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from _timing import best_of
import exactdyn as ed
model = ed.Linear1D(width=10**6, sigma_u=1e-3, sigma_w=1.0, seed=1)
init = model.initial_state()
u0, w0 = init["u"], init["w"]
K = ed.exact(model, [0.0]).meta["K_inf"]
dots, _ = best_of(lambda: (u0 @ u0, w0 @ w0, u0 @ w0), repeat=9)
out = {"dots": dots, "package": ed.__file__}
for n in (1, 10, 101):
    t = np.linspace(0.0, 5.0 / K, n) if n > 1 else np.array([1.0 / K])
    ed.exact(model, t)
    out[f"exact_{n}"], _ = best_of(lambda: ed.exact(model, t), repeat=9 if n < 101 else 3)
    if n < 101:  # 101 x 10^6 state arrays: seconds to a minute of page faults here
        out[f"state_{n}"], _ = best_of(lambda: ed.exact(model, t)["u"], repeat=3)
print(json.dumps(out))
"""


def wide(trees) -> str:
    """exact at width 10^6 against three dot products, one process per source tree."""
    here = os.path.dirname(os.path.abspath(__file__))
    rows = []
    for label, tree in trees:
        # One BLAS thread: on a shared machine a threaded dot product waits for its
        # descheduled threads (the same three dots took 0.6 ms and 88 ms in one run).
        env = dict(os.environ, PYTHONPATH=tree, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        # Run from the tree: ``python -c`` puts the working folder first on sys.path.
        out = subprocess.run([sys.executable, "-c", _WIDE_CHILD, here], env=env, check=True,
                             capture_output=True, text=True, cwd=tree
                             ).stdout.strip().splitlines()[-1]
        rows.append((label, json.loads(out)))
        print(label, rows[-1][1], flush=True)
    lines = ["| tree | three dot products | exact, 1 time | 10 times | 101 times | "
             "exact + state (`traj[\"u\"]`), 1 / 10 times |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, r in rows:
        d = r["dots"]
        cells = [f"{r[f'exact_{n}'] * 1e3:.1f} ms ({r[f'exact_{n}'] / d:.1f}x)"
                 for n in (1, 10, 101)]
        state = " / ".join(f"{r[f'state_{n}'] * 1e3:.0f} ms" for n in (1, 10))
        lines.append(f"| {label} | {d * 1e3:.1f} ms | " + " | ".join(cells) + f" | {state} |")
    table = "\n".join(lines)
    print(table)
    os.makedirs(os.path.join(here, "results"), exist_ok=True)
    with open(os.path.join(here, "results", "linear1d_wide.md"), "w") as fh:
        fh.write(table + "\n")
    return table


if __name__ == "__main__":
    if "--wide" in sys.argv:
        rest = sys.argv[sys.argv.index("--wide") + 1:]
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        wide(([("before", os.path.abspath(rest[0]))] if rest else []) + [("after", root)])
    else:
        main()
