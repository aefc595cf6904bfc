r"""Gradient flow of the deep linear network, derived in matrix form [JG, SMG].

.. math::
    A = W_L\cdots W_1,\qquad
    L(W) = \tfrac12\operatorname{tr}\big[(A - T)\,\Sigma_{xx}(A - T)^\top\big],\qquad
    T = \Sigma_{yx}\Sigma_{xx}^{-1},

which is :math:`\tfrac12\mathbb E\lVert Ax - y\rVert^2` up to a constant independent of the
weights (for whitened inputs, :math:`\tfrac12\lVert A - \Sigma_{yx}\rVert_F^2`). sympy's
matrix calculus differentiates the loss with respect to each :class:`~sympy.MatrixSymbol`
:math:`W_\ell` (sizes symbolic: input, width, output), the result is proven equal to the
factored form

.. math:: \dot W_\ell = -(W_L\cdots W_{\ell+1})^\top\,(A\Sigma_{xx} - \Sigma_{yx})\,
          (W_{\ell-1}\cdots W_1)^\top,

and the :math:`L-1` balancedness matrices
:math:`B_\ell = W_{\ell+1}^\top W_{\ell+1} - W_\ell W_\ell^\top` are proven conserved
(:math:`\dot B_\ell` expands to 0).

References: A. Jacot, F. Ged, B. Şimşek, C. Hongler, F. Gabriel, "Saddle-to-saddle dynamics
in deep linear networks and small initializations", arXiv:2106.15933; A. Saxe,
J. McClelland, S. Ganguli, "Exact solutions to the nonlinear dynamics of learning in deep
linear neural networks", arXiv:1312.6120.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from .flow import ConservedQuantity, DerivationStep, GradientFlow
from .matrix_flow import MatrixNetwork

CITATION = ("A. Jacot, F. Ged, B. Simsek, C. Hongler, F. Gabriel, Saddle-to-saddle dynamics in "
            "deep linear networks and small initializations, arXiv:2106.15933; A. Saxe, "
            "J. McClelland, S. Ganguli, arXiv:1312.6120.")

#: Symbolic sizes: the generated code never depends on their values.
IN_DIM = sp.Symbol("n_in", integer=True, positive=True)
OUT_DIM = sp.Symbol("n_out", integer=True, positive=True)
WIDTH = sp.Symbol("w", integer=True, positive=True)


#: The deep linear network's flow is a :class:`~exactdyn.symbolic.flow.GradientFlow` of a
#: :class:`~exactdyn.symbolic.matrix_flow.MatrixNetwork` in ``"chain"`` notation (the old
#: name, kept for code that imports it).
MatrixFlow = GradientFlow


def _is_zero_matrix(expr) -> bool:
    e = sp.expand(expr)
    if e == 0 or getattr(e, "is_ZeroMatrix", False):
        return True
    e = e.doit()
    return e == 0 or bool(getattr(e, "is_ZeroMatrix", False))


def chain(mats):
    """The product ``mats[0] * mats[1] * ...`` (``None`` for an empty product)."""
    mats = list(mats)
    if not mats:
        return None
    return mats[0] if len(mats) == 1 else sp.MatMul(*mats)


@cache
def derive_deep_linear(depth: int) -> GradientFlow:
    """Derive, factor and prove the gradient flow of a depth-``depth`` linear network."""
    dims = [IN_DIM] + [WIDTH] * (depth - 1) + [OUT_DIM]
    W = tuple(sp.MatrixSymbol(f"W{l + 1}", dims[l + 1], dims[l]) for l in range(depth))
    syx = sp.MatrixSymbol("Sigma_yx", OUT_DIM, IN_DIM)
    sxx = sp.MatrixSymbol("Sigma_xx", IN_DIM, IN_DIM)
    teff = sp.MatrixSymbol("T", OUT_DIM, IN_DIM)  # Sigma_yx Sigma_xx^{-1}
    A = chain(reversed(W))
    steps = [DerivationStep("Network", sp.Eq(sp.Symbol("A"), A, evaluate=False),
                            "End-to-end map of the deep linear network, f(x) = A x.")]
    # The loss, term by term (sympy's matrix derivative of a sum of traces is taken
    # termwise: linearity), expanded from 1/2 tr(A Sxx A^T) - tr(Syx A^T) + const.
    terms = [sp.Trace(A * sxx * A.T) / 2, -sp.Trace(syx * A.T)]
    loss = sp.Trace((A - teff) * sxx * (A - teff).T) / 2
    steps.append(DerivationStep(
        "Expected loss", sp.Eq(sp.Symbol("L"), sp.Add(*terms), evaluate=False),
        "E[x x^T] = Sigma_xx, E[y x^T] = Sigma_yx; the constant E|y|^2/2 is dropped. "
        "Written as 1/2 tr((A - T) Sigma_xx (A - T)^T), T = Sigma_yx Sigma_xx^{-1}, it differs "
        "by a constant and is 1/2 |A - Sigma_yx|_F^2 for whitened inputs."))
    G = A * sxx - syx
    rhs = {}
    for l, Wl in enumerate(W):
        grad = sp.Add(*[sp.diff(t, Wl) for t in terms]).xreplace({sxx.T: sxx})
        left = chain(reversed(W[l + 1:]))
        right = chain(reversed(W[:l]))
        factors = ([left.T if left is not None else None, G,
                    right.T if right is not None else None])
        factored = -sp.MatMul(*[f for f in factors if f is not None])
        ok = _is_zero_matrix(factored + grad)
        steps.append(DerivationStep(
            f"Gradient flow of {Wl.name}",
            sp.Eq(sp.Symbol(f"\\dot{{{Wl.name}}}"), factored, evaluate=False),
            f"-dL/d{Wl.name} by sympy's matrix calculus (Sigma_xx symmetric) = "
            f"{sp.sstr(-grad)}; factored through A Sigma_xx - Sigma_yx, the difference "
            "expands to 0.", proven=ok))
        rhs[Wl] = factored
    conserved = []
    for l in range(depth - 1):
        B = W[l + 1].T * W[l + 1] - W[l] * W[l].T
        dB = (rhs[W[l + 1]].T * W[l + 1] + W[l + 1].T * rhs[W[l + 1]]
              - rhs[W[l]] * W[l].T - W[l] * rhs[W[l]].T)
        ok = _is_zero_matrix(dB)
        name = f"B_{l + 1}"
        conserved.append(ConservedQuantity(
            name, B, sp.S.Zero if ok else dB, ok,
            f"A = W_L...W_1 is invariant under W_{l + 2} -> W_{l + 2} G^-1, W_{l + 1} -> G "
            f"W_{l + 1}; the generator gives the balancedness matrix {sp.sstr(B)}."))
        steps.append(DerivationStep(
            f"Conserved: {name}", sp.Eq(sp.Symbol(f"\\dot B_{{{l + 1}}}"), sp.S.Zero),
            f"d/dt ({sp.sstr(B)}) along the flow (product rule, Sigma_xx symmetric) "
            "expands to 0.", proven=ok))
    observables = {"end_to_end": A, "loss": loss}
    hyper = {"Sigma_yx": syx, "Sigma_xx": sxx, "T": teff}
    # Every layer's rate is 1; the products are lowered along the chain ("chain" notation).
    network = MatrixNetwork(
        name=f"deep_linear_L{depth}", params=W, rates={Wl: sp.S.One for Wl in W}, hyper=hyper,
        forward=A, loss=loss, loss_steps=tuple(steps[:2]), symmetric=(sxx,),
        conserved={q.name: q.expr for q in conserved}, observables=observables,
        citation=CITATION, notation="chain")
    return GradientFlow(network, rhs, conserved, steps)
