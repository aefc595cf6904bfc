"""Cost of the 1-D linear network's trajectory, in one run (issue: cost independent of width).

For widths 10, 10^3, 10^5 it times, on t in [0, T] with T = 5/K_inf and 101 output times:

- ``exact``: the closed form (stable Möbius form), state and observables included;
- ``solve``: DOP853 on the full lowered flow (2 x width ODEs), rtol 1e-12;
- a plain numpy gradient-descent loop (what a user would otherwise write), with the
  largest step (halving) at which it matches the exact end_to_end to 1e-6 relative
  (max abs error over the output times / max |end_to_end|).

Run: ``python benchmarks/bench_linear1d.py`` (writes benchmarks/results/linear1d.md).
"""

from __future__ import annotations

import os

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


if __name__ == "__main__":
    main()
