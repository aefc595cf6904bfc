r"""Closed form of deep linear networks from decoupled (SVD-aligned, balanced) inits.

[SMG, JG], MATH.md §3. With whitened inputs, :math:`\Sigma_{yx} = USV^\top`, and a
balanced init (every balancedness matrix :math:`W_{\ell+1}^\top W_{\ell+1} - W_\ell
W_\ell^\top = 0`) whose end-to-end map :math:`A_0 = U\,\mathrm{diag}(u_0)V^\top` is
aligned with the teacher, each mode :math:`u_\alpha = a_\alpha^L` follows the scalar chain

.. math:: \dot a = a^{L-1}(s - a^L),\qquad \dot u = L\,|u|^{2-2/L}\,(s - u).

**Depth 2** (Saxe's sigmoid): :math:`u(t) = s / (1 + (s/u_0 - 1)e^{-2st})`.

**Depth** :math:`L \ge 3`, :math:`0 < u_0 < s`: with the logit
:math:`z = \ln(u/(s-u))`, :math:`x = u/s`, :math:`q = 1 - 2/L`, the exact implicit solution is

.. math::
    t(u) = \frac{s^{2/L-2}}{L}\,\big[\Phi(z) - \Phi(z_0)\big],\qquad
    \Phi = -\frac{x^{-q}}{q}\;{}_2F_1(1, -q; 1-q; x),\qquad \frac{d\Phi}{dz} = x^{-q},

(proven by sympy, :meth:`ChainClosedForm.residual`). :math:`\Phi` is evaluated by its
power series for :math:`x \le 1/2` and by the logarithmic connection series in
:math:`y = 1 - x` (Abramowitz & Stegun 15.3.10) for :math:`x > 1/2`, with
:math:`\ln y = -\ln(1 + e^z)` taken from :math:`z`, so no digit is lost as
:math:`u \to s`; :math:`u(t)` is found by Newton's method in :math:`z`, which converges
monotonically (:math:`t(z)` is increasing and concave).
Above the teacher (:math:`u_0 > s`), with :math:`z = \ln(u/(u - s))` and :math:`w = s/u`,
:math:`t = \frac{s^{2/L-2}}{L}[\Phi_+(z) - \Phi_+(z_0)]`,
:math:`\Phi_+ = \frac{w^{q+1}}{q+1}\,{}_2F_1(1, q+1; q+2; w)`,
:math:`d\Phi_+/dz = w^q` (series in :math:`w` for :math:`w \le 1/2`, in :math:`e^{-z}` with
the logarithm split off above; Newton in :math:`z` from the left overshoots once, then
converges monotonically since :math:`t(z)` is convex).
Zero-teacher modes decay as :math:`u^{-(2-2/L)} = u_0^{-(2-2/L)} + (2L-2)t`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mpmath
import numpy as np
from scipy.special import digamma, expit, poch

from .. import _mp
from ..trajectory import Trajectory

if TYPE_CHECKING:
    import sympy as sp

_N_TERMS = 60


# ---- the scalar chain -----------------------------------------------------------------
def _phi_float(z, q):
    r""":math:`\Phi(z)` for :math:`q \in (0, 1)` in float64 (vectorized)."""
    z = np.asarray(z, dtype=float)
    x = expit(z)
    xq = np.exp(q * np.logaddexp(0.0, -z))  # x^{-q}
    out = np.empty_like(z)
    lo = x <= 0.5
    if np.any(lo):
        xs = x[lo][..., None]
        n = np.arange(1, _N_TERMS + 1)
        out[lo] = xq[lo] * (-1.0 / q + np.sum(xs**n / (n - q), axis=-1))
    hi = ~lo
    if np.any(hi):
        y = expit(-z[hi])[..., None]
        logy = -np.logaddexp(0.0, z[hi])[..., None]
        n = np.arange(0, _N_TERMS + 1)
        b = -q
        coef = poch(b, n) / np.exp(np.cumsum(np.log(np.maximum(n, 1))))
        terms = coef * (digamma(n + 1.0) - digamma(b + n) - logy) * y**n
        out[hi] = xq[hi] * np.sum(terms, axis=-1)
    return out


def _binom_terms(q, n_terms):
    """a_k = C(q, k) (-1)^k for k = 1..n_terms (float64)."""
    k = np.arange(1, n_terms + 1)
    return np.cumprod((k - 1 - q) / k)  # C(q,k)(-1)^k = prod_{j<k} (j - q)/(j + 1)


def _phi_plus_float(z, q):
    r""":math:`\Phi_+(z) = \int (1 - e^{-z})^q\,dz` for :math:`z > 0` (modes above the
    teacher, :math:`z = \ln(u/(u - s))`), float64, vectorized."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    lo = z <= np.log(2.0)
    n = np.arange(0, _N_TERMS + 1)
    if np.any(lo):
        w = -np.expm1(-z[lo])[..., None]
        out[lo] = np.sum(w ** (q + n + 1) / (q + n + 1), axis=-1)
    hi = ~lo
    if np.any(hi):
        a = _binom_terms(q, _N_TERMS)
        k = n[1:]
        y = np.exp(-z[hi])[..., None]
        # the constant that joins the two series at w = 1/2 (z = ln 2)
        join = np.sum(0.5 ** (q + n + 1) / (q + n + 1)) - (np.log(2.0) - np.sum(a * 0.5**k / k))
        out[hi] = z[hi] - np.sum(a * y**k / k, axis=-1) + join
    return out


def _phi_plus_mp(z, q):
    r""":math:`\Phi_+(z)` in mpmath."""
    tol = mpmath.mpf(2) ** (-mpmath.mp.prec - 8)

    def low(w):
        total, n = mpmath.mpf(0), 0
        while True:
            add = w ** (q + n + 1) / (q + n + 1)
            total += add
            if abs(add) < tol * abs(total):
                return total
            n += 1

    def high(y, zz):
        total, a, k = mpmath.mpf(0), mpmath.mpf(1), 1
        while True:
            a *= (k - 1 - q) / k
            add = a * y**k / k
            total += add
            if abs(add) < tol * max(abs(total), 1):
                return zz - total
            k += 1

    ln2 = mpmath.log(2)
    if z <= ln2:
        return low(-mpmath.expm1(-z))
    half = mpmath.mpf(1) / 2
    return high(mpmath.exp(-z), z) + low(half) - high(half, ln2)


def _phi_mp(z, q):
    """:math:`\\Phi(z)` in mpmath at the working precision."""
    x = 1 / (1 + mpmath.exp(-z))
    xq = mpmath.exp(q * mpmath.log1p(mpmath.exp(-z)))
    tol = mpmath.mpf(2) ** (-mpmath.mp.prec - 8)
    if x <= 0.5:
        total, term, n = -1 / q, x, 1
        while True:
            add = term / (n - q)
            total += add
            if abs(add) < tol * abs(total):
                break
            n += 1
            term *= x
        return xq * total
    y = 1 / (1 + mpmath.exp(z))
    logy = -mpmath.log1p(mpmath.exp(z)) if z < 0 else -(z + mpmath.log1p(mpmath.exp(-z)))
    b = -q
    total, coef, n = mpmath.mpf(0), mpmath.mpf(1), 0
    while True:
        add = coef * (mpmath.digamma(n + 1) - mpmath.digamma(b + n) - logy) * y**n
        total += add
        if n > 2 and abs(add) < tol * abs(total):
            break
        coef *= (b + n) / (n + 1)
        n += 1
    return xq * total


def _check_mode(s, u0, depth):
    if depth == 2 and u0 < 0 and s < 0:
        raise ValueError("mode with s < 0")


def _negative_mode_mp(t, u0, s, L):
    r"""Depth :math:`L \ge 3`, :math:`u_0 < 0 \le s`: with :math:`v = -u > 0`,
    :math:`\dot v = -L v^{p}(s + v)`, :math:`p = 2 - 2/L`, so (exactly)

    .. math:: t = \frac{F(v_0) - F(v)}{L},\quad
              F(v) = \frac{v^{1-p}}{(1-p)\,s}\,{}_2F_1\!\left(1, 1-p; 2-p; -\frac{v}{s}\right),

    (:math:`dF/dv = v^{-p}/(s+v)`), inverted by Newton's method in :math:`\ln v`. The mode
    decays towards the saddle at 0 and never reaches it (stuck at the saddle).
    """
    p = 2 - mpmath.mpf(2) / L
    v0 = -u0

    def F(v):
        return v ** (1 - p) / ((1 - p) * s) * mpmath.hyp2f1(1, 1 - p, 2 - p, -v / s)

    target = F(v0) - L * t
    y = mpmath.log(v0)
    eps = mpmath.mpf(2) ** (-mpmath.mp.prec + 6)
    for _ in range(500):
        v = mpmath.exp(y)
        # F(v(y)) is increasing in y with slope v^{1-p}/(s + v).
        step = -(F(v) - target) * (s + v) / v ** (1 - p)
        y += step
        if abs(step) <= eps * max(1, abs(y)):
            break
    return -mpmath.exp(y)


def chain_time(u, u0, s, depth: int, precision: int | None = None):
    r"""Exact time for a mode of the scalar chain to go from :math:`u_0` to :math:`u`.

    .. math:: t(u) = \int_{u_0}^{u}\frac{dv}{L\,v^{2-2/L}(s - v)}

    in closed form (:math:`0 < u_0 \le u < s`); depth 2 gives Saxe's
    :math:`t = \frac{1}{2s}\ln\frac{u(s-u_0)}{u_0(s-u)}`.
    """
    if not (s > 0 and 0 < u0 <= u < s):
        raise ValueError(f"chain_time needs 0 < u0 <= u < s, got u0={u0!r}, u={u!r}, s={s!r}")
    if precision is None:
        z0 = np.log(u0) - np.log(s - u0)
        z = np.log(u) - np.log(s - u)
        if depth == 2:
            return float((z - z0) / (2 * s))
        q = 1 - 2 / depth
        return float(s ** (2 / depth - 2) / depth * (_phi_float(np.array([z]), q)[0]
                                                      - _phi_float(np.array([z0]), q)[0]))
    with _mp.workdps(precision + 10):
        s, u0, u = mpmath.mpf(s), mpmath.mpf(u0), mpmath.mpf(u)
        z0 = mpmath.log(u0) - mpmath.log(s - u0)
        z = mpmath.log(u) - mpmath.log(s - u)
        if depth == 2:
            return (z - z0) / (2 * s)
        q = 1 - mpmath.mpf(2) / depth
        return s ** (mpmath.mpf(2) / depth - 2) / depth * (_phi_mp(z, q) - _phi_mp(z0, q))


def chain_potential(u, s, depth: int) -> np.ndarray:
    r"""An antiderivative :math:`P(u)` of :math:`1/(L|u|^{2-2/L}(s - u))` on the branch of
    ``u`` (vectorized, float64): :math:`t(u_0 \to u) = P(u) - P(u_0)` for ``u`` and ``u0``
    on the same side of the teacher value ``s``. Below it (:math:`0 < u < s`)
    :math:`C\,\Phi(z)`, above it (:math:`u > s > 0`) :math:`C\,\Phi_+(z)` (the
    formulas of the module docstring; :math:`\ln`-form at depth 2), for a zero teacher
    :math:`u^{-p}/(pL)`, :math:`p = 2 - 2/L`; NaN elsewhere (NaN ``u`` included)."""
    u, s = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (u, s)))
    L = int(depth)
    out = np.full(u.shape, np.nan)
    with np.errstate(invalid="ignore"):
        below = (s > 0) & (0 < u) & (u < s)
        above = (s > 0) & (s < u)
        zero = (s == 0) & (0 < u)
    q = 1 - 2 / L
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.any(below):
            sb, ub = s[below], u[below]
            z = np.log(ub) - np.log(sb - ub)
            out[below] = z / (2 * sb) if L == 2 else sb ** (2 / L - 2) / L * _phi_float(z, q)
        if np.any(above):
            sa, ua = s[above], u[above]
            z = np.log(ua) - np.log(ua - sa)
            out[above] = z / (2 * sa) if L == 2 else \
                sa ** (2 / L - 2) / L * _phi_plus_float(z, q)
        if np.any(zero):
            p = 2 - 2 / L
            out[zero] = u[zero] ** -p / (p * L)
    return out


def chain_times(u, u0, s, depth: int, p0=None) -> np.ndarray:
    r"""Vectorized exact times for modes of the depth-``depth`` chain to go from ``u0`` to
    ``u`` (arrays broadcast, float64): below the teacher (:math:`0 < u_0 \le u < s`, the
    formula of :func:`chain_time`), above it (:math:`s < u \le u_0`, with
    :math:`\Phi_+`), and for a zero teacher (:math:`0 < u \le u_0`,
    :math:`u^{-p} = u_0^{-p} + pLt`, :math:`p = 2 - 2/L`): :func:`chain_potential` at
    ``u`` minus at ``u0`` (``p0``: the latter, when already known). ``inf`` where ``u`` is
    never reached (the wrong side of ``u0``, the teacher value itself, or NaN)."""
    u, u0, s = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (u, u0, s)))
    with np.errstate(invalid="ignore"):
        ok = (((s > 0) & (0 < u0) & (u0 <= u) & (u < s))
              | ((s > 0) & (s < u) & (u <= u0))
              | ((s == 0) & (0 < u) & (u <= u0)))
    if p0 is None:
        p0 = chain_potential(np.where(ok, u0, np.nan), s, depth)
    pu = chain_potential(np.where(ok, u, np.nan), s, depth)
    out = np.where(ok, pu - np.broadcast_to(p0, u.shape), np.inf)
    out[ok & (u == u0)] = 0.0
    return out


def chain_solution(t, u0: float, s: float, depth: int, precision: int | None = None):
    r"""The mode :math:`u(t)` of :math:`\dot u = L|u|^{2-2/L}(s - u)`, :math:`u(0) = u_0`.

    Closed form for depth 2 (any :math:`u_0`, :math:`s \ge 0`); for depth :math:`\ge 3`
    the implicit :math:`t(u)` above inverted by Newton's method (:math:`0 < u_0 < s`,
    :math:`u_0 > s`, and :math:`u_0 < 0`: see :func:`_negative_mode_mp`), and the explicit
    cases :math:`u_0 = 0`, :math:`u_0 = s`, :math:`s = 0`.
    """
    if s < 0:
        raise ValueError(f"s must be >= 0 (a singular value), got {s!r}")
    _check_mode(s, u0, depth)
    if precision is not None:
        with _mp.workdps(precision + 10):
            return np.array([_solution_mp(mpmath.mpf(float(tv)), mpmath.mpf(u0),
                                          mpmath.mpf(s), depth) for tv in np.atleast_1d(t)],
                            dtype=object)
    t = np.atleast_1d(np.asarray(t, dtype=float))
    L = depth
    if u0 == 0 or u0 == s:
        return np.full(t.shape, float(u0))
    if L >= 3 and u0 < 0 and s > 0:  # rare branch: evaluated in mpmath, rounded
        with _mp.workdps(30):
            return np.array([float(_negative_mode_mp(mpmath.mpf(float(tv)), mpmath.mpf(u0),
                                                     mpmath.mpf(s), L)) for tv in t])
    if s == 0:
        p = 2 - 2 / L
        return np.sign(u0) * (abs(u0) ** -p + p * L * t) ** (-1 / p)
    if L == 2:
        e = np.exp(-2 * s * t)
        if u0 > 0:
            return s / (1 + (s / u0 - 1) * e)
        v0 = -u0  # v = -u obeys v' = -2 v (s + v)
        return -(s * v0 * e / (s + v0 * (1 - e)))
    q = 1 - 2 / L
    C = s ** (2 / L - 2) / L
    if u0 > s:  # decreasing to s: z = ln(u/(u - s)) > 0 grows, t(z) convex
        z0 = np.log(u0) - np.log(u0 - s)
        target = t / C + _phi_plus_float(np.array([z0]), q)[0]
        z = np.full(t.shape, z0)
        for _ in range(2000):
            step = -(_phi_plus_float(z, q) - target) * np.exp(-q * np.log(-np.expm1(-z)))
            z = z + step
            if np.all(np.abs(step) <= 4e-16 * np.maximum(1.0, np.abs(z))):
                break
        return s / -np.expm1(-z)
    z0 = np.log(u0) - np.log(s - u0)
    target = t / C + _phi_float(np.array([z0]), q)[0]
    z = np.full(t.shape, z0)
    for _ in range(2000):
        f = _phi_float(z, q) - target
        step = -f * np.exp(-q * np.logaddexp(0.0, -z))
        z = z + step
        if np.all(np.abs(step) <= 4e-16 * np.maximum(1.0, np.abs(z))):
            break
    return s * expit(z)


def _solution_mp(t, u0, s, L):
    if u0 == 0 or u0 == s:
        return +u0
    if s == 0:
        p = 2 - mpmath.mpf(2) / L
        return mpmath.sign(u0) * (abs(u0) ** -p + p * L * t) ** (-1 / p)
    if L == 2:
        e = mpmath.exp(-2 * s * t)
        if u0 > 0:
            return s / (1 + (s / u0 - 1) * e)
        v0 = -u0
        return -(s * v0 * e / (s + v0 * (1 - e)))
    if u0 < 0:
        return _negative_mode_mp(t, u0, s, L)
    q = 1 - mpmath.mpf(2) / L
    C = s ** (mpmath.mpf(2) / L - 2) / L
    eps = mpmath.mpf(2) ** (-mpmath.mp.prec + 4)
    if u0 > s:
        z = mpmath.log(u0) - mpmath.log(u0 - s)
        target = t / C + _phi_plus_mp(z, q)
        for _ in range(5000):
            step = -(_phi_plus_mp(z, q) - target) * (-mpmath.expm1(-z)) ** (-q)
            z += step
            if abs(step) <= eps * max(1, abs(z)):
                break
        return s / -mpmath.expm1(-z)
    z0 = mpmath.log(u0) - mpmath.log(s - u0)
    target = t / C + _phi_mp(z0, q)
    z = z0
    for _ in range(5000):
        step = -(_phi_mp(z, q) - target) * mpmath.exp(-q * mpmath.log1p(mpmath.exp(-z)))
        z += step
        if abs(step) <= eps * max(1, abs(z)):
            break
    return s / (1 + mpmath.exp(-z))


@dataclass
class ChainClosedForm:
    r"""The symbolic closed form of the depth-:math:`L` scalar chain, with its proof."""

    depth: int

    def expressions(self) -> dict:
        import sympy as sp  # the symbolic form only: a float64 exact() needs no sympy

        t, s, u0 = sp.symbols("t s u_0", positive=True)
        u = sp.Symbol("u", positive=True)
        L = self.depth
        if L == 2:
            return {"u(t)": s / (1 + (s / u0 - 1) * sp.exp(-2 * s * t))}
        q = 1 - sp.Rational(2, L)
        x = u / s
        phi = -(1 / q) * x ** (-q) * sp.hyper([1, -q], [1 - q], x)
        x0 = u0 / s
        phi0 = -(1 / q) * x0 ** (-q) * sp.hyper([1, -q], [1 - q], x0)
        C = s ** (sp.Rational(2, L) - 2) / L
        # Above the teacher (u > s): w = s/u, Phi_+ = w^(q+1)/(q+1) 2F1(1, q+1; q+2; w).
        w, w0 = s / u, s / u0
        plus = w ** (q + 1) / (q + 1) * sp.hyper([1, q + 1], [q + 2], w)
        plus0 = w0 ** (q + 1) / (q + 1) * sp.hyper([1, q + 1], [q + 2], w0)
        return {"t(u)": C * (phi - phi0), "t(u), u > s": C * (plus - plus0)}

    def equations(self) -> list:
        r"""The mode equation :math:`\dot u = L u^{2-2/L}(s - u)` of :math:`u = a^L` and its
        closed form (:math:`u(t)` for :math:`L = 2`, else :math:`t(u)` below and above the
        teacher), as sympy ``Eq`` s of :meth:`expressions`."""
        import sympy as sp  # the symbolic form only: a float64 exact() needs no sympy

        t, s = sp.symbols("t s", positive=True)
        u = sp.Symbol("u", positive=True)
        L = self.depth
        mode = sp.Eq(sp.Derivative(sp.Function("u")(t), t),
                     L * u ** (2 - sp.Rational(2, L)) * (s - u), evaluate=False)
        out = [mode]
        for name, expr in self.expressions().items():
            lhs = sp.Function("u")(t) if name == "u(t)" else sp.Function("t")(u)
            if name.endswith("u > s"):
                lhs = sp.Symbol("t_{+}(u)")
            out.append(sp.Eq(lhs, expr, evaluate=False))
        return out

    def residual(self) -> sp.Expr:
        r"""Substituted into :math:`\dot u = L u^{2-2/L}(s - u)`: simplifies to 0."""
        import sympy as sp  # the symbolic form only: a float64 exact() needs no sympy

        t, s, u0 = sp.symbols("t s u_0", positive=True)
        u = sp.Symbol("u", positive=True)
        L = self.depth
        e = self.expressions()
        if L == 2:
            ut = e["u(t)"]
            return sp.simplify(sp.diff(ut, t) - L * ut ** (2 - sp.Rational(2, L)) * (s - ut))
        total = sp.S.Zero
        for tu in e.values():
            res = sp.diff(tu, u) * L * u ** (2 - sp.Rational(2, L)) * (s - u) - 1
            total += sp.Abs(sp.simplify(sp.hyperexpand(res)))
        return sp.simplify(total)


# ---- decoupled inits of the full network ------------------------------------------------
@dataclass
class ModeFrame:
    """Modes of a decoupled init: teacher values ``s``, initial ``u0``, frames."""

    s: np.ndarray
    u0: np.ndarray
    U: np.ndarray  # out x r
    V: np.ndarray  # in x r
    hidden: list  # per layer l = 1..L-1: width x r frame (column alpha: mode alpha)


def decoupled_modes(model, tol: float = 1e-9) -> ModeFrame:
    r"""The modes of a decoupled (balanced, teacher-aligned, whitened) init.

    Raises
    ------
    ValueError
        If :math:`\Sigma_{xx} \ne I`, the init is not balanced
        (:math:`W_{\ell+1}^\top W_{\ell+1} \ne W_\ell W_\ell^\top`), or
        :math:`U^\top A_0 V` is not diagonal: no closed form, use ``solve``.
    """
    _, sxx = model.data_matrices()
    if not np.array_equal(sxx, np.eye(model.in_dim)):
        raise ValueError("exact: deep_linear has a closed form only for whitened inputs "
                         "(sigma_xx = I); use solve")
    W = [model.initial_state()[n] for n in model.state_names]
    scale = max(float(np.linalg.norm(w)) ** 2 for w in W) or 1.0
    for l in range(len(W) - 1):
        B = W[l + 1].T @ W[l + 1] - W[l] @ W[l].T
        if np.abs(B).max() > tol * scale:
            raise ValueError(
                f"exact: the init is not balanced (|W{l + 2}^T W{l + 2} - W{l + 1} W{l + 1}^T|"
                f" = {np.abs(B).max():.2e}), so it is not decoupled and has no closed form; "
                "use solve, or DeepLinear.decoupled for an init with one")
    syx = np.asarray(model.sigma_yx)
    U, svals, Vt = np.linalg.svd(syx)
    A0 = W[-1]
    for w in reversed(W[:-1]):
        A0 = A0 @ w
    M = U.T @ A0 @ Vt.T
    r = min(model.out_dim, model.in_dim)
    diag = np.diag(M)[:r].copy()
    off = M.copy()
    off[np.arange(r), np.arange(r)] = 0
    ref = max(np.abs(M).max(), svals.max(initial=0.0), 1e-300)
    if np.abs(off).max() > tol * ref:
        raise ValueError("exact: the init's end-to-end map is not aligned with the singular "
                         "vectors of sigma_yx (U^T A0 V is not diagonal), so it is not "
                         "decoupled and has no closed form; use solve")
    s = np.zeros(r)
    s[:svals.size] = svals[:r]
    V = Vt.T[:, :r]
    hidden = []
    prev = V
    for w in W[:-1]:
        img = w @ prev
        norms = np.linalg.norm(img, axis=0)
        cols = np.where(norms > 0, img / np.where(norms > 0, norms, 1), 0.0)
        hidden.append(cols)
        prev = cols
    # Only rounding noise of U^T A0 V (relative to A0's own size, never to the teacher's) is
    # a zero mode: a small init is the saddle-to-saddle regime itself, and a mode of 1e-12
    # (depth 4, mode_init 1e-3) escapes near t = 1e5 (it was zeroed below 4e-12 s before).
    noise = 16 * np.finfo(float).eps * max(model.in_dim, model.out_dim) * np.abs(M).max()
    diag[np.abs(diag) <= noise] = 0.0
    return ModeFrame(s, diag, U[:, :r], V, hidden)


def _modes_mp(model, fr, precision):
    """The initial modes diag(U^T A0 V) with A0 multiplied out exactly in mpmath from the
    float64 weights (exact when U, V are signed permutations, as for diagonal teachers)."""
    with _mp.workdps(precision + 10):
        W = [mpmath.matrix(model.initial_state()[n].tolist()) for n in model.state_names]
        A0 = W[-1]
        for w in reversed(W[:-1]):
            A0 = A0 * w
        M = mpmath.matrix(fr.U.T.tolist()) * A0 * mpmath.matrix(fr.V.tolist())
        return [M[i, i] if fr.u0[i] != 0 else mpmath.mpf(0) for i in range(fr.u0.size)]


def exact_deep_linear(model, times: np.ndarray, precision: int | None = None) -> Trajectory:
    """Closed-form trajectory of a :class:`~exactdyn.DeepLinear` with a decoupled init."""
    fr = decoupled_modes(model)
    L = model.depth
    for s, u0 in zip(fr.s, fr.u0):
        _check_mode(s, u0, L)
    u0s = fr.u0 if precision is None else _modes_mp(model, fr, precision)
    us = np.stack([chain_solution(times, u0, float(s), L, precision) for s, u0 in
                   zip(fr.s, u0s)], axis=-1) if fr.s.size else np.zeros((len(times), 0))
    if precision is not None:
        return _trajectory_mp(model, fr, times, us, u0s, precision)
    us_f = us
    A = np.einsum("or,tr,ir->toi", fr.U, us_f, fr.V, optimize=True)
    syx = np.asarray(model.sigma_yx)
    s_full = fr.s
    loss = 0.5 * np.sum((s_full - us_f) ** 2, axis=-1) + 0.5 * (
        np.sum(syx**2) - np.sum(s_full**2))
    W0 = [model.initial_state()[n] for n in model.state_names]
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(fr.u0 != 0, np.abs(us_f / np.where(fr.u0 != 0, fr.u0, 1)), 0.0) \
            ** (1.0 / L)
    frames = [fr.V] + fr.hidden
    state = {}
    for l, (name, w0) in enumerate(zip(model.state_names, W0)):
        P = frames[l]
        # W_l(t) = W_l(0) P diag(factor(t)) P^T, P the frame of the layer's input modes.
        state[name] = np.einsum("ar,tr,cr->tac", w0 @ P, factor, P, optimize=True)
    obs = {"end_to_end": A, "loss": loss,
           "singular_values": np.sort(np.abs(us_f), axis=-1)[:, ::-1]}
    sv_len = min(model.out_dim, model.in_dim)
    if obs["singular_values"].shape[1] < sv_len:
        pad = np.zeros((len(times), sv_len - obs["singular_values"].shape[1]))
        obs["singular_values"] = np.concatenate([obs["singular_values"], pad], axis=1)
    meta = {"model": model.name, "params": model.params, "method": "closed_form",
            "rtol": None, "atol": None, "precision": precision,
            "mode_s": fr.s.tolist(), "mode_u0": fr.u0.tolist()}
    from .checks import require_finite

    return require_finite(Trajectory(np.asarray(times, dtype=float).copy(), state, obs, meta))


def _trajectory_mp(model, fr, times, us, u0s, precision) -> Trajectory:
    """The same trajectory with every array in mpmath (``precision`` digits, 10 guard
    digits inside). The frames U, V and the hidden frames enter as float64 numbers, exact
    when they are signed permutations (diagonal teachers, :meth:`DeepLinear.decoupled`)."""
    L = model.depth
    n_t = len(times)
    with _mp.workdps(precision + 10):
        mpf = np.frompyfunc(mpmath.mpf, 1, 1)
        U, V = mpf(fr.U), mpf(fr.V)
        s = mpf(fr.s)
        syx = mpf(np.asarray(model.sigma_yx))
        const = (sum(x * x for x in syx.ravel()) - sum(x * x for x in s)) / 2
        A = np.empty((n_t, model.out_dim, model.in_dim), dtype=object)
        loss = np.empty(n_t, dtype=object)
        sv_len = min(model.out_dim, model.in_dim)
        sv = np.empty((n_t, sv_len), dtype=object)
        factor = np.empty((n_t, len(u0s)), dtype=object)
        for i in range(n_t):
            u = us[i]
            A[i] = (U * u) @ V.T
            loss[i] = sum((a - b) ** 2 for a, b in zip(s, u)) / 2 + const
            vals = sorted((abs(x) for x in u), reverse=True)
            sv[i] = vals + [mpmath.mpf(0)] * (sv_len - len(vals))
            factor[i] = [abs(x / x0) ** (mpmath.mpf(1) / L) if x0 != 0 else mpmath.mpf(0)
                         for x, x0 in zip(u, u0s)]
        frames = [fr.V] + fr.hidden
        state = {}
        for l, name in enumerate(model.state_names):
            P = mpf(frames[l])
            w0P = mpf(model.initial_state()[name]) @ P
            state[name] = np.array([(w0P * factor[i]) @ P.T for i in range(n_t)], dtype=object)
    with _mp.workdps(precision):
        rnd = np.frompyfunc(lambda x: +x, 1, 1)
        obs = {"end_to_end": rnd(A), "loss": rnd(loss), "singular_values": rnd(sv)}
        state = {k: rnd(v) for k, v in state.items()}
        modes = rnd(us)
        t_out = np.array([mpmath.mpf(float(x)) for x in times], dtype=object)
    meta = {"model": model.name, "params": model.params, "method": "closed_form",
            "rtol": None, "atol": None, "precision": precision,
            "mode_s": fr.s.tolist(), "mode_u0": fr.u0.tolist(), "modes": modes}
    return Trajectory(t_out, state, obs, meta)


def _register():
    from ..models.deep_linear import DeepLinear
    from . import register_closed_form

    register_closed_form(DeepLinear, exact_deep_linear,
                         lambda model: ChainClosedForm(model.depth))


_register()
