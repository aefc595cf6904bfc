"""The ``exactdyn`` command line.

    exactdyn solve linear1d --width 64 --kappa 1 --t-span 0:10 --points 11
    exactdyn exact linear1d --u0 1,0 --w0 0.5,1 --t 0.5,1,2 --format json
    exactdyn verify linear1d --precision 50

Bad input prints one line (``exactdyn: error: ...``) and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from . import __version__
from .closed_form import exact
from .errors import IntegrationError
from .models.linear1d import Linear1D
from .solve import FLOAT_METHODS, PRECISION_METHODS, solve
from .verify import verify

MODELS = ("linear1d",)
MODELS += ("linear", "single-neuron")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line and exits 2."""

    def error(self, message):
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _floats(name: str, text: str) -> list:
    try:
        values = [float(x) for x in text.split(",") if x.strip() != ""]
    except ValueError:
        raise ValueError(
            f"{name} must be comma-separated numbers like 0.5,1,2; got {text!r}") from None
    if not values:
        raise ValueError(f"{name} must list at least one number; got {text!r}")
    return values


def _times(args) -> np.ndarray:
    if args.t is not None and args.t_span is not None:
        raise ValueError("give either --t or --t-span, not both")
    if args.t is not None:
        return np.array(_floats("--t", args.t))
    span = args.t_span or "0:10"
    parts = span.split(":")
    if len(parts) != 2:
        raise ValueError(f"--t-span must be START:END like 0:10; got {span!r}")
    try:
        start, end = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(
            f"--t-span must be START:END with numbers, like 0:10; got {span!r}") from None
    if not (np.isfinite(start) and np.isfinite(end)) or end < start:
        raise ValueError(f"--t-span needs finite START <= END; got {span!r}")
    if args.points < 1:
        raise ValueError(f"--points must be >= 1; got {args.points}")
    return np.linspace(start, end, args.points)


def _model(args):
    if args.model in ("linear", "single-neuron"):
        from .cli_linear import linear_model

        return linear_model(args, _floats)
    if args.model != "linear1d":  # argparse's choices already guard this
        raise ValueError(f"unknown model {args.model!r}; known: {', '.join(MODELS)}")
    if (args.u0 is None) != (args.w0 is None):
        raise ValueError("--u0 and --w0 go together (an explicit init needs both)")
    if args.u0 is not None:
        u0, w0 = _floats("--u0", args.u0), _floats("--w0", args.w0)
        if args.width is not None and args.width != len(u0):
            raise ValueError(f"--width {args.width} disagrees with --u0 of length {len(u0)}")
        return Linear1D.from_init(u0, w0, kappa=args.kappa, eta_u=args.eta_u, eta_w=args.eta_w,
                                  teacher=args.teacher, x_var=args.x_var)
    return Linear1D(width=64 if args.width is None else args.width, kappa=args.kappa,
                    eta_u=args.eta_u, eta_w=args.eta_w, sigma_u=args.sigma_u,
                    sigma_w=args.sigma_w, teacher=args.teacher, x_var=args.x_var, seed=args.seed)


def _add_model_options(p):
    p.add_argument("model", choices=MODELS, help="the model: linear1d (Xu & Ziyin), linear "
                   "(W2 W1 x, Saxe et al.), single-neuron (Kunin et al.)")
    g = p.add_argument_group("linear1d hyperparameters (MATH.md §1)")
    g.add_argument("--width", type=int, default=None, help="hidden width d >= 1 (default 64)")
    g.add_argument("--kappa", type=float, default=1.0, help="output scale, nonzero (default 1)")
    g.add_argument("--eta-u", type=float, default=1.0, help="readout learning rate > 0")
    g.add_argument("--eta-w", type=float, default=1.0, help="input-layer learning rate > 0")
    g.add_argument("--sigma-u", type=float, default=1.0, help="init std of u >= 0 (default 1)")
    g.add_argument("--sigma-w", type=float, default=1.0, help="init std of w >= 0 (default 1)")
    g.add_argument("--teacher", type=float, default=1.0, help="teacher slope c (default 1)")
    g.add_argument("--x-var", type=float, default=1.0, help="input second moment > 0")
    g.add_argument("--seed", type=int, default=0, help="seed of the random init (default 0)")
    g.add_argument("--u0", help="explicit init of u, comma-separated (with --w0)")
    g.add_argument("--w0", help="explicit init of w, comma-separated (with --u0)")
    from .cli_linear import add_options

    add_options(p)
    t = p.add_argument_group("times and output")
    t.add_argument("--t", help="output times, comma-separated, e.g. 0.5,1,2")
    t.add_argument("--t-span", help="START:END of evenly spaced times (default 0:10)")
    t.add_argument("--points", type=int, default=11, help="number of times in --t-span")
    t.add_argument("--precision", type=int, default=None,
                   help="significant digits (mpmath); default float64")
    t.add_argument("--format", choices=("table", "json", "csv"), default="table",
                   help="output format (default table)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="exactdyn", description="Exact gradient-flow dynamics of small "
                     "neural networks: integrate, solve in closed form, verify.")
    parser.add_argument("--version", action="version", version=f"exactdyn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("solve", help="integrate the full gradient flow numerically",
                       description="Integrate the model's gradient flow (derived symbolically, "
                       "lowered to numpy or mpmath).")
    _add_model_options(p)
    p.add_argument("--method", default=None, help="float64: " + ", ".join(FLOAT_METHODS)
                   + " (default DOP853); with --precision: " + ", ".join(PRECISION_METHODS))
    p.add_argument("--rtol", type=float, default=1e-12, help="relative tolerance (1e-12)")
    p.add_argument("--atol", type=float, default=None, help="absolute tolerance (scaled)")
    p.add_argument("--reduced", action="store_true", help="integrate the reduced equation")
    p = sub.add_parser("exact", help="evaluate the closed-form solution",
                       description="Evaluate the closed form (stable Möbius form).")
    _add_model_options(p)
    p = sub.add_parser("verify", help="closed form against the integrator",
                       description="Compare closed form and integrator on every observable.")
    _add_model_options(p)
    p.add_argument("--rtol", type=float, default=None, help="integrator relative tolerance")
    return parser


def _table(traj) -> str:
    names = [k for k, v in traj.observables.items() if np.ndim(v) == 1]
    digits = traj.precision or 10
    width = max(12, digits + 8)
    head = f"{'t':>{width}} " + " ".join(f"{n:>{width}}" for n in names)
    rows = [head]
    for i in range(len(traj.t)):
        cells = [_fmt(traj.t[i], digits)] + [_fmt(traj.observables[n][i], digits) for n in names]
        rows.append(" ".join(f"{c:>{width}}" for c in cells))
    return "\n".join(rows)


def _fmt(x, digits) -> str:
    import mpmath

    if isinstance(x, mpmath.mpf):
        return mpmath.nstr(x, digits)
    return f"{float(x):.{digits}g}"


def run(argv) -> int:
    args = build_parser().parse_args(argv)
    model = _model(args)
    times = _times(args)
    if args.command == "verify":
        report = verify(model, times, precision=args.precision, rtol=args.rtol)
        if args.format == "json":
            print(json.dumps(report.to_dict()))
        elif args.format == "csv":
            print("observable,max_abs_error,max_rel_error,rel_tol,abs_tol,passed")
            for c in report.checks:
                print(f"{c.name},{c.max_abs_error!r},{c.max_rel_error!r},{c.rel_tol!r},"
                      f"{c.abs_tol!r},{c.passed}")
        else:
            print(report.table())
        return 0 if report.passed else 1
    if args.command == "solve":
        traj = solve(model, times, method=args.method, rtol=args.rtol, atol=args.atol,
                     precision=args.precision, reduced=args.reduced)
    else:
        traj = exact(model, times, precision=args.precision)
    if args.format == "json":
        print(traj.to_json())
    elif args.format == "csv":
        print(traj.to_csv(), end="")
    else:
        print(_table(traj))
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(argv)
    except (_UsageError, ValueError, TypeError, IntegrationError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"exactdyn: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
