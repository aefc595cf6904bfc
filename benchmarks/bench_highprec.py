"""Benchmark: 50-digit integration of the full Linear1D flow (width 8, t = 10).

Compares, in one run and on the same problem (default ``Linear1D(width=8)``: kappa = eta =
sigma = teacher = x_var = 1, seed 0):

* exactdyn ``solve(model, [10.0], precision=50)`` (method ``"taylor"``);
* ``mpmath.odefun`` on the lowered mpmath right-hand side (the obvious baseline; one call,
  it takes about half a minute);
* heyoka.py's compiled Taylor integrator on ``heyoka.real`` numbers of 167 bits, its JIT
  compilation timed separately from the integration.

The final states are checked to agree to 1e-40 (relative to the state's size) before any
time is printed. The table goes to stdout and to ``benchmarks/results/highprec.md``.

Run: ``python benchmarks/bench_highprec.py``
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import mpmath
import numpy as np
from _timing import best_of

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import exactdyn as ed  # noqa: E402
from exactdyn.numeric.highprec import heyoka_system  # noqa: E402

WIDTH, T_END, DPS, HEYOKA_BITS = 8, 10.0, 50, 167




def main():
    model = ed.Linear1D(width=WIDTH)
    lowered = ed.lower(model)  # derivation and lowering are cached: not timed
    y0 = lowered.pack(model.initial_state())
    rows = []

    # exactdyn taylor (full solve: integration + observables)
    t_ours, tr = best_of(lambda: ed.solve(model, [T_END], precision=DPS), 3)
    ours = np.concatenate([tr.state["u"][-1], tr.state["w"][-1]])
    rows.append(("exactdyn `solve(..., precision=50)` (taylor)", t_ours, "",
                 f"{tr.meta['steps']} steps, order {tr.meta['order']}"))

    # heyoka: compile, then integrate
    results = {"exactdyn": ours}
    try:
        import heyoka as hy
    except ImportError:
        hy = None
    if hy is not None:
        def build():
            sys_ = heyoka_system(lowered, HEYOKA_BITS)
            state = np.array([hy.real(float(v), HEYOKA_BITS) for v in y0])
            return hy.taylor_adaptive(sys_, state, fp_type=hy.real, prec=HEYOKA_BITS)

        t_compile, ta = best_of(build, 1)

        def run():
            ta.time = hy.real(0, HEYOKA_BITS)
            ta.state[:] = np.array([hy.real(float(v), HEYOKA_BITS) for v in y0])
            return ta.propagate_until(hy.real(T_END, HEYOKA_BITS))

        t_hy, res = best_of(run, 3)
        with mpmath.workdps(DPS + 10):
            results["heyoka"] = np.array([mpmath.mpf(str(v)) for v in ta.state], dtype=object)
        rows.append(("heyoka.py, real 167 bits: integration", t_hy, "",
                     f"{int(res[3])} steps, order {ta.order}"))
        rows.append(("heyoka.py, real 167 bits: JIT compile (once)", t_compile, "-", ""))
        rows.append(("heyoka.py, real 167 bits: compile + integration", t_compile + t_hy, "",
                     "a one-off run"))

    # mpmath.odefun: one call
    with mpmath.workdps(DPS):
        y0_mp = [mpmath.mpf(float(v)) for v in y0]
        t0 = time.perf_counter()
        f = mpmath.odefun(lambda t, y: list(lowered.rhs_mp(t, np.array(y, dtype=object))),
                          0, y0_mp)
        ref = f(mpmath.mpf(T_END))
        t_ode = time.perf_counter() - t0
    results["mpmath.odefun"] = np.array(ref, dtype=object)
    rows.append(("`mpmath.odefun` (dps 50)", t_ode, "", "one call"))

    # agreement before timing is reported
    with mpmath.workdps(DPS + 10):
        scale = max(abs(x) for x in ours)
        for name, val in results.items():
            err = max(abs(a - b) for a, b in zip(val, ours, strict=True)) / scale
            if not err < mpmath.mpf(10) ** -40:
                raise SystemExit(f"{name} disagrees with exactdyn: relative error {err}")
        agreement = {name: float(max(abs(a - b) for a, b in zip(val, ours, strict=True)) / scale)
                     for name, val in results.items() if name != "exactdyn"}

    lines = [
        f"# High-precision integration: Linear1D width {WIDTH}, t = {T_END:g}, {DPS} digits",
        "",
        f"Python {platform.python_version()}, numpy {np.__version__}, mpmath {mpmath.__version__}"
        + (f", heyoka {hy.__version__}" if hy is not None else "")
        + f", {platform.machine()}. Best of 3 except `mpmath.odefun` (one call).",
        "",
        "| method | time [s] | odefun / method | notes |",
        "|---|---:|---:|---|",
    ]
    for name, t, ratio, note in rows:
        lines.append(f"| {name} | {t:.4f} | {ratio or f'{t_ode / t:.1f}x'} | {note} |")
    lines += ["", "Agreement with exactdyn at t = 10 (max relative difference of the state): "
              + ", ".join(f"{k} {v:.1e}" for k, v in agreement.items()) + "."]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(__file__).resolve().parent / "results" / "highprec.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
