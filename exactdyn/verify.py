"""Closed form against numerical integration: ``verify(model, t)``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mpmath
import numpy as np

from . import _mp
from . import _validation as check
from .closed_form import closed_form_order, exact, family_of
from .solve import solve

#: Default pass thresholds: (relative, absolute), per precision.
FLOAT_TOL = (1e-9, 1e-12)
#: Integrator tolerance used by verify in float64 unless given.
VERIFY_RTOL = 1e-13
#: Scale-convergence check of an approximate closed form: init scale factors, the allowed
#: shortfall of the fitted order below the predicted one, and the noise floor (a multiple
#: of the integrator's rtol) below which errors are not fitted.
SCALE_FACTORS = (1.0, 0.5, 0.25)
ORDER_TOL = 0.2
NOISE_FLOOR_FACTOR = 1e3


def _default_tol(precision):
    if precision is None:
        return FLOAT_TOL
    return (10.0 ** -(precision - 10), 10.0 ** -(precision - 7))


@dataclass
class ObservableCheck:
    r"""One observable's agreement.

    ``max_rel_error`` is taken over the points where the relative test is the looser one,
    :math:`\mathrm{rel\_tol}\,|\mathrm{ref}| \ge \mathrm{abs\_tol}`; nearer 0 (a loss at
    convergence, a coordinate crossing zero) a relative error says nothing and the point is
    judged by ``max_abs_error``. ``nan`` when no point is that far from 0.
    """

    name: str
    max_abs_error: float
    max_rel_error: float
    rel_tol: float
    abs_tol: float

    passed: bool
    """Every point agrees within ``rel_tol`` relative or ``abs_tol`` absolute."""

    passed_on: str = ""
    """Which test the points passed: ``"relative"`` (every point within ``rel_tol``),
    ``"absolute"`` (every point within ``abs_tol``, the reference never at least
    ``abs_tol / rel_tol`` from 0),
    ``"rel/abs"`` (the points far from 0 on the relative test, the others on the absolute
    one); ``""`` when the check failed."""

    @property
    def rel_text(self) -> str:
        """``max_rel_error`` for tables: ``n/a`` where it is not taken (reference near 0)."""
        return "n/a" if math.isnan(self.max_rel_error) else f"{self.max_rel_error:.3e}"


def _passed_on(rel_ok, abs_ok, far) -> str:
    """The name of the test every point passed (see :attr:`ObservableCheck.passed_on`).

    ``far``: the points where the relative test is the looser one (``rel_tol |ref| >=
    abs_tol``); there passing the absolute test implies the relative one, nearer 0 the
    converse, so a passing row is relative, absolute, or relative far from 0 and absolute
    near it."""
    rel_ok, abs_ok = np.asarray(rel_ok, bool), np.asarray(abs_ok, bool)
    far = np.asarray(far, bool)
    if not (rel_ok | abs_ok).all():
        return ""
    if not far.any():  # the reference never leaves the band around 0
        return "absolute"
    return "relative" if rel_ok.all() else "rel/abs"


@dataclass
class OrderCheck:
    r"""Scale convergence of one quantity of an approximate closed form.

    ``errors[j]`` is the relative error :math:`\max_t\|x_\mathrm{exact}(t) -
    x_\mathrm{flow}(t)\| / \max_t\|x_\mathrm{flow}(t)\|` (norms over all entries) of the
    model with its init scaled by ``factors[j]``; ``order`` is the least-squares slope of
    :math:`\log e` against :math:`\log(\mathrm{factor})` over the errors above ``floor``
    (``None`` when fewer than two are; then ``order_bound`` is the slope to the floor, a
    lower bound, or ``None``)."""

    name: str
    errors: tuple
    order: float | None
    order_bound: float | None
    predicted: int
    order_tol: float
    floor: float
    note: str

    passed: bool
    """Errors decrease with the scale and ``order >= predicted - order_tol`` (or every
    error is at the noise floor)."""

    @property
    def passed_on(self) -> str:
        """Which test the row passed: ``"order"`` (fitted order), ``"noise floor"`` (errors
        at the integrator's round-off), ``"t = 0"``; ``""`` when it failed."""
        if not self.passed:
            return ""
        if self.order is not None:
            return "order"
        return "t = 0" if self.note.startswith("t = 0") else (
            "order bound" if self.order_bound is not None else "noise floor")

    @property
    def order_text(self) -> str:
        if self.order is not None:
            return f"{self.order:.2f}"
        if self.order_bound is not None:
            return f">={self.order_bound:.1f}"
        return "-"

    def to_dict(self) -> dict:
        return {"errors": list(self.errors), "order": self.order,
                "order_bound": self.order_bound, "predicted_order": self.predicted,
                "order_tol": self.order_tol, "floor": self.floor, "note": self.note,
                "passed": self.passed}


@dataclass
class VerificationReport:
    """Per observable: max absolute and relative error of integrator vs closed form."""

    model: str
    params: dict
    precision: int | None
    method: str
    rtol: float
    checks: list = field(default_factory=list)
    kind: str = "exact"
    """``"exact"``: :class:`ObservableCheck` rows; ``"asymptotic"``: :class:`OrderCheck`
    rows of the scale-convergence check."""
    factors: tuple = ()
    """Init scale factors of the asymptotic check (empty for ``"exact"``)."""
    note: str = ""
    gd: object = None
    """The check of gradient descent against the flow and the modified flow
    (:class:`~exactdyn.GDVerification`, with ``verify(..., lrs=...)``); ``None`` otherwise.
    ``kind="gd"``: a model without a closed form, checked on gradient descent alone."""

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks) and (self.gd is None or self.gd.passed)

    def _gd_dict(self) -> dict:
        g = self.gd
        return {} if g is None else {"gd": {
            "t": g.t, "lrs": g.lrs.tolist(), "error_flow": g.error_flow.tolist(),
            "error_modified": g.error_modified.tolist(), "order_flow": g.order_flow,
            "order_modified": g.order_modified, "passed": g.passed}}

    def _gd_text(self) -> list:
        g = self.gd
        if g is None:
            return []
        return [f"gradient descent at t = {g.t:g}: global error against the flow (order 1 "
                "expected) and the modified flow (order 2)", g.table(),
                f"gd: {'passed' if g.passed else 'FAILED'} (order against the flow within "
                "1 +- 0.05, against the modified flow within 2 +- 0.1)"]

    def __getitem__(self, name) -> ObservableCheck:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict:
        if self.kind == "asymptotic":
            return {"model": self.model, "params": self.params, "precision": self.precision,
                    "method": self.method, "rtol": self.rtol, "passed": self.passed,
                    "kind": self.kind, "factors": list(self.factors), "note": self.note,
                    "observables": {c.name: c.to_dict() for c in self.checks},
                    **self._gd_dict()}
        if self.kind == "gd":
            return {"model": self.model, "params": self.params, "precision": None,
                    "method": self.method, "rtol": self.rtol, "passed": self.passed,
                    "kind": self.kind, "observables": {}, "note": self.note,
                    **self._gd_dict()}
        return {"model": self.model, "params": self.params, "precision": self.precision,
                "method": self.method, "rtol": self.rtol, "passed": self.passed,
                "observables": {c.name: {"max_abs_error": c.max_abs_error,
                                         "max_rel_error": c.max_rel_error,
                                         "rel_tol": c.rel_tol, "abs_tol": c.abs_tol,
                                         "passed": c.passed, "passed_on": c.passed_on}
                                 for c in self.checks},
                "note": self.note, **self._gd_dict()}

    def _name_width(self) -> int:
        return max([12, *(len(c.name) for c in self.checks)])

    def table(self) -> str:
        if self.kind == "asymptotic":
            return "\n".join([self._order_table(), *self._gd_text()])
        if self.kind == "gd":
            return "\n".join([f"verify {self.model}: gradient descent (no closed form; "
                              f"flows integrated at rtol {self.rtol:g})", *self._gd_text(),
                              f"overall: {'PASSED' if self.passed else 'FAILED'}"])
        prec = "float64" if self.precision is None else f"{self.precision} digits"
        w = self._name_width()
        head = (f"verify {self.model} ({prec}, integrator {self.method}, rtol {self.rtol:g})\n"
                f"{'observable':<{w}} {'max abs err':>12} {'max rel err':>12} "
                f"{'rel tol':>9} {'abs tol':>9}  passed")
        rows = [f"{c.name:<{w}} {c.max_abs_error:12.3e} {c.rel_text:>12} "
                f"{c.rel_tol:9.1e} {c.abs_tol:9.1e}  "
                + (f"yes ({c.passed_on})" if c.passed else "NO")
                for c in self.checks]
        legend = ("passed on: relative (every point within rel tol), absolute (|ref| < abs "
                  "tol / rel tol at every point, within abs tol), rel/abs (relative where "
                  "|ref| >= abs tol / rel tol, absolute nearer 0); max rel err is taken only "
                  "where |ref| >= abs tol / rel tol (n/a: nowhere)")
        note = [f"note: {self.note}"] if self.note else []
        return "\n".join([head, *rows, legend, *note, *self._gd_text(),
                          f"overall: {'PASSED' if self.passed else 'FAILED'}"])

    __str__ = table

    def _order_table(self) -> str:
        facs = [f"err x{f:g}" for f in self.factors]
        w = self._name_width()
        cw = max([10, *(len(h) for h in facs)])
        head = (f"verify {self.model}: asymptotic closed form, scale convergence (float64, "
                f"integrator {self.method}, rtol {self.rtol:g})\n"
                f"relative error of the closed form vs the full flow, max over t, at init "
                f"scale x {', '.join(f'{f:g}' for f in self.factors)}; order = fitted p in "
                f"error ~ scale^p\n"
                f"{'observable':<{w}} " + " ".join(f"{h:>{cw}}" for h in facs)
                + f" {'order':>7} {'predicted':>9}  passed")
        rows = [f"{c.name:<{w}} " + " ".join(f"{e:{cw}.3e}" for e in c.errors)
                + f" {c.order_text:>7} {c.predicted:>9d}  "
                + (f"yes ({c.passed_on})" if c.passed else "NO")
                for c in self.checks]
        notes = [f"  {c.name}: {c.note}" for c in self.checks if c.note]
        tail = [f"pass: order >= predicted - {self.checks[0].order_tol:g} and errors "
                f"decreasing (scale convergence); errors below {self.checks[0].floor:.0e} "
                "(noise floor) are not fitted"] if self.checks else []
        note = [f"note: {self.note}"] if self.note else []
        return "\n".join([head, *rows, *(["notes:", *notes] if notes else []), *tail, *note,
                          f"overall: {'PASSED' if self.passed else 'FAILED'}"])

    def _repr_markdown_(self) -> str:
        mark = lambda c: f"✓ {c.passed_on}" if c.passed else "✗"  # noqa: E731
        note = f"\n\n{self.note}" if self.note else ""
        if self.gd is not None:
            note += "\n\n" + self.gd._repr_markdown_()
        if self.kind == "gd":
            return note.strip()
        if self.kind == "asymptotic":
            head = " | ".join(f"err ×{f:g}" for f in self.factors)
            rows = "\n".join(f"| {c.name} | " + " | ".join(f"{e:.3e}" for e in c.errors)
                             + f" | {c.order_text} | {c.predicted} | {mark(c)} |"
                             for c in self.checks)
            return (f"| observable | {head} | order | predicted | passed |\n"
                    "|---|" + "---|" * len(self.factors) + "---|---|---|\n" + rows)
        rows = "\n".join(f"| {c.name} | {c.max_abs_error:.3e} | {c.rel_text} | "
                         f"{c.rel_tol:.0e} | {c.abs_tol:.0e} | {mark(c)} |"
                         for c in self.checks)
        return ("| observable | max abs err | max rel err | rel tol | abs tol | passed |\n"
                "|---|---|---|---|---|---|\n" + rows + note)


def verify(model, t, precision: int | None = None, rtol: float | None = None,
           rel_tol: float | None = None, abs_tol: float | None = None,
           method: str | None = None, order_tol: float | None = None,
           lrs=None) -> VerificationReport:
    r"""Compare the closed form with the integrator on every observable; with ``lrs``,
    also gradient descent with those steps against the flow and the modified flow.

    With ``lrs`` (at least two steps, each dividing the last time of ``t``): the report's
    ``gd`` is :func:`exactdyn.verify_gd` at the last time, and it passes only when the
    fitted order of GD's global error is 1 ± 0.05 against the gradient flow and
    2 ± 0.1 against the modified flow
    :math:`\dot\theta = -H\nabla(L + \tfrac h4\nabla L^\top H\nabla L)`
    (backward error analysis; Barrett & Dherin 2021). A model without a closed form gets
    this check alone (``kind="gd"``).

    **Exact closed forms** (linear1d, linear, single neuron, deep linear): a point passes
    when its error is within ``rel_tol`` relative *or* ``abs_tol`` absolute (defaults:
    1e-9 / 1e-12 in float64; 10^-(precision-10) / 10^-(precision-7) at ``precision``
    digits). The integrator runs at ``rtol`` (default 1e-13 in float64, 10^-precision
    otherwise).

    **Approximate closed forms** (:func:`~exactdyn.closed_form.closed_form_order` not
    ``None``: :class:`~exactdyn.TwoLayer`, :class:`~exactdyn.TwoLayerCNN`): the closed form
    is an early-stage approximation whose relative error at fixed t is
    :math:`e(\varepsilon) = C\varepsilon^p + O(\varepsilon^{p+2})` in the init scale ε
    (p = 2 for tanh and ReLU; 1 when σ''(0) ≠ 0), so agreement to round-off is the wrong
    test. Instead a *scale-convergence* check runs (``kind="asymptotic"``): copies of the
    model with the initial state multiplied by the factors :data:`SCALE_FACTORS` (1, 1/2,
    1/4; same data, activation, α, bias / padding, built with ``from_init``) are solved in
    closed form and integrated (rtol 1e-13), and for the state (all of W and a) and each
    observable the relative error

    .. math::

        e_j = \frac{\max_t \|x_\mathrm{exact}(t) - x_\mathrm{flow}(t)\|}
                   {\max_t \|x_\mathrm{flow}(t)\|}

    (norms over all entries) is fitted to :math:`e \propto \varepsilon^p` by the
    least-squares slope of :math:`\log e` against :math:`\log\varepsilon`. A row passes
    when the errors decrease with the scale and the fitted order is at least the predicted
    one minus ``order_tol`` (default :data:`ORDER_TOL` = 0.2). Why 0.2: the next term of
    the expansion is relative :math:`O(\varepsilon^2)` to the leading one, so at a scale
    inside the early phase it shifts the slope by a few hundredths (tests measure 1.9-2.1
    for p = 2), while the integrator's error, kept below the fitted errors by the noise
    floor, moves it by less than 1e-3; a closed form that is wrong at order 1 (slope 1) or
    O(1) (slope 0) falls far outside. The criterion is one-sided: an observable may
    converge faster than the state (the loss's error is relative
    :math:`O(\varepsilon^4)`, its first-order change in f being already
    :math:`O(\varepsilon^2)`). Errors below the noise floor
    :data:`NOISE_FLOOR_FACTOR` × rtol (1e-10) are round-off of the integrator, not
    linearization error, and are not fitted: when at most one scale is above it the row
    passes with a note (t = 0 alone gives zero error), the slope from the largest scale
    down to the floor shown as a lower bound. The check is meaningful when the model's init
    is small and t is inside the early phase; at a large init the errors do not follow the
    power law and the check fails, as it should.

    ``rel_tol`` and ``abs_tol`` apply only to exact closed forms, ``order_tol`` only to
    approximate ones; ``precision`` is not available for approximate closed forms. The
    derivation report of the two-layer network (:mod:`exactdyn.report.twolayer`) checks a
    single scale against ``10 scale²``, a cruder statement of the same order 2.
    """
    if lrs is not None:
        return _with_gd(model, t, lrs, precision=precision, rtol=rtol, rel_tol=rel_tol,
                        abs_tol=abs_tol, method=method, order_tol=order_tol)
    times = check.times("t", t)
    precision = check.precision("precision", precision)
    order = closed_form_order(model)
    if order is not None:
        if precision is not None:
            raise ValueError(f"precision is not available for {model.name}'s approximate "
                             "(early-stage) closed form; use precision=None")
        if rel_tol is not None or abs_tol is not None:
            raise ValueError(f"rel_tol and abs_tol apply to exact closed forms; "
                             f"{model.name}'s is approximate (scale-convergence check): "
                             "use order_tol")
        order_tol = ORDER_TOL if order_tol is None else check.positive("order_tol", order_tol)
        return _verify_asymptotic(model, times, order, order_tol, rtol, method)
    if order_tol is not None:
        raise ValueError(f"order_tol applies to approximate closed forms (two-layer, cnn); "
                         f"{model.name}'s closed form is exact: use rel_tol / abs_tol")
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
    # A user network's closed form gives the state; compare it too (built-in families'
    # observables already cover their state's invariants, as the reports show).
    names = list(ref.observables) + (list(ref.state) if family_of(model).compare_state else [])
    for name in names:
        a, b = ref[name], num[name]
        if precision is not None:
            # Matrix-valued observables (end-to-end map, singular values) entry by entry.
            a, b = np.ravel(a), np.ravel(b)
            with _mp.workdps(precision + 5):
                diff = np.array([abs(x - y) for x, y in zip(a, b)], dtype=object)
                scale = np.array([abs(x) for x in a], dtype=object)
                finite = np.array([mpmath.isfinite(x) for x in a], dtype=bool)
                rel_ok = [bool(d <= rel_tol * s) for d, s, f in zip(diff, scale, finite) if f]
                abs_ok = [bool(d <= abs_tol) for d, f in zip(diff, finite) if f]
                far = [bool(rel_tol * s >= abs_tol) for s, f in zip(scale, finite) if f]
                ok = [r or b for r, b in zip(rel_ok, abs_ok)]
                dabs = max((float(d) for d, f in zip(diff, finite) if f), default=0.0)
                drel = max((float(d / s) for d, s, f in zip(diff, scale, finite)
                            if f and rel_tol * s >= abs_tol), default=math.nan)
        else:
            a, b = np.asarray(a, float), np.asarray(b, float)
            finite = np.isfinite(a)
            if not np.array_equal(finite, np.isfinite(b)):
                ok = rel_ok = abs_ok = far = [False]
                dabs = drel = float("inf")
            else:
                diff = np.abs(a - b)[finite]
                scale = np.abs(a)[finite]
                rel_ok, abs_ok = diff <= rel_tol * scale, diff <= abs_tol
                ok = list(rel_ok | abs_ok)
                dabs = float(diff.max(initial=0.0))
                far = rel_tol * scale >= abs_tol  # elsewhere the absolute test decides
                drel = float((diff[far] / scale[far]).max()) if far.any() else math.nan
        report.checks.append(ObservableCheck(name, dabs, drel, rel_tol, abs_tol, all(ok),
                                             _passed_on(rel_ok, abs_ok, far)))
    if precision is None and not report.passed:
        report.note = _float64_cause(model, times, ref, report)
    return report


#: Digits of the closed form's own evaluation that tells a float64 failure's cause.
CAUSE_DIGITS = 30


def _float64_cause(model, times, ref, report) -> str:
    """Why a float64 check failed: the closed form against its own high-precision
    evaluation. If they agree within the tolerances, the integrator lost the digits (saddle
    passages, long runs near a manifold of minima) and ``precision=`` is the remedy."""
    try:
        hp = exact(model, times, precision=CAUSE_DIGITS)
    except (ValueError, NotImplementedError):
        return ""
    worst = 0.0
    for c in report.checks:
        if c.passed or c.name not in hp.observables:
            continue
        a = np.asarray(ref.observables[c.name], float)
        b = np.asarray(hp.observables[c.name], float)
        ok = np.isfinite(a) & np.isfinite(b)
        if not np.array_equal(ok, np.isfinite(b)):
            return ""
        d = np.abs(a - b)[ok]
        sc = np.abs(b)[ok]
        if not np.all((d <= c.abs_tol) | (d <= c.rel_tol * sc)):
            return (f"the float64 closed form itself differs from its {CAUSE_DIGITS}-digit "
                    f"evaluation on {c.name} (by {d.max():.1e}): its float64 evaluation loses "
                    "digits here")
        far = c.rel_tol * sc >= c.abs_tol
        worst = max(worst, float((d[far] / sc[far]).max()) if far.any() else 0.0)
    return (f"the float64 closed form agrees with its own {CAUSE_DIGITS}-digit evaluation "
            f"(to {worst:.1e} relative), so the float64 integrator lost the digits (e.g. "
            f"through saddle passages): verify with precision={CAUSE_DIGITS} "
            f"(CLI --precision {CAUSE_DIGITS})")


def rescaled(model, factor: float):
    """A copy of ``model`` with its initial state multiplied by ``factor`` (the model
    protocol's ``with_init_scaled``: same data, activation, α and bias / padding)."""
    factor = check.positive("factor", factor)
    if not hasattr(model, "with_init_scaled"):
        raise ValueError(f"{type(model).__name__} cannot rescale its init "
                         "(no with_init_scaled)")
    return model.with_init_scaled(factor)


def _rel_error(ref, num) -> float:
    """max_t ||ref(t) - num(t)|| / max_t ||num(t)|| over all entries (time first)."""
    ref, num = np.asarray(ref, float), np.asarray(num, float)
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(num))):
        return float("inf")
    T = ref.shape[0]
    diff = np.linalg.norm((ref - num).reshape(T, -1), axis=1).max(initial=0.0)
    size = np.linalg.norm(num.reshape(T, -1), axis=1).max(initial=0.0)
    if size == 0:
        return 0.0 if diff == 0 else float("inf")
    return float(diff / size)


def _order_check(name, errors, factors, predicted, order_tol, floor, only_t0) -> OrderCheck:
    """Fit e ∝ factor^p over the errors above the floor and judge it (see :func:`verify`)."""
    e = np.asarray(errors, float)
    above = e > floor
    k = int(above.sum())
    # Errors must fall with the scale: the ones above the floor lead, strictly decreasing.
    leading = bool(np.all(above[:k])) and bool(np.all(np.diff(e[:k]) < 0))
    order = bound = None
    if not np.all(np.isfinite(e)):
        return OrderCheck(name, tuple(errors), None, None, predicted, order_tol, floor,
                          "not finite", False)
    if k == 0:
        note = ("t = 0 only: closed form and flow start from the same state" if only_t0 else
                "at the integrator's noise floor at every scale: order not measurable")
        return OrderCheck(name, tuple(errors), None, None, predicted, order_tol, floor,
                          note, True)
    if not leading:
        return OrderCheck(name, tuple(errors), None, None, predicted, order_tol, floor,
                          "errors do not decrease with the scale", False)
    if e[k - 1] >= 1.0:
        return OrderCheck(name, tuple(errors), None, None, predicted, order_tol, floor,
                          "relative error >= 1 even at the smallest scale: the closed form "
                          "does not approximate the flow there", False)
    lf = np.log(np.asarray(factors, float))
    if k == 1:
        bound = float(np.log(e[0] / floor) / (lf[0] - lf[1]))
        return OrderCheck(name, tuple(errors), None, bound, predicted, order_tol, floor,
                          "one scale above the noise floor: order not fitted", True)
    order = float(np.polyfit(lf[:k], np.log(e[:k]), 1)[0])
    ok = order >= predicted - order_tol
    note = "" if k == len(e) else f"fitted over the {k} largest scales (rest at the floor)"
    if not ok:
        note = (note + "; " if note else "") + (f"order {order:.2f} < predicted {predicted} "
                                                f"- {order_tol:g}")
    return OrderCheck(name, tuple(errors), order, None, predicted, order_tol, floor, note, ok)


#: When the check fails at the model's own scales while its errors there are below 1 (a
#: small init at the edge of the early phase, where the next-order terms still bend the
#: slope), it is repeated with the factors multiplied by SCALE_SHIFT, at most MAX_SHIFTS
#: times (down to init x 1/256).
SCALE_SHIFT = 0.25
MAX_SHIFTS = 3


def _with_gd(model, t, lrs, **options) -> VerificationReport:
    """:func:`verify` with the gradient-descent check (``lrs``)."""
    from .analysis.backward_error import verify_gd

    times = check.times("t", t)
    if not times[-1] > 0:
        raise ValueError("lrs: the gradient-descent check needs a last time t > 0")
    try:  # a closed form for this instance (its family may have one, its init not)
        exact(model, times[:1])
        why = ""
    except ValueError as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if not why:
        report = verify(model, times, **options)
    else:
        given = [k for k, v in options.items() if v is not None and k != "rtol"]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise ValueError(f"{', '.join(given)} {verb} to a closed form, and this "
                             f"{model.name} has none ({why}); verify(..., lrs=...) checks "
                             "gradient descent alone")
        report = VerificationReport(model.name, model.params, None, "gd",
                                    options["rtol"] or 1e-13, kind="gd",
                                    note=f"no closed form ({why}): gradient descent alone")
    kwargs = {} if options["rtol"] is None else {"rtol": options["rtol"]}
    report.gd = verify_gd(model, lrs, float(times[-1]), **kwargs)
    return report


def _verify_asymptotic(model, times, order, order_tol, rtol, method) -> VerificationReport:
    kwargs = {"method": method, "rtol": VERIFY_RTOL if rtol is None else
              check.positive("rtol", rtol)}
    cache: dict = {}  # factor -> ({name: error}, solver meta)

    def errors_at(f):
        if f not in cache:
            m = rescaled(model, f)
            ref, num = exact(m, times), solve(m, times, **kwargs)
            errs = {}
            for name in ["state", *[k for k in ref.observables if k in num.observables]]:
                if name == "state":
                    keys = sorted(ref.state)
                    a = np.concatenate([np.asarray(ref.state[k], float).reshape(len(times), -1)
                                        for k in keys], axis=1)
                    b = np.concatenate([np.asarray(num.state[k], float).reshape(len(times), -1)
                                        for k in keys], axis=1)
                else:
                    a, b = ref.observables[name], num.observables[name]
                errs[name] = _rel_error(a, b)
            cache[f] = (errs, num.meta)
        return cache[f]

    def attempt(factors):
        per = [errors_at(f) for f in factors]
        meta = per[0][1]
        used_rtol = float(meta["rtol"])
        floor = NOISE_FLOOR_FACTOR * used_rtol
        only_t0 = bool(np.all(times == 0))
        report = VerificationReport(
            model.name, model.params, None, meta["method"], used_rtol, kind="asymptotic",
            factors=tuple(factors),
            note=(f"the closed form is an early-stage approximation, relative error "
                  f"O(scale^{order}) at fixed t; checked by its convergence as the init "
                  "scale shrinks"))
        for name in per[0][0]:
            errs = [p[0][name] for p in per]
            report.checks.append(_order_check(name, errs, factors, order, order_tol, floor,
                                              only_t0))
        return report

    factors = tuple(SCALE_FACTORS)
    first = report = attempt(factors)
    shifts = 0
    while (not report.passed and shifts < MAX_SHIFTS
           and max(c.errors[0] for c in report.checks) < 1.0):
        factors = tuple(f * SCALE_SHIFT for f in factors)
        report = attempt(factors)
        shifts += 1
    if shifts:
        failed = "; ".join(f"{c.name}: {c.note or 'failed'}" for c in first.checks
                           if not c.passed)
        moved = (f"at init x {', '.join(f'{f:g}' for f in first.factors)} the check failed "
                 f"({failed}) with errors up to "
                 f"{max(c.errors[0] for c in first.checks):.2g}: the next-order terms still "
                 "bend the slope there, so it ran again at init x "
                 f"{', '.join(f'{f:g}' for f in factors)}")
        report.note += "; " + moved
    if not report.passed:
        report.note += ("; a failure means the closed form is wrong at this order, or the "
                        "init scale or the times lie outside the early phase (try a smaller "
                        "scale or earlier times)")
    return report
