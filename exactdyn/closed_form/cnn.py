r"""Linearized closed form of a two-layer CNN at small initialization (MATH.md §5).

While :math:`f \approx 0` the residual is :math:`e_i \approx -y_i`, and with
:math:`\sigma(h) \approx ch` (:math:`\sigma(0) = 0`, :math:`c = \sigma'(0) \ne 0`) the
flow of :mod:`exactdyn.symbolic.cnn` linearizes, per output channel β, to

.. math::

    \dot W_\beta = \kappa Z a_\beta,\qquad \dot a_\beta = \kappa Z^\top W_\beta,\qquad
    \kappa = c/\alpha,\qquad Z = [z_{uv}],\quad
    z_{uv} = \frac1n\sum_i y_i P_{uv}(x_i),

Z of size :math:`s^2C \times H'W'` (column :math:`uv` the label-weighted mean patch at
position :math:`(u, v)`). With the SVD :math:`\kappa Z = \sum_j s_j u_j v_j^\top`:

.. math::

    W_\beta(t) = \sum_j\big[\cosh(s_jt)\langle u_j, W_\beta(0)\rangle
        + \sinh(s_jt)\langle v_j, a_\beta(0)\rangle\big]u_j + \Pi_{U^\perp}W_\beta(0),

    a_\beta(t) = \sum_j\big[\cosh(s_jt)\langle v_j, a_\beta(0)\rangle
        + \sinh(s_jt)\langle u_j, W_\beta(0)\rangle\big]v_j + \Pi_{V^\perp}a_\beta(0).

Every kernel grows fastest along :math:`u_1`: the kernels condense onto :math:`\pm u_1`
when :math:`s_1 > s_2` and spread in the top singular space when the top singular
values tie; the growth becomes visible after :math:`t \approx \log(1/\varepsilon)/s_1`
for init scale ε. Zhou, Zhou, Li, Xu, "Understanding the initial condensation of
convolutional neural networks" (arXiv:2305.09947). This is the *linearized* solution:
against the full flow its error is :math:`O(\varepsilon^2)` relative at fixed t when
σ''(0) = 0 (tanh) and :math:`O(\varepsilon)` otherwise (the neglected terms are
:math:`f = O(\varepsilon^2)` in the residual and the quadratic and cubic terms of σ;
:func:`asymptotic_order`, fitted by :func:`exactdyn.verify`), growing as the weights leave
the origin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import sympy as sp


def applies(model) -> tuple:
    """``(ok, reason, c)``: the linearization needs a smooth σ with σ(0) = 0 and
    c = σ'(0) ≠ 0."""
    act = model.act
    if act.piecewise:
        return False, f"activation {act.name!r} is not smooth at 0", None
    # values at 0 as floats (a named activation's from its table: a float64 exact() needs
    # no sympy)
    if act.value_at_zero(0) != 0:
        return False, f"activation {act.name!r} has sigma(0) != 0", None
    c = act.value_at_zero(1)
    if c == 0:
        return False, f"activation {act.name!r} has sigma'(0) = 0 (multiplicity > 1)", None
    return True, "", float(c)


def asymptotic_order(model) -> int:
    r"""Order p in the init scale ε of the linearized form's error against the full flow:
    relative error :math:`O(\varepsilon^p)` at fixed t (:func:`exactdyn.verify` fits it).

    The neglected terms are :math:`f = O(\varepsilon^2)` in the residual and the Taylor
    remainder of σ beyond :math:`ch`. With :math:`\sigma''(0) = 0` (tanh) the remainder is
    cubic, a relative :math:`O(\varepsilon^2)`: p = 2. A quadratic term
    :math:`\tfrac12\sigma''(0)h^2` (gelu, silu) changes :math:`\sigma'(h)` by a relative
    :math:`O(\varepsilon)`: p = 1 (Zhou, Zhou, Li, Xu, arXiv:2305.09947)."""
    return 2 if model.act.value_at_zero(2) == 0 else 1


def _require(model) -> float:
    ok, why, c = applies(model)
    if not ok:
        raise ValueError("model must have a smooth activation with sigma(0) = 0 and "
                         f"sigma'(0) != 0 for the linearized closed form; {why}")
    return c


def z_matrix(model) -> np.ndarray:
    r""":math:`Z = [z_{uv}]`, :math:`z_{uv} = \frac1n\sum_i y_i P_{uv}(x_i)`: shape D × P
    (patch entries × positions, positions row-major over H' × W')."""
    X = model.patches  # n × P × D
    n, P, D = X.shape
    return (model.y @ X.reshape(n, P * D)).reshape(P, D).T / n


@dataclass(frozen=True)
class CNNLinearization:
    r"""The SVD of :math:`\kappa Z` and what it predicts.

    Attributes
    ----------
    Z : ndarray, D × P
        The label-weighted patch matrix (without κ).
    kappa : float
        :math:`\sigma'(0)/\alpha`.
    svals : ndarray, (r,)
        Singular values :math:`s_j` of :math:`\kappa Z` (the growth rates), descending.
    U : ndarray, D × r
        Left singular vectors (kernel directions).
    V : ndarray, P × r
        Right singular vectors (readout maps).
    kernel_shape, out_shape : tuple
        (s, s, C) and (H', W').
    init_scale : float
        ε of the onset time: the model's ``scale``, or the root mean square of the
        explicit initial weights.
    """

    Z: np.ndarray
    kappa: float
    svals: np.ndarray
    U: np.ndarray
    V: np.ndarray
    kernel_shape: tuple
    out_shape: tuple
    init_scale: float

    @property
    def u1(self) -> np.ndarray:
        """The condensation direction :math:`u_1` reshaped s × s × C (unit norm; the sign
        of an SVD is arbitrary, kernels condense onto ±u_1)."""
        return self.U[:, 0].reshape(self.kernel_shape)

    @property
    def v1(self) -> np.ndarray:
        """The top readout map :math:`v_1` reshaped H' × W'."""
        return self.V[:, 0].reshape(self.out_shape)

    @property
    def gap(self) -> float:
        """Spectral gap :math:`s_1 - s_2` (:math:`s_2 = 0` when Z has one singular value)."""
        s2 = self.svals[1] if self.svals.size > 1 else 0.0
        return float(self.svals[0] - s2)

    @property
    def ratio(self) -> float:
        """:math:`s_1/s_2` (inf when :math:`s_2 = 0`)."""
        s2 = self.svals[1] if self.svals.size > 1 else 0.0
        return float(self.svals[0] / s2) if s2 > 0 else math.inf

    @property
    def onset_time(self) -> float:
        r"""Predicted onset of condensation :math:`\log(1/\varepsilon)/s_1` (inf when
        :math:`s_1 = 0`; ε ≥ 1 gives a time ≤ 0)."""
        if self.svals[0] == 0:
            return math.inf
        return float(math.log(1.0 / self.init_scale) / self.svals[0])


def linearization(model) -> CNNLinearization:
    """The SVD of κZ for ``model`` (:class:`CNNLinearization`)."""
    c = _require(model)
    kappa = c / model.alpha
    Z = z_matrix(model)
    U, svals, Vt = np.linalg.svd(kappa * Z, full_matrices=False)
    if model.scale is not None:
        eps = model.scale
    else:
        eps = float(np.sqrt(np.mean(np.concatenate([model.W0.ravel(), model.a0.ravel()])
                                    ** 2)))
    return CNNLinearization(Z, kappa, svals, U, Vt.T, model.W0.shape[:3], model.out_shape,
                            eps)


def cosh_sinh(x: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    r""":math:`p\cosh x + q\sinh x` for :math:`x \ge 0` without overflow of the parts:
    :math:`\tfrac12(p+q)e^{x} + \tfrac12(p-q)e^{-x}`, the growing term as
    :math:`\mathrm{sign}(p+q)\exp(x + \log|p+q| - \log 2)` (a zero coefficient gives 0,
    never ∞·0). Overflows only when the value itself exceeds the float64 range."""
    grow = 0.5 * (p + q)
    with np.errstate(divide="ignore", over="ignore"):
        big = np.where(grow == 0, 0.0, np.sign(grow) * np.exp(x + np.log(np.abs(grow))))
    return big + 0.5 * (p - q) * np.exp(-x)


def linear_states(lin: CNNLinearization, W0: np.ndarray, a0: np.ndarray, times) -> tuple:
    """``(W(t), a(t))`` of the linearized flow, time first (W: T × D × M, a: T × P × M)."""
    t = np.asarray(times, float)
    U, V, s = lin.U, lin.V, lin.svals
    pw, pa = U.T @ W0, V.T @ a0  # r × M mode coordinates
    x = s[None, :, None] * t[:, None, None]  # T × r × 1
    cw = cosh_sinh(x, pw[None], pa[None])
    ca = cosh_sinh(x, pa[None], pw[None])
    W = np.einsum("dr,trm->tdm", U, cw) + (W0 - U @ pw)[None]
    a = np.einsum("pr,trm->tpm", V, ca) + (a0 - V @ pa)[None]
    return W, a


def exact_cnn(model, times):
    """``exact(model, t)`` for a :class:`~exactdyn.TwoLayerCNN`: the linearized closed
    form, with the full model's observables evaluated on its states."""
    from ..errors import IntegrationError
    from ..numeric.cnn import trajectory_from_states

    lin = linearization(model)
    D, P, M = model.patch_dim, model.positions, model.channels
    W, a = linear_states(lin, model.W0.reshape(D, M), model.a0.reshape(P, M), times)
    if not (np.all(np.isfinite(W)) and np.all(np.isfinite(a))):
        bad = int(np.argmax(~(np.all(np.isfinite(W.reshape(len(W), -1)), axis=1)
                              & np.all(np.isfinite(a.reshape(len(a), -1)), axis=1))))
        raise IntegrationError("the linearized closed form exceeds the float64 range",
                               t_reached=float(np.asarray(times)[bad]))
    T = len(times)
    return trajectory_from_states(
        model, times, W.reshape((T,) + model.W0.shape), a.reshape((T,) + model.a0.shape),
        {"method": "closed-form (linearized early stage)", "precision": None,
         "svals": lin.svals.tolist(), "gap": lin.gap, "onset_time": lin.onset_time})


# ---- symbolic proof --------------------------------------------------------------------
def _mm(*ms):
    import sympy as sp

    out = ms[0]
    for m in ms[1:]:
        out = (out * m).applyfunc(sp.cancel)
    return out


def _cayley(n: int, name: str) -> sp.Matrix:
    r"""A generic rotation :math:`(I - K)(I + K)^{-1}`, K skew-symmetric with
    :math:`n(n-1)/2` free real symbols (Cayley): orthogonal as rational functions."""
    import sympy as sp

    ks = iter(sp.symbols(f"{name}1:{n * (n - 1) // 2 + 1}", real=True))
    K = sp.zeros(n)
    for i in range(n):
        for j in range(i + 1, n):
            K[i, j] = k = next(ks)
            K[j, i] = -k
    eye = sp.eye(n)
    return _mm(eye - K, (eye + K).inv())


class CNNClosedForm:
    r"""The linearized closed form as sympy equations, with its proofs.

    Per mode j (:math:`p_j = \langle u_j, W_\beta\rangle`, :math:`q_j = \langle v_j,
    a_\beta\rangle`): :math:`\dot p = sq`, :math:`\dot q = sp`, solved by
    :math:`p(t) = p_0\cosh st + q_0\sinh st`, :math:`q(t) = q_0\cosh st + p_0\sinh st`;
    the parts orthogonal to the singular spaces do not move. :meth:`matrix_residual`
    proves the assembled matrix form with generic orthogonal singular vectors (Cayley
    parametrization), symbolic singular values and initial state.
    """

    def __init__(self):
        import sympy as sp

        self.t = sp.Symbol("t", nonnegative=True)
        self.s = sp.Symbol("s", positive=True)
        self.p0, self.q0 = sp.symbols("p_0 q_0", real=True)
        x = self.s * self.t
        self.p_expr = self.p0 * sp.cosh(x) + self.q0 * sp.sinh(x)
        self.q_expr = self.q0 * sp.cosh(x) + self.p0 * sp.sinh(x)

    def equations(self) -> list:
        import sympy as sp

        t, s = self.t, self.s
        p, q = sp.Function("p")(t), sp.Function("q")(t)
        return [sp.Eq(sp.Derivative(p, t), s * q, evaluate=False),
                sp.Eq(sp.Derivative(q, t), s * p, evaluate=False),
                sp.Eq(p, self.p_expr, evaluate=False), sp.Eq(q, self.q_expr, evaluate=False)]

    @property
    def proofs(self) -> list:
        """Residuals of the per-mode solution in its ODE and at t = 0 (sympy)."""
        import sympy as sp

        from ..symbolic.flow import DerivationStep

        t, s = self.t, self.s
        res = {
            "Residual of p(t) in dp/dt = s q": sp.simplify(sp.diff(self.p_expr, t)
                                                           - s * self.q_expr),
            "Residual of q(t) in dq/dt = s p": sp.simplify(sp.diff(self.q_expr, t)
                                                           - s * self.p_expr),
            "Initial condition p(0) - p_0": sp.simplify(self.p_expr.subs(t, 0) - self.p0),
            "Initial condition q(0) - q_0": sp.simplify(self.q_expr.subs(t, 0) - self.q0),
        }
        return [DerivationStep(k, sp.Eq(sp.Symbol("residual"), v), proven=v == 0)
                for k, v in res.items()]

    def matrix_residual(self, D: int = 2, P: int = 2, rank: int = 1) -> tuple:
        r"""Residuals of the assembled solution in :math:`\dot W = Za`, :math:`\dot a =
        Z^\top W` and at t = 0, for :math:`Z = U\,\mathrm{diag}(s)V^\top` with U, V the
        first ``rank`` columns of generic D × D and P × P rotations (symbolic Cayley
        parameters), symbolic singular values, W(0) and a(0) (one channel). The null-space
        parts are included whenever rank < D or rank < P. Returns three sympy matrices;
        all entries cancel to 0 (D = 3, P = 2, rank 2 takes about 10 s)."""
        import sympy as sp

        t = self.t
        U = _cayley(D, "k")[:, :rank]
        V = _cayley(P, "m")[:, :rank]
        s = sp.symbols(f"s1:{rank + 1}", positive=True)
        Z = _mm(U, sp.diag(*s), V.T)
        W0 = sp.Matrix(sp.symbols(f"W0_0:{D}", real=True))
        a0 = sp.Matrix(sp.symbols(f"a0_0:{P}", real=True))
        C = sp.diag(*[sp.cosh(x * t) for x in s])
        Sh = sp.diag(*[sp.sinh(x * t) for x in s])
        pw, qa = _mm(U.T, W0), _mm(V.T, a0)
        W = _mm(U, C * pw + Sh * qa) + W0 - _mm(U, pw)
        a = _mm(V, C * qa + Sh * pw) + a0 - _mm(V, qa)
        rw = (W.diff(t) - _mm(Z, a)).applyfunc(sp.cancel)
        ra = (a.diff(t) - _mm(Z.T, W)).applyfunc(sp.cancel)
        r0 = sp.Matrix.vstack(W.subs(t, 0) - W0, a.subs(t, 0) - a0).applyfunc(sp.cancel)
        return rw, ra, r0


def _register():
    from ..models.cnn import TwoLayerCNN
    from . import register_closed_form

    register_closed_form(TwoLayerCNN, lambda model, times, precision: exact_cnn(model, times),
                         lambda model: CNNClosedForm(), asymptotic_order, precision=False)


_register()
