r"""Stable numeric evaluation of the 1-D linear network's closed form (MATH.md §1).

The reduced equation :math:`\dot p = \omega (p^* - p)\sqrt{p^2 + k'^2}` is a Riccati
equation in :math:`Z = \sqrt{p^2 + k'^2} + p` (:math:`= k' z`), solved by a Möbius map

.. math:: Z(t) = \frac{Z_+ - R(t) Z_-}{1 - R(t)}, \quad R(t) = R_0 e^{-K_\infty t},
          \quad Z_\pm = p^* \pm h^*,\ h^* = \sqrt{p^{*2} + k'^2},\ K_\infty = \omega h^*.

The evaluation here never subtracts nearly equal numbers:

- The flow is symmetric under :math:`p \to -p,\ p^* \to -p^*`. We work in the frame
  :math:`q = s p` with :math:`s = \operatorname{sign}(p_0 - p^*)` (``+1`` on ties), where
  :math:`q_0 \ge q^*` and so :math:`0 \le R_0 < 1`: every denominator is a sum of
  non-negative terms and :math:`1 - R(t) = (1 - R_0) - R_0\,\mathrm{expm1}(-K_\infty t)`.
- :math:`M \pm p_0 = \tfrac12\lVert u_0/\sqrt a \pm \sqrt a\, w_0\rVert^2` with
  :math:`a = \sqrt{\eta_u/\eta_w}` come from norms, so :math:`k'^2 = (M+p_0)(M-p_0)` is
  exact to rounding even at the degenerate (balanced, aligned) init.
- :math:`q - q^* = 2h^{*2} R / \big((1 - R)(Z_+ + R\,|Z_-|)\big)` and
  :math:`R_0 = (q_0 - q^*)(M + q_0 + h^* + q^*)/\big((M + h^*)(M + q_0 + h^* - q^*)\big)`,
  obtained with :math:`M^2 - h^{*2} = p_0^2 - p^{*2}`.
- The state is :math:`u(t) = \tfrac12 e^{\phi}(u_0 - a w_0) + \tfrac12 e^{-\phi}(u_0 + a w_0)`,
  :math:`w(t) = \tfrac12 e^{\phi}(w_0 - u_0/a) + \tfrac12 e^{-\phi}(w_0 + u_0/a)` with
  :math:`e^{2 s\phi} = (M + q_0)/Z_q(t)`: no large cosh and sinh cancel.
- At :math:`k' = 0` exactly, :math:`\dot p = \omega\,\mathrm{sign}(p_0)\,p\,(p^* - p)` is
  logistic, evaluated with the exponent that cannot overflow; the state scales as
  :math:`\sqrt{p/p_0}`.

The same code runs on float64 (numpy, vectorized over time) and on ``mpmath.mpf``
(any precision), selected by the ``ops`` namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import numpy as np


class FloatOps:
    sqrt = staticmethod(np.sqrt)
    exp = staticmethod(np.exp)
    expm1 = staticmethod(np.expm1)
    log1p = staticmethod(np.log1p)
    log = staticmethod(np.log)
    cosh = staticmethod(np.cosh)
    sinh = staticmethod(np.sinh)

    @staticmethod
    def num(x):
        return float(x)

    @staticmethod
    def vec(x):
        return np.asarray(x, dtype=float)

    @staticmethod
    def dot(a, b):
        return float(np.dot(a, b))


class MpOps:
    sqrt = staticmethod(mpmath.sqrt)
    exp = staticmethod(mpmath.exp)
    expm1 = staticmethod(mpmath.expm1)
    log1p = staticmethod(mpmath.log1p)
    log = staticmethod(mpmath.log)
    cosh = staticmethod(mpmath.cosh)
    sinh = staticmethod(mpmath.sinh)

    @staticmethod
    def num(x):
        return mpmath.mpf(x)

    @staticmethod
    def vec(x):
        return np.array([mpmath.mpf(v) for v in np.asarray(x).ravel()], dtype=object)

    @staticmethod
    def dot(a, b):
        return mpmath.fdot(a, b)


@dataclass(frozen=True)
class Constants:
    r"""Constants of one trajectory (:math:`M`, :math:`k'`, :math:`\omega`, :math:`p^*`, ...)."""

    p0: object
    m_plus: object  # M + p0
    m_minus: object  # M - p0
    kp2: object  # k'^2
    omega: object
    pstar: object
    a: object  # sqrt(eta_u / eta_w)
    u0: object
    w0: object
    u_sq: object = None  # |u0|^2
    w_sq: object = None  # |w0|^2

    @property
    def M(self):
        return (self.m_plus + self.m_minus) / 2

    @property
    def kp(self):
        return self.kp2 ** 0.5 if isinstance(self.kp2, float) else mpmath.sqrt(self.kp2)


def constants(model, ops=FloatOps) -> Constants:
    # The init read-only, not copied: at width 10^6 each fresh array costs more (its
    # pages) than the dot products below.
    init = model.initial_state(copy=False)
    u0, w0 = ops.vec(init["u"]), ops.vec(init["w"])
    eta_u, eta_w = ops.num(model.eta_u), ops.num(model.eta_w)
    kappa, sxx, c = ops.num(model.kappa), ops.num(model.x_var), ops.num(model.teacher)
    a = ops.sqrt(eta_u / eta_w)
    # M +- p0 = |u0 +- a w0|^2 / (2a): no rounded sqrt(a), so an exactly degenerate init
    # (u0 = -a w0 with a exact) keeps k' = 0 exactly.
    if u0.dtype == float:
        plus, minus, p0, u_sq, w_sq = _init_dot_products(u0, a, w0)
    else:
        d_plus, d_minus = u0 + a * w0, u0 - a * w0
        plus, minus = ops.dot(d_plus, d_plus), ops.dot(d_minus, d_minus)
        p0, u_sq, w_sq = ops.dot(u0, w0), ops.dot(u0, u0), ops.dot(w0, w0)
    m_plus = plus / (2 * a)
    m_minus = minus / (2 * a)
    return Constants(p0=p0, m_plus=m_plus, m_minus=m_minus, kp2=m_plus * m_minus,
                     omega=2 * kappa**2 * sxx * ops.sqrt(eta_u * eta_w), pstar=c / kappa,
                     a=a, u0=u0, w0=w0, u_sq=u_sq, w_sq=w_sq)


#: Entries per block of :func:`_init_dot_products` (128 KiB of float64: a block stays in
#: cache between its difference and its product).
_BLOCK = 1 << 14


def _init_dot_products(u0, a, w0) -> tuple:
    r""":math:`\lVert u_0 + a w_0\rVert^2`, :math:`\lVert u_0 - a w_0\rVert^2`,
    :math:`P = u_0\cdot w_0`, :math:`U = \lVert u_0\rVert^2`, :math:`W = \lVert w_0\rVert^2`
    (float64), each exact to rounding.

    The one of :math:`\lVert u_0 \pm a w_0\rVert^2` that may cancel (the sign opposite
    to :math:`P`'s: :math:`u_0 \approx \mp a w_0`) is summed from its entries, block by
    block through one small buffer (at width 10⁶ a fresh width-long temporary costs more,
    its pages, than the products themselves); the other is it plus :math:`4a|P|`, a sum of
    non-negative terms."""
    p0, u_sq, w_sq = float(u0 @ w0), float(u0 @ u0), float(w0 @ w0)
    sign = -1.0 if p0 >= 0 else 1.0  # u0 + sign a w0 is the one that may cancel
    buf = np.empty(min(len(u0), _BLOCK))
    small = 0.0
    for start in range(0, len(u0), _BLOCK):
        u, w = u0[start:start + _BLOCK], w0[start:start + _BLOCK]
        d = buf[:len(u)]
        np.multiply(sign * a, w, out=d)
        np.add(u, d, out=d)
        small += float(d @ d)
    large = small + 4 * a * abs(p0)
    plus, minus = (large, small) if sign < 0 else (small, large)
    return plus, minus, p0, u_sq, w_sq


def evaluate_p(C: Constants, t, ops=FloatOps):
    r"""Return :math:`p(t)` and :math:`\rho(t) = \sqrt{p^2+k'^2}` (the NTK over :math:`\omega`),
    plus the factors of the state map (see :func:`state_at`)."""
    p0, pstar, kp2, omega = C.p0, C.pstar, C.kp2, C.omega
    if kp2 == 0:
        return _degenerate(C, t, ops)
    s = 1 if p0 >= pstar else -1
    q0, qs = s * p0, s * pstar
    m_q = C.m_plus if s == 1 else C.m_minus  # M + q0
    M = C.M
    h = ops.sqrt(qs * qs + kp2)
    h_plus = kp2 / (h - qs) if qs < 0 else h + qs  # h* + q*  (= Z_+)
    h_minus = kp2 / (h + qs) if qs > 0 else h - qs  # h* - q*  (= |Z_-|)
    R0 = (q0 - qs) * (m_q + h_plus) / ((M + h) * (m_q + h_minus))
    one_minus_R0 = 2 * h / (m_q + h_minus)
    decay = ops.exp(-omega * h * t)
    R = R0 * decay
    one_minus_R = one_minus_R0 - R0 * ops.expm1(-omega * h * t)
    denom = h_plus + R * h_minus  # Z_+ + R |Z_-|  (= (1 - R) Z_q)
    z_q = denom / one_minus_R
    w_q = kp2 / z_q  # sqrt(q^2 + k'^2) - q
    rho = (z_q + w_q) / 2
    # Two exact expressions of q, each accurate where the other cancels: q* + (q - q*)
    # near the target or when |q| >~ |q*|; (Z_q - W_q)/2 when |q| << |q*| (small inits,
    # where q is tiny but Z_q and W_q are not both ~k').
    delta = 2 * h * h * R / (one_minus_R * denom)
    q = _pick(qs + delta, (z_q - w_q) / 2, _amax(qs, delta), _amax(z_q, w_q))
    # A third, accurate near the init (t = 0 gives q0 exactly): q0 + (q - q0), with
    # delta(R) - delta(R0) = 2h^2 (R - R0)(Z_+ + R R0 |Z_-|) / ((1-R)(1-R0) D(R) D(R0)),
    # D(R) = Z_+ + R |Z_-| and R - R0 = R0 expm1(-K t) (no cancellation anywhere).
    denom0 = h_plus + R0 * h_minus
    moved = (2 * h * h * R0 * ops.expm1(-omega * h * t) * (h_plus + R * R0 * h_minus)
             / (one_minus_R * one_minus_R0 * denom * denom0))
    scale_q = _amin(_amax(qs, delta), _amax(z_q, w_q))
    q = _pick(q0 + moved, q, _amax(q0, moved), scale_q)
    # s phi = log(e^{2 s phi})/2 with e^{2 s phi} = (M + q0)/Z_q, through
    # M + q0 - Z_q(t) = -2 h R0 expm1(-K t) / ((1 - R0)(1 - R)), so small phi keeps its digits.
    gap = -2 * h * R0 * ops.expm1(-omega * h * t) / (one_minus_R0 * one_minus_R)
    phi = s * ops.log1p(gap / z_q) / 2
    return s * q, rho, phi


def _amax(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.maximum(np.abs(a), np.abs(b))
    return max(abs(a), abs(b))


def _amin(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.minimum(a, b)
    return min(a, b)


def _pick(a, b, scale_a, scale_b):
    """``a`` where its rounding scale is the smaller, else ``b`` (elementwise)."""
    if isinstance(scale_a, np.ndarray) or isinstance(scale_b, np.ndarray):
        return np.where(scale_a <= scale_b, a, b)
    return a if scale_a <= scale_b else b


@dataclass(frozen=True)
class DegenerateScale:
    r"""At :math:`k' = 0` the state is :math:`\sqrt{p/p_0}\,(u_0, w_0)`; the factor is kept
    here in a form that does not underflow where :math:`p` itself does (stuck paths)."""

    sqrt_ratio: object


def _degenerate(C: Constants, t, ops):
    """k' = 0: u0 = ±a w0; logistic in p with sign(p) fixed."""
    p0, pstar, omega = C.p0, C.pstar, C.omega
    zero = t * 0
    if p0 == 0:
        return zero, zero, DegenerateScale(zero)
    sigma = 1 if p0 > 0 else -1
    if pstar == 0:
        ratio = 1 / (1 + omega * abs(p0) * t)
        sqrt_ratio = ops.sqrt(ratio)
    elif sigma * pstar > 0:
        x = -omega * sigma * pstar * t
        ratio = pstar / (-p0 * ops.expm1(x) + pstar * ops.exp(x))
        sqrt_ratio = ops.sqrt(ratio)
    else:  # stuck at the saddle: p/p0 = e^{x} p*/(p0 expm1(x) + p*), x < 0
        x = omega * sigma * pstar * t
        rest = pstar / (p0 * ops.expm1(x) + pstar)
        ratio = ops.exp(x) * rest
        sqrt_ratio = ops.exp(x / 2) * ops.sqrt(rest)
    p = p0 * ratio
    return p, abs(p), DegenerateScale(sqrt_ratio)


def state_at(C: Constants, p, phi, ops=FloatOps):
    r"""u(t), w(t) as arrays of shape (T, width) from :math:`\phi(t)` of :func:`evaluate_p`.

    :math:`u = \cosh\phi\,u_0 - a\sinh\phi\,w_0` for :math:`|\phi| \le 1` (no
    cancellation), the exponential form beyond (no large cosh and sinh cancel).
    """
    if isinstance(phi, DegenerateScale):  # k' = 0
        scale = np.atleast_1d(phi.sqrt_ratio)[:, None]
        return scale * C.u0[None, :], scale * C.w0[None, :]
    phis = np.atleast_1d(phi)
    a = C.a
    u = np.empty((len(phis), len(C.u0)), dtype=C.u0.dtype)
    w = np.empty_like(u)
    small = np.array([abs(f) <= 1 for f in phis], dtype=bool)
    if small.any():
        f = phis[small]
        ch = np.array([ops.cosh(x) for x in f], dtype=u.dtype)[:, None]
        sh = np.array([ops.sinh(x) for x in f], dtype=u.dtype)[:, None]
        u[small] = ch * C.u0[None, :] - a * sh * C.w0[None, :]
        w[small] = ch * C.w0[None, :] - sh * C.u0[None, :] / a
    if (~small).any():
        ephi = np.array([ops.exp(x) for x in phis[~small]], dtype=u.dtype)[:, None]
        u[~small] = (ephi * ((C.u0 - a * C.w0) / 2)[None, :]
                     + ((C.u0 + a * C.w0) / 2)[None, :] / ephi)
        w[~small] = (ephi * ((C.w0 - C.u0 / a) / 2)[None, :]
                     + ((C.w0 + C.u0 / a) / 2)[None, :] / ephi)
    return u, w


#: A squared norm is taken from its terms (see :func:`state_norms`) when the sum of their
#: magnitudes is at most this many times the result: its rounding error is then a few
#: units in the last place. Rows beyond (the terms cancel) form the state row instead.
_GRAM_GUARD = 4.0


def state_norms(C: Constants, p, phi):
    r""":math:`\lVert u(t)\rVert`, :math:`\lVert w(t)\rVert` (float64, one per time) without
    forming the time × width state: from :math:`U = \lVert u_0\rVert^2`,
    :math:`W = \lVert w_0\rVert^2`, :math:`P = u_0\cdot w_0` and the constants, in the two
    forms of :func:`state_at`,

    .. math:: \lVert u\rVert^2 = \cosh^2\!\phi\,U - 2a\cosh\phi\sinh\phi\,P
              + a^2\sinh^2\!\phi\,W \quad (|\phi| \le 1),

    .. math:: \lVert u\rVert^2 = \tfrac14\big(e^{2\phi}\lVert D_-\rVert^2
              + 2\,D_-\!\cdot D_+ + e^{-2\phi}\lVert D_+\rVert^2\big),\quad
              D_\pm = u_0 \pm a w_0,\ \lVert D_\pm\rVert^2 = 2a(M \pm p_0),\
              D_-\!\cdot D_+ = U - a^2 W,

    and :math:`a^2\lVert w\rVert^2` the same with the middle terms negated (MATH.md §1;
    :math:`U - a^2W = \eta_u Q_1` is the conserved quantity of [XZ]). A time at which the
    terms cancel (the norm below a fraction :data:`_GRAM_GUARD` of their magnitudes), or
    overflow, is evaluated from its state row, as :func:`state_at` gives it. At
    :math:`k' = 0` the state is a multiple of the init and so are its norms.
    """
    if isinstance(phi, DegenerateScale):  # k' = 0: (u, w) = sqrt(p/p0) (u0, w0)
        scale = np.abs(np.atleast_1d(phi.sqrt_ratio))
        return scale * np.linalg.norm(C.u0), scale * np.linalg.norm(C.w0)
    a = C.a
    U, W, P = C.u_sq, C.w_sq, C.p0
    phis = np.atleast_1d(np.asarray(phi, dtype=float))
    small = np.abs(phis) <= 1
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        ch, sh = np.cosh(phis), np.sinh(phis)
        grow, shrink = np.exp(2 * phis), np.exp(-2 * phis)
        dm2, dp2, cross = 2 * a * C.m_minus, 2 * a * C.m_plus, U - a * a * W
        # (terms of |u|^2, terms of a^2 |w|^2, magnitude of the terms' rounding)
        if_small = ([ch * ch * U, -2 * a * ch * sh * P, a * a * sh * sh * W],
                    [a * a * ch * ch * W, -2 * a * ch * sh * P, sh * sh * U],
                    ch * ch * U + np.abs(2 * a * ch * sh * P) + a * a * sh * sh * W,
                    a * a * ch * ch * W + np.abs(2 * a * ch * sh * P) + sh * sh * U)
        # D-.D+ = U - a^2 W is rounded at the scale of U + a^2 W.
        if_large = ([grow * dm2 / 4, cross / 2 + 0 * phis, shrink * dp2 / 4],
                    [grow * dm2 / 4, -cross / 2 + 0 * phis, shrink * dp2 / 4],
                    (grow * dm2 + 2 * (U + a * a * W) + shrink * dp2) / 4,
                    (grow * dm2 + 2 * (U + a * a * W) + shrink * dp2) / 4)
        sq_u = np.where(small, sum(if_small[0]), sum(if_large[0]))
        sq_aw = np.where(small, sum(if_small[1]), sum(if_large[1]))
        scale_u = np.where(small, if_small[2], if_large[2])
        scale_aw = np.where(small, if_small[3], if_large[3])
        norm_u, norm_w = np.sqrt(sq_u), np.sqrt(sq_aw) / a
    kept = ((sq_u > 0) & (sq_aw > 0) & np.isfinite(scale_u) & np.isfinite(scale_aw)
            & (scale_u <= _GRAM_GUARD * sq_u) & (scale_aw <= _GRAM_GUARD * sq_aw))
    for row in np.flatnonzero(~kept):  # the terms cancel: from the state row itself
        with np.errstate(over="ignore", under="ignore"):
            u, w = state_at(C, None, phis[row:row + 1])
        norm_u[row], norm_w[row] = np.linalg.norm(u[0]), np.linalg.norm(w[0])
    return norm_u, norm_w
