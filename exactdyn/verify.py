"""Closed form against numerical integration: ``verify(model, t)``."""

from __future__ import annotations

from dataclasses import dataclass, field

import mpmath
import numpy as np

from . import _validation as check
from .closed_form import exact
from .solve import solve

#: Default pass thresholds: (relative, absolute), per precision.
FLOAT_TOL = (1e-9, 1e-12)
#: Integrator tolerance used by verify in float64 unless given.
VERIFY_RTOL = 1e-13


def _default_tol(precision):
    if precision is None:
        return FLOAT_TOL
    return (10.0 ** -(precision - 10), 10.0 ** -(precision - 7))


@dataclass
class ObservableCheck:
    """One observable's agreement. ``max_rel_error`` is taken over the points where the
    reference is nonzero; zeros are judged by ``max_abs_error``."""

    name: str
    max_abs_error: float
    max_rel_error: float
    rel_tol: float
    abs_tol: float

    passed: bool
    """Every point agrees within ``rel_tol`` relative or ``abs_tol`` absolute."""


@dataclass
class VerificationReport:
    """Per observable: max absolute and relative error of integrator vs closed form."""

    model: str
    params: dict
    precision: int | None
    method: str
    rtol: float
    checks: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def __getitem__(self, name) -> ObservableCheck:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {"model": self.model, "params": self.params, "precision": self.precision,
                "method": self.method, "rtol": self.rtol, "passed": self.passed,
                "observables": {c.name: {"max_abs_error": c.max_abs_error,
                                         "max_rel_error": c.max_rel_error,
                                         "rel_tol": c.rel_tol, "abs_tol": c.abs_tol,
                                         "passed": c.passed} for c in self.checks}}

    def table(self) -> str:
        prec = "float64" if self.precision is None else f"{self.precision} digits"
        head = (f"verify {self.model} ({prec}, integrator {self.method}, rtol {self.rtol:g})\n"
                f"{'observable':<12} {'max abs err':>12} {'max rel err':>12} "
                f"{'rel tol':>9} {'abs tol':>9}  passed")
        rows = [f"{c.name:<12} {c.max_abs_error:12.3e} {c.max_rel_error:12.3e} "
                f"{c.rel_tol:9.1e} {c.abs_tol:9.1e}  {'yes' if c.passed else 'NO'}"
                for c in self.checks]
        return "\n".join([head, *rows, f"overall: {'PASSED' if self.passed else 'FAILED'}"])

    __str__ = table

    def _repr_markdown_(self) -> str:
        rows = "\n".join(f"| {c.name} | {c.max_abs_error:.3e} | {c.max_rel_error:.3e} | "
                         f"{c.rel_tol:.0e} | {c.abs_tol:.0e} | {'✓' if c.passed else '✗'} |"
                         for c in self.checks)
        return ("| observable | max abs err | max rel err | rel tol | abs tol | passed |\n"
                "|---|---|---|---|---|---|\n" + rows)


def verify(model, t, precision: int | None = None, rtol: float | None = None,
           rel_tol: float | None = None, abs_tol: float | None = None,
           method: str | None = None) -> VerificationReport:
    """Compare the closed form with the integrator on every observable.

    A point passes when its error is within ``rel_tol`` relative *or* ``abs_tol``
    absolute (defaults: 1e-9 / 1e-12 in float64; 10^-(precision-10) / 10^-(precision-7)
    at ``precision`` digits). The integrator runs at ``rtol`` (default 1e-13 in float64,
    10^-precision otherwise).
    """
    times = check.times("t", t)
    precision = check.precision("precision", precision)
    d_rel, d_abs = _default_tol(precision)
    rel_tol = d_rel if rel_tol is None else check.positive("rel_tol", rel_tol)
    abs_tol = d_abs if abs_tol is None else check.positive("abs_tol", abs_tol)
    ref = exact(model, times, precision=precision)
    kwargs = {"method": method, "precision": precision}
    if rtol is not None:
        kwargs["rtol"] = check.positive("rtol", rtol)
    elif precision is None:
        # Long runs sit on the manifold of minima, where float64 round-off drifts along
        # neutral directions; one more digit of integrator tolerance keeps the check sharp.
        kwargs["rtol"] = VERIFY_RTOL
    num = solve(model, times, **kwargs)
    report = VerificationReport(model.name, model.params, precision, num.meta["method"],
                                num.meta["rtol"] if precision is None else 10.0**-precision)
    for name in ref.observables:
        a, b = ref.observables[name], num.observables[name]
        if precision is not None:
            # Matrix-valued observables (end-to-end map, singular values) entry by entry.
            a, b = np.ravel(a), np.ravel(b)
            with mpmath.workdps(precision + 5):
                diff = np.array([abs(x - y) for x, y in zip(a, b)], dtype=object)
                scale = np.array([abs(x) for x in a], dtype=object)
                finite = np.array([mpmath.isfinite(x) for x in a], dtype=bool)
                ok = [bool(d <= abs_tol or d <= rel_tol * s) for d, s, f in
                      zip(diff, scale, finite) if f]
                dabs = max((float(d) for d, f in zip(diff, finite) if f), default=0.0)
                drel = max((float(d / s) for d, s, f in zip(diff, scale, finite)
                            if f and s != 0), default=0.0)
        else:
            a, b = np.asarray(a, float), np.asarray(b, float)
            finite = np.isfinite(a)
            if not np.array_equal(finite, np.isfinite(b)):
                ok = [False]
                dabs = drel = float("inf")
            else:
                diff = np.abs(a - b)[finite]
                scale = np.abs(a)[finite]
                ok = list((diff <= abs_tol) | (diff <= rel_tol * scale))
                dabs = float(diff.max(initial=0.0))
                # Relative error where the reference is nonzero (zeros: see the abs error).
                drel = float((diff[scale > 0] / scale[scale > 0]).max(initial=0.0))
        report.checks.append(ObservableCheck(name, dabs, drel, rel_tol, abs_tol, all(ok)))
    return report
