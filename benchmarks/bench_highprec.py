"""Benchmark: arbitrary-precision integration against heyoka.py, three linear families.

Compares, in one run and on the same problems:

* exactdyn ``solve(model, [T], precision=N)`` (method ``"taylor"``, the full solve:
  integration and observables);
* heyoka.py's compiled Taylor integrator on ``heyoka.real`` numbers of
  ``ceil(N log2 10)`` bits (its default tolerance, the precision's epsilon), its JIT
  compilation timed separately from the integration;

both timed in CPU time of this one-threaded process (:func:`best_cpu`: on a shared
machine the wall time of a 10 ms call is not reproducible); the table names the
arithmetic exactdyn used (``meta["engine"]``: ``longdouble`` where ``np.finfo`` gives it
the bits, ``mpz`` fixed point otherwise; a tree without that key ran on ``mpz``);
* with ``--odefun``, ``mpmath.odefun`` on the lowered mpmath right-hand side of Linear1D at
  50 digits (the obvious baseline; one call, about half a minute).

Problems (t = 10 each): ``Linear1D(width=8)`` (the indexed flow), ``LinearNet`` 3-4-2 and
``DeepLinear`` depth 3, width 4, 2 -> 2 (flows kept in matrix form), at 16, 30, 50 and 100
digits. heyoka works on scalar equations, so here the derived matrix right-hand sides are
evaluated on object arrays of heyoka expressions (:func:`matrix_heyoka_system`, products
kept unexpanded), the data matrices entering as the exact values of their float64 entries;
the indexed flow uses :func:`exactdyn.numeric.highprec.heyoka_system`.

The final states are checked to agree to ``10**-(N - 6)`` (relative to the state's size)
before any time is printed. The table goes to stdout and to
``benchmarks/results/highprec.md``.

Run: ``python benchmarks/bench_highprec.py [--digits 16,30,50,100] [--models ...]
[--odefun]``; ``PYTHONPATH=<tree>`` selects the exactdyn under test.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import mpmath
import numpy as np
import sympy as sp
from _timing import best_of

# Appended, not prepended: PYTHONPATH (a tree under test, e.g. a pristine "before" copy)
# wins over this checkout.
sys.path.append(str(Path(__file__).resolve().parents[1]))

import exactdyn as ed  # noqa: E402
from exactdyn.numeric.highprec import heyoka_system  # noqa: E402

T_END = 10.0
DIGITS = (16, 30, 50, 100)
MODELS = {
    "Linear1D": lambda: ed.Linear1D(width=8),
    "LinearNet": lambda: ed.LinearNet(3, 4, 2, sigma_yx=[[1.0, 0.5, 0.0], [0.0, 1.0, 0.3]]),
    "DeepLinear": lambda: ed.DeepLinear(depth=3, width=4, in_dim=2, out_dim=2,
                                        sigma_yx=[[1.0, 0.3], [0.2, 0.8]]),
}
LABELS = {"Linear1D": "Linear1D width 8", "LinearNet": "LinearNet 3-4-2",
          "DeepLinear": "DeepLinear depth 3, width 4, 2→2"}


def best_cpu(f, repeat: int = 3):
    """``(best CPU time of this process, last result)`` of ``repeat`` calls of ``f()``.

    CPU time, not wall time: both integrators run on one thread, and on a machine shared
    with other jobs the wall time of a 10 ms call varies by several times between runs
    while its CPU time does not, so the ratios are read from CPU time.
    """
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.process_time()
        out = f()
        best = min(best, time.process_time() - t0)
    return best, out


def _state_names(lowered):
    return list(lowered.slices)


def matrix_heyoka_system(lowered, bits):
    """A matrix flow's right-hand sides as a heyoka system, entry by entry.

    The derived matrix expression is evaluated on numpy object arrays of heyoka
    expressions (each state matrix a matrix of heyoka variables): products, sums and
    transposes stay as in the derivation, not expanded, so heyoka's own decomposition
    sees the shared subexpressions (the residual ``W_L...W_1 Sigma_xx - Sigma_yx``). The
    data matrices and the learning rates enter as the exact binary values of their
    float64 entries.
    """
    import heyoka as hy

    flow = lowered.flow
    model = lowered.model
    bases = list(flow.params) if hasattr(flow, "params") else list(flow.network.params)
    shapes = {b.name: lowered.shapes[b.name] for b in bases}
    if hasattr(model, "symbol_values"):
        values = model.symbol_values()
    else:
        syx, sxx = model.data_matrices()
        values = {flow.hyper["Sigma_yx"]: syx, flow.hyper["Sigma_xx"]: sxx}

    def num(x):
        return hy.expression(hy.real(float(x), bits))

    env = {}
    for b in bases:
        rows, cols = shapes[b.name]
        env[b] = np.array([[hy.make_vars(f"{b.name}_{i}_{j}") for j in range(cols)]
                           for i in range(rows)], dtype=object)
    for k, v in values.items():
        if isinstance(k, sp.MatrixSymbol):
            env[k] = np.vectorize(num, otypes=[object])(np.asarray(v, dtype=float))
        else:
            env[k] = num(v)

    def tr(e):
        if e in env:
            return env[e]
        if isinstance(e, sp.Transpose):
            return tr(e.arg).T
        if isinstance(e, sp.MatAdd):
            out = tr(e.args[0])
            for a in e.args[1:]:
                out = out + tr(a)
            return out
        if isinstance(e, (sp.MatMul, sp.Mul)):
            out = None
            for a in e.args:
                x = tr(a)
                if out is None:
                    out = x
                elif isinstance(out, np.ndarray) and isinstance(x, np.ndarray):
                    out = np.dot(out, x)
                else:
                    out = out * x
            return out
        if e.is_Number:
            return num(e)
        raise ValueError(f"cannot translate {type(e).__name__}: {e}")

    system = []
    for b in bases:
        rhs = tr(flow.rhs[b])
        variables = env[b]
        for i in range(shapes[b.name][0]):
            for j in range(shapes[b.name][1]):
                system.append((variables[i, j], rhs[i, j]))
    return system


def final_state(tr, names):
    return np.concatenate([np.asarray(tr.state[n][-1], dtype=object).ravel() for n in names])


def run_cell(name, model, digits, repeat):
    import heyoka as hy

    lowered = ed.lower(model)  # derivation and lowering are cached: not timed
    names = _state_names(lowered)
    y0 = np.concatenate([np.asarray(model.initial_state()[n], dtype=float).ravel()
                         for n in names])
    ed.solve(model, [T_END], precision=digits)  # warm caches (engine programs, heyoka off)
    t_ours, tr = best_cpu(lambda: ed.solve(model, [T_END], precision=digits), repeat)
    ours = final_state(tr, names)

    bits = math.ceil(digits * math.log2(10))

    def build():
        sys_ = (heyoka_system(lowered, bits) if name == "Linear1D"
                else matrix_heyoka_system(lowered, bits))
        state = np.array([hy.real(float(v), bits) for v in y0])
        return hy.taylor_adaptive(sys_, state, fp_type=hy.real, prec=bits)

    t_compile, ta = best_of(build, 1)

    def run():
        ta.time = hy.real(0, bits)
        ta.state[:] = np.array([hy.real(float(v), bits) for v in y0])
        return ta.propagate_until(hy.real(T_END, bits))

    t_hy, res = best_cpu(run, max(repeat, 3))
    with mpmath.workdps(digits + 10):
        theirs = [mpmath.mpf(str(v)) for v in ta.state]
        ours_mp = [mpmath.mpf(v) for v in ours]
        scale = max(abs(x) for x in ours_mp)
        err = max(abs(a - b) for a, b in zip(theirs, ours_mp, strict=True)) / scale
        if not err < mpmath.mpf(10) ** -(digits - 6):
            raise SystemExit(f"{name} at {digits} digits: heyoka disagrees with exactdyn, "
                             f"relative error {mpmath.nstr(err, 3)}")
    return {"ours": t_ours, "steps": tr.meta["steps"], "order": tr.meta["order"],
            "engine": tr.meta.get("engine", "mpz").split(" (")[0],
            "hy": t_hy, "hy_steps": int(res[3]), "hy_order": ta.order,
            "compile": t_compile, "err": float(err)}


def odefun_row():
    model = MODELS["Linear1D"]()
    lowered = ed.lower(model)
    y0 = lowered.pack(model.initial_state())
    with mpmath.workdps(50):
        y0_mp = [mpmath.mpf(float(v)) for v in y0]
        t0 = time.perf_counter()
        f = mpmath.odefun(lambda t, y: list(lowered.rhs_mp(t, np.array(y, dtype=object))),
                          0, y0_mp)
        f(mpmath.mpf(T_END))
        return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--digits", default=",".join(map(str, DIGITS)))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--odefun", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"
                                         / "highprec.md"))
    args = ap.parse_args(argv)
    import heyoka as hy

    digits = [int(d) for d in args.digits.split(",")]
    lines = [
        f"# High-precision integration against heyoka.py (t = {T_END:g})",
        "",
        f"Python {platform.python_version()}, numpy {np.__version__}, mpmath "
        f"{mpmath.__version__}, heyoka {hy.__version__}, {platform.machine()}; exactdyn "
        f"{ed.__version__}. CPU time of this process, best of "
        f"{args.repeat} (heyoka: of {max(args.repeat, 3)}); JIT compile: wall time, once.",
        "",
        "| model | digits | exactdyn `solve` CPU [s] | steps, order, arithmetic | heyoka "
        "integration CPU [s] | steps, order | exactdyn / heyoka | heyoka JIT compile [s] "
        "| agreement |",
        "|---|---:|---:|---|---:|---|---:|---:|---:|",
    ]
    for name in args.models.split(","):
        model = MODELS[name]()
        for d in digits:
            r = run_cell(name, model, d, args.repeat)
            lines.append(f"| {LABELS[name]} | {d} | {r['ours']:.4f} | {r['steps']}, "
                         f"{r['order']}, {r['engine']} | {r['hy']:.4f} | {r['hy_steps']}, {r['hy_order']} | "
                         f"{r['ours'] / r['hy']:.2f}x | {r['compile']:.2f} | "
                         f"{r['err']:.0e} |")
            print(lines[-1], flush=True)
    if args.odefun:
        lines += ["", f"`mpmath.odefun` on Linear1D width 8 at 50 digits: {odefun_row():.1f} s "
                  "(one call)."]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
