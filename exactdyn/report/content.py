r"""What a derivation report says, gathered once from the pipeline's objects.

Everything model-specific comes through the pipeline's public pieces, so a new model
plugs in without touching this module:

- the derivation: ``gradient_flow(model).steps`` (:class:`~exactdyn.symbolic.flow.DerivationStep`),
  the conserved quantities ``flow.conserved`` and the reduction's constants
  ``flow.reduced.constants`` (its steps are part of ``flow.steps``);
- the closed form: ``closed_form(model).equations()`` and ``.proofs`` (residuals that
  simplify to 0), when the model has one;
- the numbers: :func:`~exactdyn.verify` in float64 and at ``precision`` digits;
- the regime: ``exactdyn.classify(model)`` when the package has it;
- the command line: ``model.params`` mapped to the CLI's options (``eta_u`` -> ``--eta-u``,
  lists comma-separated).

Numbers written to the report's text and JSON are rounded so that they are the same on
every machine (see :func:`bound` and :func:`sig`).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import mpmath
import numpy as np
import sympy as sp

from .. import _mp
from .. import _validation as check
from ..symbolic.flow import DerivationStep

#: Significant digits of hyperparameters and values printed in the text and JSON.
VALUE_DIGITS = 12
#: Default output times of a report: 41 evenly spaced points on [0, 10].
DEFAULT_T = (0.0, 10.0, 41)


#: float64 errors below this are printed as "< 1e-10": 10 times below the default
#: relative tolerance, and above the errors the integrator reaches on the committed
#: reports on every supported version (deep-linear's, through its saddles, reach 1.2e-11
#: on the oldest scipy), so the printed text does not change with the versions.
FLOAT_FLOOR = 1e-10


def precision_floor(precision: int | None) -> float:
    r"""The smallest error a report prints as such at this precision.

    float64: :data:`FLOAT_FLOOR`. At ``precision`` significant digits the errors sit at
    round-off, :math:`10^{-p}` times the values, and their last digits move with the
    versions of mpmath and gmpy2 (summation order, guard bits), so everything below
    :math:`10^{-(p-5)}` is printed as that bound (``"< 1e-45"`` at 50 digits).
    """
    return FLOAT_FLOOR if precision is None else 10.0 ** -(int(precision) - 5)


def bound(x: float, tol: float | None = None, floor: float = FLOAT_FLOOR) -> str:
    r"""An error as a bound that is the same on every machine and library version.

    Errors depend on the platform's libm, the summation order and (in high precision)
    the versions of mpmath and gmpy2 in their last bits, so they are never printed as
    such: below ``floor`` (:func:`precision_floor`; :data:`FLOAT_FLOOR` for float64),
    0 included, the text is ``"< 1e-10"``; above it, the next power of ten
    (``"< 1e-07"``); above ``tol`` the text says so (for a relative error where the
    reference is near 0, whose point passes on the absolute tolerance).
    """
    x = float(x)  # mpmath errors too: only their decade is printed
    if math.isnan(x):  # a relative error with no reference far from 0
        return "n/a"
    if not math.isfinite(x):
        return "inf"
    if tol is not None and x > tol:
        return "> tol"
    if x < floor:
        # 0 too: an error that vanishes in one version's arithmetic is round-off in
        # another's (a 50-digit solve's error was 0 on the oldest versions, 2.5e-51 on
        # the newest)
        return f"< {floor:.0e}"
    e = math.floor(math.log10(x)) + 1
    if float(f"1e{e - 1}") > x:  # log10 rounded up across a power of ten
        e -= 1
    return f"< 1e{e:+03d}"


def sig(x, digits: int = 2) -> str:
    """``x`` with ``digits`` significant digits (mpmath numbers are exact software
    arithmetic, so their errors are the same on every machine)."""
    if isinstance(x, mpmath.mpf):
        if not mpmath.isfinite(x):
            return "nan" if mpmath.isnan(x) else "inf"
        if x == 0:
            return "0"
        return mpmath.nstr(x, digits, min_fixed=-3, max_fixed=3)
    x = float(x)
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return "inf" if x > 0 else "nan"
    return f"{x:.{digits - 1}e}"


@dataclass
class ReportContent:
    """The report's content, independent of its format."""

    model: object
    title: str
    command: str
    argv: list
    times: np.ndarray
    precision: int
    steps: list
    conserved: list  # of DerivationStep: definition, then its proven derivative
    constants: list  # of DerivationStep: the reduction's constants
    closed_form: list  # of DerivationStep (equations)
    proofs: list  # of DerivationStep (residual = 0)
    verification: dict = field(default_factory=dict)  # label -> VerificationReport
    regime: object = None  # classify(model)'s result or None
    regime_note: str = ""
    references: list = field(default_factory=list)
    figures: list = field(default_factory=list)  # (stem, caption)
    final_values: dict = field(default_factory=dict)  # observable -> text at the last time
    verification_notes: dict = field(default_factory=dict)  # label -> why it is missing
    #: Extra tables of a family's numbers, after the verification: dicts with "title",
    #: "note", "columns" and "rows" (text cells, already rounded for stability).
    tables: list = field(default_factory=list)
    #: Replaces the default sentence of an empty verification section when set.
    verification_text: str = ""
    #: stem -> callable(content, float64 trajectory) -> matplotlib Figure, for figures
    #: the generic drawer does not know (listed in ``figures`` like the others).
    figure_hooks: dict = field(default_factory=dict)
    #: The modified flow of gradient descent (:func:`modified_flow_steps`): its derivation
    #: steps, and a note (how a family computes it, or why it is not available).
    modified: list = field(default_factory=list)
    modified_note: str = ""

    @property
    def model_name(self) -> str:
        return self.model.name


def cli_args(model, times, precision) -> list | None:
    """The CLI arguments (after ``exactdyn report``) that rebuild ``model`` and the times,
    or ``None`` when the command line cannot build this instance (see :mod:`.argv`)."""
    from .argv import model_args

    args = model_args(model)
    if args is None:
        return None
    times = np.asarray(times, dtype=float)
    even = np.linspace(times[0], times[-1], times.size)
    if times.size > 1 and np.array_equal(even, times):
        args += ["--t-span", f"{_num(times[0])}:{_num(times[-1])}", "--points", str(times.size)]
    else:
        args += ["--t", ",".join(_num(x) for x in times)]
    args += ["--precision", str(precision)]
    return args


def param_text(v) -> str:
    """A hyperparameter as text: numbers by ``repr``, lists comma-separated, matrices as
    rows in brackets (``[1.0, 0.0]; [0.0, 2.0]``)."""
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        if any(isinstance(x, (list, tuple, np.ndarray)) for x in v):
            return "; ".join(f"[{param_text(x)}]" for x in v)
        return ", ".join(repr(float(x)) for x in v)
    return str(v)


def _num(x: float) -> str:
    x = float(x)
    return str(int(x)) if x.is_integer() else repr(x)


def _title(model) -> str:
    doc = sys.modules[type(model).__module__].__doc__ or type(model).__name__
    return doc.strip().splitlines()[0].rstrip(".")


#: The reference of the modified loss (one rate; the layer rates enter as H).
MODIFIED_REFERENCE = ("Barrett, Dherin, \"Implicit gradient regularization\", ICLR 2021 "
                      "(backward error analysis of gradient descent).")

#: The modified-flow section's introduction (Markdown and LaTeX alike).
MODIFIED_INTRO = (
    "Gradient descent with step h, theta(k+1) = theta(k) - h H grad L (H the diagonal of "
    "layer rates), follows to second order in h the modified flow below (backward error "
    "analysis): the flow's one-step map agrees with the GD step to O(h^3), so on a fixed "
    "time interval GD's global error is O(h) against the gradient flow and O(h^2) against "
    "the modified flow. The modified loss is L + (h/4) sum over layers p of "
    "eta_p ||dL/dp||^2, whose gradient flow is f - (h/2) f'f with f = -H grad L the "
    "derived flow. exactdyn.solve(model, t, lr=h) integrates it, exactdyn.gd(model, h, t) "
    "runs GD, and exactdyn.verify(model, t, lrs=[...]) fits both orders.")


def modified_flow_steps(flow) -> tuple:
    """``(steps, note)``: the derivation of the modified flow of a derived gradient flow
    (:func:`~exactdyn.symbolic.modified.derive_modified_flow`, indexed or matrix form),
    or no steps and why."""
    from ..symbolic.modified import derive_modified_flow

    try:
        mod = derive_modified_flow(flow)
    except (NotImplementedError, ValueError, TypeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [], f"Not available for this model: {msg}."
    return list(mod.steps), ""


def _conserved_steps(flow) -> list:
    t = sp.Symbol("t")
    out = []
    for q in flow.conserved:
        name = sp.Symbol(q.name)
        out.append(DerivationStep(f"{q.name}: definition", sp.Eq(name, q.expr, evaluate=False),
                                  q.origin))
        out.append(DerivationStep(
            f"{q.name}: derivative along the flow",
            sp.Eq(sp.Derivative(name, t), q.derivative, evaluate=False),
            "The chain rule through the reductions, with the derived right-hand sides "
            "substituted, simplifies to this.", proven=q.proven))
    return out


def _constant_steps(flow) -> list:
    red = getattr(flow, "reduced", None)
    if red is None or not getattr(red, "constants", None):
        return []
    return [DerivationStep(f"Constant {sym}", sp.Eq(sym, expr, evaluate=False),
                           "Defined through the state's reductions (conserved or fixed by the "
                           "hyperparameters).") for sym, expr in red.constants.items()]


#: Significant digits of regime evidence in reports: stable across platforms and library
#: versions. The evidence comes from float64 closed forms and integrations at rtol 1e-10
#: or looser, whose last digits move between versions; at 6 digits a value near a rounding
#: boundary flipped (derivations/two-layer did between the newest and oldest versions).
REGIME_DIGITS = 4


#: Evidence numbers below this in magnitude are round-off of float64 runs (a loss at
#: convergence: 3.4e-17 on today's versions, 3.1e-17 on the oldest): a report prints
#: ``"round-off (< 1e-12)"`` instead.
REGIME_FLOOR = 1e-12


def regime_summary(regime) -> dict:
    """``{"label", "predicted", "taxonomy", "evidence": {name: value}}`` with numbers
    rounded to :data:`REGIME_DIGITS` significant digits (non-finite as the text ``"inf"``,
    ``"-inf"`` or ``"nan"``: an infinite relative change from a zero kernel is evidence, not a
    missing value; nonzero values below :data:`REGIME_FLOOR` in magnitude as the text
    ``"round-off (< 1e-12)"``)."""
    def rounded(v):
        if isinstance(v, (list, tuple)):
            return [rounded(x) for x in v]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return v
        v = float(v)
        if not math.isfinite(v):
            return repr(v)
        if 0 < abs(v) < REGIME_FLOOR:
            return f"round-off (< {REGIME_FLOOR:.0e})"
        return float(f"{v:.{REGIME_DIGITS}g}")

    # Not ``regime.to_dict()``: its JSON form turns non-finite numbers into ``None``.
    return {"label": regime.label, "predicted": regime.predicted, "taxonomy": regime.taxonomy,
            "evidence": {k: rounded(v) for k, v in regime.evidence.items()}}


def regime_of(model, stage=None):
    """``(result, note)``: :func:`exactdyn.classify` of the model, or why not."""
    from ..regimes import classify

    if stage is not None:
        stage("regime")
    try:
        return classify(model), ""
    except (ValueError, TypeError, NotImplementedError) as exc:
        # Only the message's first clause: what follows (e.g. the registered taxonomies)
        # depends on the process, and the report must not.
        msg = str(exc).splitlines()[0].split(";")[0].strip(" '\"") if str(exc) else repr(exc)
        return None, f"not available ({msg})"


#: The stages of building a report, in order, as :func:`gather` and the gatherers announce
#: them (``stage(name)`` when one begins; a family may skip some) and
#: :func:`~exactdyn.report.writer.report` shows them (``progress=``).
STAGES = ("derivation", "integration", "closed form", "verification", "regime", "writing",
          "figures")


def _no_stage(name: str) -> None:
    pass


#: Families whose report is gathered by their own function (model type -> callable(model,
#: times, precision, regime=, stage=) -> ReportContent), registered by their report module;
#: ``stage(name)`` announces each of :data:`STAGES` the gatherer begins.
_GATHERERS: dict = {}


def register_gatherer(model_type: type, gather_fn) -> None:
    """Let ``model_type``'s report be gathered by ``gather_fn`` instead of :func:`gather`'s
    generic path (closed form, exact verification to round-off)."""
    _GATHERERS[model_type] = gather_fn


def gather(model, times=None, precision: int = 50, verify_numbers: bool = True,
           regime: bool = True, stage=None) -> ReportContent:
    """Collect the report's content for ``model`` at ``times`` (see module docstring).
    ``stage``: called with the name of each of :data:`STAGES` as it begins (progress)."""
    from ..closed_form import closed_form, exact
    from ..flows import gradient_flow
    from ..verify import verify

    own = next((_GATHERERS[c] for c in type(model).__mro__ if c in _GATHERERS), None)
    if own is None and not (hasattr(model, "symbolic_network")
                            or hasattr(model, "derive_flow")) or not hasattr(model, "name"):
        raise TypeError(f"model must be an exactdyn model instance such as Linear1D(...); "
                        f"got {type(model).__name__}")
    precision = check.precision("precision", precision)
    if precision is None:
        raise ValueError("precision must be an int of significant digits (e.g. 50); got None")
    times = np.linspace(*DEFAULT_T) if times is None else check.times("t", times)
    stage = _no_stage if stage is None else stage
    if own is not None:
        return own(model, times, precision, regime=regime, stage=stage)
    stage("derivation")
    flow = gradient_flow(model)
    stage("closed form")
    try:
        cf = closed_form(model)
    except ValueError:
        cf = None
    equations, proofs = closed_form_steps(cf)
    argv = cli_args(model, times, precision)
    content = ReportContent(
        model=model, title=_title(model), command="", argv=argv, times=times,
        precision=precision, steps=list(flow.steps), conserved=_conserved_steps(flow),
        constants=_constant_steps(flow), closed_form=equations, proofs=proofs,
        references=[c for c in [getattr(getattr(flow, "network", flow), "citation", "")] if c])
    content.modified, content.modified_note = modified_flow_steps(flow)
    if content.modified:
        content.references.append(MODIFIED_REFERENCE)
    applies = cf is not None
    if applies:
        try:  # the family has a closed form, but this instance (its init) may not
            exact(model, times[:1])
        except ValueError as exc:
            applies = False
            content.verification_notes["float64"] = (
                f"not available: {str(exc).splitlines()[0]}")
    if applies and verify_numbers:
        stage("verification")
        content.verification = {"float64": verify(model, times)}
        label = f"{precision} digits"
        try:
            content.verification[label] = verify(model, times, precision=precision)
        except ValueError as exc:  # no high-precision integrator for this family
            content.verification_notes[label] = (
                f"not available: {str(exc).splitlines()[0]}. The closed form is still "
                f"evaluated at {precision} digits for the values below; only the float64 "
                "comparison above checks it against the integrator.")
        ref = exact(model, times[-1:], precision=precision)
        with _mp.workdps(precision):
            content.final_values = {
                name: sig(v[-1], VALUE_DIGITS) for name, v in ref.observables.items()
                if np.ndim(v) == 1}
    content.regime, content.regime_note = regime_of(model, stage) if regime else \
        (None, "not computed (report(..., regime=False); --no-regime)")
    content.figures = figure_list(model, applies)
    return content


def closed_form_steps(cf) -> tuple:
    """``(equations, proofs)`` of a closed-form object, each piece optional (duck-typed).

    ``cf.equations()`` gives sympy ``Eq`` objects; ``cf.proofs`` gives
    :class:`DerivationStep` s; without ``proofs``, a ``cf.residual()`` that returns one
    sympy expression becomes a single proof step (residual = that expression).
    """
    if cf is None:
        return [], []
    eqs = getattr(cf, "equations", None)
    equations = [] if eqs is None else [
        DerivationStep(f"Closed form ({n})", eq) for n, eq in enumerate(eqs(), 1)]
    proofs = getattr(cf, "proofs", None)
    if proofs is not None:
        return equations, list(proofs)
    res = getattr(cf, "residual", None)
    if res is None:
        return equations, []
    r = res()
    if isinstance(r, dict):
        return equations, [DerivationStep(f"Residual: {k}", sp.Eq(sp.Symbol("residual"), v),
                                          proven=v == 0) for k, v in r.items()]
    return equations, [DerivationStep("Residual of the closed form in its equation",
                                      sp.Eq(sp.Symbol("residual"), r), proven=r == 0)]


def figure_list(model, has_closed_form: bool) -> list:
    """The figures a report shows (names and captions; fixed before any is drawn)."""
    figs = []
    if has_closed_form:
        figs += [("trajectory", "Closed form (lines) and integrator (markers), float64."),
                 ("error", "Integrator minus closed form against time, float64 and high "
                           "precision (log scale).")]
    figs.append(("conserved", "Drift of the conserved quantities along the float64 "
                              "integrator, |Q(t) - Q(0)| (log scale)."))
    obs = model.symbolic_network().observables if hasattr(model, "symbolic_network") else {}
    if "ntk" in obs or "alignment" in obs:
        figs.append(("regime", "The regime's evidence along the path: NTK relative to its "
                               "initial value and alignment."))
    return figs
