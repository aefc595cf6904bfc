"""What the command line's modules share: the one-line-error parser, number lists and
times, the run of a family with its own parser (two-layer, cnn), and printing."""

from __future__ import annotations

import argparse
import json

from ..models.fields import option_fields


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


def _times(args):
    import numpy as np  # here, not at the top: `exactdyn --help` imports no numpy
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


# ---------------------------------------------------------------- options from model fields


def add_field_options(parser, cls, title: str | None = None, skip=()) -> None:
    """One option per constructor field of ``cls`` the command line can type (see
    :mod:`exactdyn.models.fields`); an option not given leaves the constructor's
    default (the parsed value is ``None``)."""
    group = parser.add_argument_group(title or f"{cls.__name__} hyperparameters")
    for f in option_fields(cls):
        if f.name in skip:
            continue
        default = "" if f.required else f" (default {_default_text(f.default)})"
        help_text = (f.help or f.kind) + default
        if f.kind == "bool":
            group.add_argument(f.flag, dest=f.name, action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        else:
            group.add_argument(f.flag, dest=f.name, type=_parser_of(f), default=None,
                               required=f.required, help=help_text,
                               metavar=f.name.upper() if f.kind != "floats" else "X,Y,...")


def _default_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return "none" if value is None else str(value)


class _ExplicitNone:
    """``none`` typed for an optional field (``None`` itself means "not given")."""

    def __repr__(self) -> str:
        return "none"


EXPLICIT_NONE = _ExplicitNone()


def _parser_of(f):
    def parse(text):
        try:
            value = f.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return EXPLICIT_NONE if value is None else value

    parse.__name__ = f.kind  # argparse names the type in its message
    return parse


def given_fields(args, cls, skip=()) -> dict:
    """The constructor fields of ``cls`` given on the command line, by name (``none``
    typed for an optional field gives ``None``)."""
    out = {}
    for f in option_fields(cls):
        value = getattr(args, f.name, None)
        if f.name in skip or value is None:
            continue
        out[f.name] = None if value is EXPLICIT_NONE else value
    return out


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
    import numpy as np

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
