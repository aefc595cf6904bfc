r"""Report content of a two-layer network (:class:`~exactdyn.TwoLayer`, MATH.md §4).

The two-layer family has no ``gradient_flow(model)``: its flow is derived per neuron and
per sample by :func:`~exactdyn.symbolic.twolayer.derive_two_layer_flow`, whose steps the
report prints. Its closed form is the *linearized early-stage* solution
(:class:`~exactdyn.closed_form.twolayer.TwoLayerClosedForm`), not a solution of the full
flow, so the verification table compares it with the full flow and expects agreement only
to :math:`O(\beta^2)` in the init scale (Zhou et al., NeurIPS 2022; Chen et al. 2023).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..symbolic.flow import DerivationStep

#: Tolerance factor: agreement is expected within this times scale^p (scale = max β, p the
#: closed form's order, :func:`~exactdyn.closed_form.closed_form_order`: 2 unless
#: σ''(0) ≠ 0). :func:`exactdyn.verify` checks the same order by fitting it over the
#: scales 1, 1/2, 1/4; the report states it at the model's one scale.
AGREEMENT_FACTOR = 10.0


def _power(order: int) -> str:
    return "scale²" if order == 2 else "scale" if order == 1 else f"scale^{order}"


def label(order: int = 2) -> str:
    """The verification table's label: the closed form is the linearized early stage,
    agreeing with the full flow to O(scale^order)."""
    return f"linearized closed form vs full flow (agreement O({_power(order)}))"


#: The label for the usual order 2 (tanh, odd activations).
LABEL = label(2)


def balance_steps(name: str, expr, proven: bool, activation: str, origin: str,
                  summand: str = "per-sample summand", proven_extra: str = "",
                  not_proven_extra: str = "", not_proven_status=None) -> list:
    r"""Definition and derivative of a balance law ``name = expr`` of a homogeneous layer
    pair (Du, Hu, Lee 2018): :math:`\dot Q = 0` when the derived flow proves it
    (:math:`h\sigma'(h) = \sigma(h)`), else stated as not conserved for ``activation``.
    Shared by the two-layer and CNN reports."""
    q = sp.Symbol(name)
    t = sp.Symbol("t")
    steps = [DerivationStep(f"{name}: definition", sp.Eq(q, expr, evaluate=False), origin)]
    if proven:
        steps.append(DerivationStep(
            f"{name}: derivative along the flow",
            sp.Eq(sp.Derivative(q, t), 0, evaluate=False),
            f"With the derived right-hand sides, the {summand} of d{name}/dt vanishes "
            f"because h sigma'(h) = sigma(h) for this activation{proven_extra}.", proven=True))
    else:
        steps.append(DerivationStep(
            f"{name}: not conserved for this activation",
            sp.Eq(sp.Derivative(q, t),
                  sp.Symbol("\\text{nonzero: } h\\sigma'(h) \\ne \\sigma(h)"), evaluate=False),
            f"The {summand} of d{name}/dt simplifies to 0 only if h sigma'(h) = "
            f"sigma(h); activation {activation!r} is not positively 1-homogeneous, so "
            f"no conservation law is claimed{not_proven_extra}.", proven=not_proven_status))
    return steps


def conserved_steps(model) -> list:
    r""":math:`Q_j = a_j^2 - \sum_r W_{jr}^2`, proven conserved from the derived flow when
    :math:`h\sigma'(h) = \sigma(h)` (relu, linear), stated as not conserved otherwise."""
    from ..symbolic.twolayer import L_, A, D, J, W

    expr = A[J] ** 2 - sp.Sum(W[J, L_] ** 2, (L_, 0, D - 1))
    return balance_steps("Q_j", expr, bool(model.conservation_proven()), model.act.name,
                         "Per-neuron balance of the two layers (Du, Hu, Lee 2018).")


def early_stage_verification(model, times):
    """The linearized closed form against the full float64 flow, as a
    :class:`~exactdyn.verify.VerificationReport` with tolerance ``10 scale^p`` (p = 2
    unless σ''(0) ≠ 0: :func:`~exactdyn.closed_form.closed_form_order`)."""
    from ..closed_form import closed_form_order, exact
    from ..solve import solve
    from ..verify import VERIFY_RTOL, ObservableCheck, VerificationReport

    scale = max(float(model.beta1 or 0.0), float(model.beta2 or 0.0))
    if not scale:
        scale = float(max(np.max(np.abs(model.a0)), np.max(np.abs(model.W0))))
    tol = AGREEMENT_FACTOR * scale**closed_form_order(model)
    num = solve(model, times, rtol=VERIFY_RTOL)
    ref = exact(model, times)
    rep = VerificationReport(model.name, model.params, None, "DOP853 (full flow)",
                             VERIFY_RTOL)
    for name, v in ref.observables.items():
        if np.ndim(v) != 1:
            continue
        r = np.asarray(v, float)
        x = np.asarray(num[name], float)
        err = np.abs(x - r)
        nz = np.abs(r) > 0
        rel = float(np.max(err[nz] / np.abs(r[nz]))) if nz.any() else 0.0
        ok = bool(np.all((err <= tol * np.abs(r)) | (err <= tol)))
        rep.checks.append(ObservableCheck(name, float(err.max()), rel, tol, tol, ok))
    return rep


def modified_steps(model) -> list:
    r"""The modified flow's steps for a two-layer network: the modified loss and
    :math:`\dot\theta = f - \tfrac h2 f'f` per neuron, derived symbolically
    (:func:`~exactdyn.symbolic.twolayer.derive_two_layer_modified`; σ'' = 0 on an
    activation region of ReLU, where the modified flow of a kinked activation is defined)."""
    from ..symbolic.twolayer import derive_two_layer_modified

    return list(derive_two_layer_modified().steps)


def gather_two_layer(model, times, precision: int, regime: bool = True, stage=None):
    """The :class:`~.content.ReportContent` of a two-layer network (``stage``: see
    :data:`~.content.STAGES`)."""
    from ..closed_form import closed_form_order
    from ..closed_form.twolayer import TwoLayerClosedForm, applies
    from ..symbolic.twolayer import derive_two_layer_flow
    from .content import (
        MODIFIED_REFERENCE,
        ReportContent,
        _no_stage,
        _title,
        cli_args,
        closed_form_steps,
        regime_of,
    )

    stage = _no_stage if stage is None else stage
    stage("derivation")
    steps = list(derive_two_layer_flow().steps)
    stage("closed form")
    cf = TwoLayerClosedForm()
    equations, proofs = closed_form_steps(cf)
    content = ReportContent(
        model=model, title=_title(model), command="", argv=cli_args(model, times, precision),
        times=times, precision=precision, steps=steps,
        conserved=conserved_steps(model), constants=[], closed_form=equations, proofs=proofs,
        references=["Luo, Xu, Ma, Zhang, \"Phase diagram for two-layer ReLU neural networks "
                    "at infinite-width limit\", JMLR 22 (2021) 71.",
                    "Zhou et al., \"Towards understanding the condensation of neural networks "
                    "at initial training\", NeurIPS 2022.",
                    "Chen et al., \"Phase diagram of initial condensation for two-layer neural "
                    "networks\" (2023)."])
    content.modified = modified_steps(model)
    content.references.append(MODIFIED_REFERENCE)
    ok, why = applies(model)
    if ok:
        order = closed_form_order(model)
        key, power = label(order), _power(order)
        stage("verification")
        content.verification = {key: early_stage_verification(model, times)}
        content.verification_notes[key] = (
            "the closed form solves the linearized early-stage system, not the full flow, "
            f"so the errors above measure the linearization (O({power}) at fixed t), with "
            f"tolerance 10 {power}, not the integrator's accuracy.")
    else:
        content.verification_notes[LABEL] = f"not available: {why}"
    content.verification_notes[f"{precision} digits"] = (
        "not available: there is no high-precision integrator or closed form for the "
        "two-layer family in this version of exactdyn.")
    content.regime, content.regime_note = regime_of(model, stage) if regime else \
        (None, "not computed (report(..., regime=False); --no-regime)")
    content.figures = ([("trajectory", "Linearized closed form (lines) and full-flow "
                                       "integrator (markers), float64: loss and rd."),
                        ("error", "Full flow minus linearized closed form against time "
                                  "(log scale); the high-precision panel is not available.")]
                       if ok else [])
    return content


def _register():
    from ..models.twolayer import TwoLayer
    from .content import register_gatherer

    register_gatherer(TwoLayer, gather_two_layer)


_register()
