"""What the command line's modules share: the one-line-error parser, number lists and
times, the run of a family with its own parser (two-layer, cnn), and printing."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ..closed_form import exact
from ..solve import solve
from ..verify import verify


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line and exits 2."""

    def error(self, message):
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _floats(name: str, text: str) -> list:
    items = text.split(",")
    if len(items) > 1 and any(x.strip() == "" for x in items):
        raise ValueError(f"{name} has an empty item (two commas in a row, or a comma at an "
                         f"end); got {text!r}")
    try:
        values = [float(x) for x in items if x.strip() != ""]
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


_NO_REGIME = ("skip the regime section (classify can cost several training runs, e.g. "
              "the two-layer RD slope over widths)")
_NO_PROGRESS = ("no progress on stderr (by default a bar is shown on a terminal only, once "
                "the run has lasted a couple of seconds)")


def add_family_run_options(p, command: str, save: bool = False) -> None:
    """Times, output and per-command options of ``exactdyn COMMAND two-layer|cnn`` (the
    families with their own parser); ``save`` adds ``--save`` to solve and exact."""
    t = p.add_argument_group("times and output")
    t.add_argument("--t", help="output times, comma-separated")
    t.add_argument("--t-span", help="START:END of evenly spaced times (default 0:10)")
    t.add_argument("--points", type=int, default=11, help="number of times in --t-span")
    if command == "report":
        p.set_defaults(points=41)
        t.add_argument("--precision", type=int, default=50,
                       help="digits of the high-precision part (not available: recorded)")
        t.add_argument("--out", required=True, help="the report's directory (replaced whole)")
        t.add_argument("--no-figures", action="store_true", help="skip figures/*.png, *.svg")
        t.add_argument("--no-regime", action="store_true", help=_NO_REGIME)
        t.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS)
        return
    t.add_argument("--format", choices=("table", "json", "csv"), default="table")
    if command == "verify":
        t.add_argument("--rtol", type=float, default=None,
                       help="integrator relative tolerance (default 1e-13)")
        t.add_argument("--order-tol", type=float, default=None,
                       help="pass when the fitted order >= predicted - this (default 0.2)")
        return
    if save and command in ("solve", "exact"):
        t.add_argument("--save",
                       help="also write the whole trajectory (states W, a) to this .npz")
    if command == "solve":
        p.add_argument("--method", default=None, help="DOP853 (default), RK45 or RK23")
        p.add_argument("--rtol", type=float, default=1e-10, help="relative tolerance (1e-10)")
        p.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS)


def family_report_build(build_parser, model_from_args, argv) -> tuple:
    """``(model, times, precision)`` from a report's recorded ``argv`` (without the name),
    for a family with its own parser (two-layer, cnn)."""
    args = build_parser("report").parse_args([*argv, "--out", "-"])
    return model_from_args(args), _times(args), args.precision


def run_family(command: str, argv, build_parser, model_from_args, classify_options=None) -> int:
    """``exactdyn {solve,exact,verify,report,classify} FAMILY ...`` for a family with its own
    parser and model builder (two-layer, cnn). ``classify_options(args)`` gives the
    keyword arguments of :func:`~exactdyn.regimes.classify` (families without a taxonomy
    pass None)."""
    args = build_parser(command).parse_args(argv)
    model = model_from_args(args)
    times = _times(args)
    if command == "report":
        from ..report import report

        if classify_options is not None and not args.no_regime and not args.no_progress:
            print("report: the regime section classifies the model (training runs over "
                  "several widths; --no-regime skips it) ...", file=sys.stderr, flush=True)
        rep = report(model, args.out, times, precision=args.precision,
                     figures=not args.no_figures, regime=not args.no_regime,
                     progress=False if args.no_progress else None)
        print(f"wrote {rep.path}: " + ", ".join(rep.files))
        return 0
    if command == "verify":
        rep = verify(model, times, rtol=args.rtol, order_tol=args.order_tol)
        print_order_report(rep, args.format)
        return 0 if rep.passed else 1
    if command == "classify":
        from ..regimes import classify

        print_regime(classify(model, **classify_options(args)), args.format)
        return 0
    if command == "solve":
        traj = solve(model, times, method=args.method, rtol=args.rtol,
                     progress=False if args.no_progress else None)
    else:
        traj = exact(model, times)
    if getattr(args, "save", None) is not None:
        traj.to_npz(args.save)
    print_trajectory(traj, args.format)
    return 0


def print_regime(regime, fmt: str) -> None:
    """A :class:`~exactdyn.regimes.Regime` on stdout as ``json``, ``csv`` or a table."""
    if fmt == "json":
        print(json.dumps(regime.to_dict()))
    elif fmt == "csv":
        print("name,value")
        print(f"label,{regime.label}\npredicted,{regime.predicted}")
        for k, v in regime.evidence.items():
            print(f"{k},{v!r}")
    else:
        print(f"label:     {regime.label}\npredicted: {regime.predicted}"
              f"\ntaxonomy:  {regime.taxonomy}")
        for k, v in regime.evidence.items():
            print(f"  {k:<24} {v:.6g}" if isinstance(v, float) else f"  {k:<24} {v}")


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


def print_trajectory(traj, fmt: str) -> None:
    """A trajectory on stdout as ``json``, ``csv`` or a ``table``."""
    if fmt == "json":
        print(traj.to_json())
    elif fmt == "csv":
        print(traj.to_csv(), end="")
    else:
        print(_table(traj))


def print_order_report(report, fmt: str) -> None:
    """A scale-convergence :class:`~exactdyn.verify.VerificationReport` (``kind
    "asymptotic"``, two-layer and CNN) on stdout as ``json``, ``csv`` or a ``table``."""
    if fmt == "json":
        print(json.dumps(report.to_dict()))
    elif fmt == "csv":
        errs = ",".join(f"error_x{f:g}" for f in report.factors)
        print(f"observable,{errs},order,order_bound,predicted_order,order_tol,passed")
        for c in report.checks:
            print(f"{c.name}," + ",".join(repr(e) for e in c.errors)
                  + f",{'' if c.order is None else repr(c.order)},"
                  f"{'' if c.order_bound is None else repr(c.order_bound)},{c.predicted},"
                  f"{c.order_tol!r},{c.passed}")
    else:
        print(report.table())
