r"""Report content of a two-layer CNN (:class:`~exactdyn.TwoLayerCNN`, MATH.md §5).

Like the two-layer family, the CNN has no ``gradient_flow(model)``: its flow is derived
per kernel and per patch by :func:`~exactdyn.symbolic.cnn.derive_cnn_flow`, whose steps
the report prints. Its closed form is the *linearized* small-initialization solution
(:mod:`exactdyn.closed_form.cnn`): with :math:`\kappa Z = \sum_j s_ju_jv_j^\top`,

.. math::

    W_\beta(t) = \sum_j\big[\cosh(s_jt)\langle u_j, W_\beta(0)\rangle
        + \sinh(s_jt)\langle v_j, a_\beta(0)\rangle\big]u_j + \Pi_{U^\perp}W_\beta(0),

so the report compares it with the full flow *at each report time* (its error grows as
the weights leave the origin) and prints the condensation evidence of Zhou, Zhou, Li, Xu,
"Understanding the initial condensation of convolutional neural networks"
(arXiv:2305.09947): the off-/on-:math:`u_1` ratio
:math:`\|\theta_{W,u_1^\perp}\|/\|\theta_{W,u_1}\|` and :math:`\min_\beta|\cos(W_\beta,
u_1)|` along the full flow.

Numbers are printed so that the text is the same on every machine: float64 errors as
decade bounds (:func:`~.content.bound`), measured values (singular values, ratios,
cosines, a non-conserved balance's drift) with :data:`~.content.REGIME_DIGITS`
significant digits, the linearization's spectrum (an SVD) with :data:`SPECTRUM_DIGITS`.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from ..symbolic.flow import DerivationStep
from .content import REGIME_DIGITS, bound

REFERENCES = ["Zhou, Zhou, Li, Xu, \"Understanding the initial condensation of "
              "convolutional neural networks\", arXiv:2305.09947 (2023).",
              "Zhou et al., \"Towards understanding the condensation of neural networks "
              "at initial training\", NeurIPS 2022.",
              "Du, Hu, Lee, \"Algorithmic regularization in learning deep homogeneous "
              "models: layers are automatically balanced\", NeurIPS 2018."]


#: Significant digits of the linearization's spectrum: an SVD of a fixed matrix, exact to
#: float64 round-off (not an integration), so more digits are stable than for the regime's
#: evidence.
SPECTRUM_DIGITS = 6


#: Significant digits of a non-conserved balance's drift: a difference of nearly equal
#: sums of squares, so fewer digits than the other measured values are stable.
DRIFT_DIGITS = 3


def measured(x, digits: int = REGIME_DIGITS) -> str:
    """A measured float64 value with ``digits`` significant digits."""
    x = float(x)
    if not math.isfinite(x):
        return "inf" if x > 0 else "nan"
    return f"{x:.{digits}g}"


def conserved_steps(model) -> list:
    r""":math:`Q_\beta = \sum_k a_{k\beta}^2 - \sum_l W_{l\beta}^2`, with the proof status
    of :meth:`~exactdyn.TwoLayerCNN.conservation_proven` (sympy, from the derived flow)."""
    from ..symbolic.cnn import L_, A, B, D, K, P, W
    from .twolayer import balance_steps

    expr = sp.Sum(A[K, B] ** 2, (K, 0, P - 1)) - sp.Sum(W[L_, B] ** 2, (L_, 0, D - 1))
    return balance_steps(
        "Q_beta", expr, bool(model.conservation_proven()), model.act.name,
        "Per-channel balance of kernel beta and its readout map (Du, Hu, Lee 2018), with "
        "the weight sharing of the convolution.", summand="summand over samples and positions",
        proven_extra="; the position sum of the kernel's flow pairs with the readouts of "
        "those positions", not_proven_extra=" (its drift is measured below)",
        not_proven_status=False)


def closed_form_definitions() -> list:
    r"""The linearized system's pieces as sympy equations: Z, κ, the SVD of κZ and the
    solution :math:`W_\beta(t)`, :math:`a_\beta(t)` (MATH.md §5)."""
    from ..symbolic.cnn import ALPHA, L_, XS, YS, I, K, N

    j = sp.Symbol("j", integer=True)
    r = sp.Symbol("r", integer=True, positive=True)
    t = sp.Symbol("t", nonnegative=True)
    z, u, v, s = (sp.IndexedBase(x) for x in ("Z", "u", "v", "s"))
    kappa = sp.Symbol("kappa")
    sig = sp.Function("sigma")
    x = sp.Symbol("x")
    Wt, at = sp.Function("W_beta")(t), sp.Function("a_beta")(t)
    pw, qa = sp.IndexedBase("p^{0}")[j], sp.IndexedBase("q^{0}")[j]
    perp_u, perp_v = sp.Symbol("\\Pi_{U^\\perp} W_\\beta(0)"), sp.Symbol(
        "\\Pi_{V^\\perp} a_\\beta(0)")
    return [
        DerivationStep("Label-weighted patch matrix Z (D x P)",
                       sp.Eq(z[L_, K], sp.Sum(YS[I] * XS[I, K, L_],
                                              (I, 0, N - 1)) / N, evaluate=False),
                       "Column k is the label-weighted mean patch at position k (Zhou et al., "
                       "arXiv:2305.09947). With f = 0 the residual is -y and sigma(h) ~ "
                       "sigma'(0) h, so the flow is linear in (W, a)."),
        DerivationStep("Gain of the linearization",
                       sp.Eq(kappa, sp.Subs(sp.Derivative(sig(x), x), x, 0) / ALPHA,
                             evaluate=False)),
        DerivationStep("Linearized flow and SVD",
                       sp.Eq(kappa * sp.Symbol("Z"),
                             sp.Sum(s[j] * sp.Symbol("u_j") * sp.Symbol("v_j^T"),
                                    (j, 1, r)), evaluate=False),
                       "Per channel beta: dW_beta/dt = kappa Z a_beta, da_beta/dt = "
                       "kappa Z^T W_beta; in the singular bases each mode j decouples into "
                       "the 2 x 2 system solved below."),
        DerivationStep("Kernel beta",
                       sp.Eq(Wt, sp.Sum((sp.cosh(s[j] * t) * pw + sp.sinh(s[j] * t) * qa)
                                        * u[j], (j, 1, r)) + perp_u, evaluate=False),
                       "Mode coordinates of the initial state: p^0_j = <u_j, W_beta(0)>, "
                       "q^0_j = <v_j, a_beta(0)>; the parts orthogonal to the singular "
                       "spaces do not move."),
        DerivationStep("Readout map beta",
                       sp.Eq(at, sp.Sum((sp.cosh(s[j] * t) * qa + sp.sinh(s[j] * t) * pw)
                                        * v[j], (j, 1, r)) + perp_v, evaluate=False),
                       "Every kernel grows fastest along u_1: the kernels condense onto "
                       "+-u_1 when s_1 > s_2, after t ~ log(1/scale)/s_1."),
    ] + [DerivationStep(f"Per-mode form ({n})", eq) for n, eq in enumerate(_mode_eqs(), 1)]


def _mode_eqs() -> list:
    from ..closed_form.cnn import CNNClosedForm

    return CNNClosedForm().equations()


def closed_form_proofs() -> list:
    """The per-mode residuals, and the assembled matrix form's residuals with generic
    orthogonal singular vectors (D = 2, P = 2, rank 1; :meth:`CNNClosedForm.matrix_residual`)."""
    from ..closed_form.cnn import CNNClosedForm

    cf = CNNClosedForm()
    proofs = list(cf.proofs)
    names = ("dW/dt - Z a", "da/dt - Z^T W", "(W(0), a(0)) - initial state")
    for name, res in zip(names, cf.matrix_residual(2, 2, 1)):
        zero = all(sp.cancel(e) == 0 for e in res)
        proofs.append(DerivationStep(
            f"Matrix form (D = 2, P = 2, rank 1, generic rotations): {name}",
            sp.Eq(sp.Symbol("residual"), sp.zeros(*res.shape) if zero else res,
                  evaluate=False), proven=zero))
    return proofs


def closed_form_prefix(model, times) -> tuple:
    """``(trajectory, k)``: the linearized closed form at the first ``k`` report times,
    those before it leaves the float64 range (all of them unless it overflows; the
    trajectory is ``None`` when k = 0)."""
    from ..closed_form import exact
    from ..errors import IntegrationError

    try:
        return exact(model, times), len(times)
    except IntegrationError as exc:
        k = int(np.sum(np.asarray(times) < exc.t_reached))
        return (exact(model, times[:k]) if k else None), k


def _drift(num) -> np.ndarray:
    """max over channels of |Q_β(t) - Q_β(0)| along a trajectory."""
    q = np.asarray(num["balance"], float)
    return np.max(np.abs(q - q[0]), axis=1)


def numbers(model, times, lin, num, ref, k_ref: int) -> tuple:
    """``(spectrum rows, per-time rows)`` of the report's tables, as text; the closed
    form ``ref`` covers the first ``k_ref`` times ("overflow" after them)."""
    from ..analysis.cnn_measures import u1_alignment, u1_ratio

    s = lin.svals
    spectrum = [[name, measured(value, SPECTRUM_DIGITS)] for name, value in (
        ("s_1", s[0]), ("s_2", s[1] if s.size > 1 else 0.0), ("gap s_1 - s_2", lin.gap),
        ("ratio s_1/s_2", lin.ratio), ("kappa = sigma'(0)/alpha", lin.kappa),
        ("init scale", lin.init_scale), ("onset time log(1/scale)/s_1", lin.onset_time))]
    proven = model.conservation_proven()
    Wn = np.asarray(num["W"], float)
    k = k_ref
    if k:
        loss_err = np.abs(np.asarray(num["loss"], float)[:k] - np.asarray(ref["loss"], float))
        diff = np.abs(Wn[:k] - np.asarray(ref["W"], float)).reshape(k, -1)
        w_err = np.max(diff, axis=1) / np.max(np.abs(Wn[:k]).reshape(k, -1), axis=1)
    ratio = np.atleast_1d(u1_ratio(Wn, lin.u1))
    _hi, lo = u1_alignment(Wn, lin.u1)
    drift = _drift(num)
    rows = []
    lo = np.atleast_1d(lo)
    for j, t in enumerate(times):
        cf = [bound(loss_err[j]), bound(w_err[j])] if j < k else \
            ["overflow", "overflow"]
        rows.append([f"{t:g}", *cf, measured(ratio[j]), measured(lo[j]),
                     bound(drift[j]) if proven else measured(drift[j], DRIFT_DIGITS)])
    return spectrum, rows


def modified_steps() -> list:
    r"""The modified flow's steps for the CNN: the modified loss and
    :math:`\dot\theta = f - \tfrac h2 f'f` per kernel and position, derived symbolically
    (:func:`~exactdyn.symbolic.cnn.derive_cnn_modified`)."""
    from ..symbolic.cnn import derive_cnn_modified

    return list(derive_cnn_modified().steps)


def gather_cnn(model, times, precision: int, regime: bool = True, stage=None):
    """The :class:`~.content.ReportContent` of a two-layer CNN (``stage``: see
    :data:`~.content.STAGES`)."""
    from ..closed_form.cnn import applies, linearization
    from ..solve import solve
    from ..symbolic.cnn import derive_cnn_flow
    from ..verify import VERIFY_RTOL
    from .content import (
        MODIFIED_REFERENCE,
        ReportContent,
        _no_stage,
        _title,
        cli_args,
        regime_of,
    )

    stage = _no_stage if stage is None else stage
    ok, why, _c = applies(model)
    stage("derivation")
    steps = list(derive_cnn_flow().steps)
    content = ReportContent(
        model=model, title=_title(model), command="", argv=cli_args(model, times, precision),
        times=times, precision=precision, steps=steps,
        conserved=conserved_steps(model), constants=[],
        closed_form=closed_form_definitions() if ok else [],
        proofs=closed_form_proofs() if ok else [], references=list(REFERENCES))
    content.modified = modified_steps()
    content.references.append(MODIFIED_REFERENCE)
    stage("integration")
    num = solve(model, times, rtol=VERIFY_RTOL)
    proven = model.conservation_proven()
    drift_text = "bound, float64" if proven else f"{DRIFT_DIGITS} significant digits"
    if ok:
        stage("closed form")
        lin = linearization(model)
        ref, k_ref = closed_form_prefix(model, times)
        spectrum, rows = numbers(model, times, lin, num, ref, k_ref)
        content.tables = [
            {"title": "Spectrum of the linearization",
             "note": "Singular values of kappa Z (the growth rates of the linearized modes) "
                     f"and the predicted onset of condensation, {SPECTRUM_DIGITS} significant "
                     "digits.",
             "columns": ["quantity", "value"], "rows": spectrum},
            {"title": "Closed form against the full flow, and condensation",
             "note": "At each report time: the linearized closed form against the full "
                     f"float64 flow (DOP853, rtol {VERIFY_RTOL:.0e}) as bounds, |loss error| "
                     "and the largest kernel-entry error relative to the largest kernel "
                     "entry (the linearization holds while f ~ 0; its error grows like "
                     "scale^2 e^(3 s_1 t)); then the condensation evidence along the full "
                     "flow: the off/on-u_1 ratio ||theta_(W,u1-perp)|| / ||theta_(W,u1)|| "
                     "and min over kernels of |cos(W_beta, u_1)| "
                     f"({REGIME_DIGITS} significant digits); and the drift of the "
                     f"per-channel balance, max_beta |Q_beta(t) - Q_beta(0)| ({drift_text}).",
             "columns": ["t", "loss error", "rel. kernel error", "u1 ratio",
                         "min abs cos(W_beta, u1)", "balance drift"], "rows": rows}]
        content.verification_text = (
            "The closed form solves the linearized system, not the full flow; its error "
            "against the full flow at each report time is in the second table below. There "
            "is no high-precision integrator or closed form for the CNN in this version of "
            "exactdyn, so the report is float64 only.")
        if k_ref < len(times):
            content.verification_text += (
                f" The closed form leaves the float64 range after t = {times[k_ref - 1]:g} "
                "(marked 'overflow'), so its trajectory and error figures are omitted."
                if k_ref else " The closed form leaves the float64 range before the first "
                "report time (marked 'overflow'), so its figures are omitted.")
        generic = [] if k_ref < len(times) else [
            ("trajectory", "Linearized closed form (lines) and full flow (markers), "
                           "float64: the loss."),
            ("error", "Full flow minus linearized closed form against time (log scale); the "
                      "high-precision panel is not available.")]
        content.figures = generic + [
            ("kernel_cosine", "Cosine similarity of the kernels at the last report time "
                              "(full flow): condensed kernels form blocks of +-1."),
            ("u1_ratio", "Off/on-u_1 ratio of the kernels along the full flow and the "
                         "linearized closed form; dotted: the predicted onset "
                         "log(1/scale)/s_1."),
            ("kernels", "The kernels at the last report time (full flow, sign-aligned) next "
                        "to u_1, each on its own colour scale.")]
        content.figure_hooks = {"kernel_cosine": _kernel_cosine, "u1_ratio": _u1_ratio,
                                "kernels": _kernels}
    else:
        drift = _drift(num)
        content.tables = [{
            "title": "Balance along the full flow",
            "note": "max_beta |Q_beta(t) - Q_beta(0)| along the float64 flow "
                    f"({drift_text}).",
            "columns": ["t", "balance drift"],
            "rows": [[f"{t:g}", bound(d) if proven else measured(d, DRIFT_DIGITS)]
                     for t, d in zip(times, drift)]}]
        content.verification_text = f"Not available: {why}; the linearized closed form " \
                                    "needs a smooth activation with sigma(0) = 0 and " \
                                    "sigma'(0) != 0."
    content.regime, content.regime_note = regime_of(model, stage) if regime else \
        (None, "not computed (report(..., regime=False); --no-regime)")
    return content


def _lin_and_flow(content, num):
    from ..closed_form.cnn import linearization

    return linearization(content.model), np.asarray(num["W"], float)


def _kernel_cosine(content, num):
    from ..plotting.cnn import plot_kernel_cosine

    _lin, W = _lin_and_flow(content, num)
    return plot_kernel_cosine(W[-1], title=f"kernel cosines, t = {content.times[-1]:g}")


def _u1_ratio(content, num):
    from ..plotting.cnn import plot_u1_ratio

    lin, W = _lin_and_flow(content, num)
    t = content.times
    fig = plot_u1_ratio(t, W, lin.u1, label="full flow")
    ref, k = closed_form_prefix(content.model, t)
    onset = lin.onset_time if math.isfinite(lin.onset_time) else None
    if not k:
        return fig
    return plot_u1_ratio(t[:k], ref["W"], lin.u1, ax=fig.axes[0],
                         label="linearized closed form", onset=onset)


def _kernels(content, num):
    from ..plotting.cnn import plot_kernels

    lin, W = _lin_and_flow(content, num)
    return plot_kernels(W[-1], lin.u1, channel="all" if W.shape[3] > 1 else 0)


def _register():
    from ..models.cnn import TwoLayerCNN
    from .content import register_gatherer

    register_gatherer(TwoLayerCNN, gather_cnn)


_register()
