r"""Regime metrics: public functions, array-friendly (numpy broadcasting), no loops.

Exact metrics of the 1-D linear network (MATH.md §1, after Xu & Ziyin, arXiv:2401.07085)
take the scalars of the closed form: :math:`p_0 = u_0\cdot w_0`, the target
:math:`p^* = c/\kappa`, :math:`k'` and :math:`Q_2 = \lVert u\rVert^2\lVert w\rVert^2 - p^2`
(conserved). Sampled metrics take arrays along a trajectory (time on the last axis).

The labels built from these metrics follow Xu & Ziyin as far as the paper could be read
(the NTK staying unchanged; the path of :math:`\zeta`); see
:mod:`exactdyn.regimes.linear1d` and ``docs/papers/xu_ziyin.md``. The disalignment fraction
and the alignment score :math:`\alpha` are the project's earlier criteria, kept as scores.
"""

from __future__ import annotations

import numpy as np


def _arr(x):
    return np.asarray(x, dtype=float)


# ---- exact metrics (closed form) ---------------------------------------------------------

def ntk_ratio(p0, pstar, k_prime):
    r"""Exact :math:`K_\infty/K_0 = \sqrt{(p^{*2} + k'^2)/(p_0^2 + k'^2)}`.

    With :math:`K = \omega\sqrt{p^2 + k'^2}` along the whole path.
    """
    p0, pstar, kp = _arr(p0), _arr(pstar), _arr(k_prime)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.hypot(pstar, kp) / np.hypot(p0, kp)


def sign_flip(p0, pstar):
    r"""True where :math:`p` changes sign on the way: :math:`p_0 p^* < 0`."""
    return _arr(p0) * _arr(pstar) < 0


def overshoot(p0, pstar):
    r"""True where the init lies beyond the target on its own side: :math:`|p_0| > |p^*|`
    and :math:`p_0 p^* \ge 0` (so :math:`|p|` only decreases; :math:`p^* = 0` included)."""
    p0, pstar = _arr(p0), _arr(pstar)
    return (p0 * pstar >= 0) & (np.abs(p0) > np.abs(pstar))


def ntk_dip_ratio(p0, pstar, k_prime):
    r"""Exact :math:`\min_t K(t)/K_0`: :math:`k'/\sqrt{p_0^2 + k'^2}` where the sign of
    :math:`p` flips (the NTK passes through :math:`\omega k'` at :math:`p = 0`), else
    :math:`\min(1, K_\infty/K_0)`."""
    p0, pstar, kp = _arr(p0), _arr(pstar), _arr(k_prime)
    with np.errstate(invalid="ignore", divide="ignore"):
        dip = kp / np.hypot(p0, kp)
    return np.where(sign_flip(p0, pstar), dip, np.minimum(1.0, ntk_ratio(p0, pstar, kp)))


def exact_ntk_change(p0, pstar, k_prime):
    r"""Exact :math:`\sup_t |K(t)/K_0 - 1|` over the whole path (:math:`t \in [0, \infty)`).

    :math:`p` is monotone, so :math:`K = \omega\sqrt{p^2+k'^2}` is extremal at the ends or
    at :math:`p = 0`: the sup is :math:`\max(|K_\infty/K_0 - 1|,\ 1 - K_{\min}/K_0)`.
    At :math:`k' = 0` with a sign flip :math:`p` is stuck at the saddle: the NTK falls to 0.
    """
    ratio = ntk_ratio(p0, pstar, k_prime)
    dip = ntk_dip_ratio(p0, pstar, k_prime)
    stuck = sign_flip(p0, pstar) & (_arr(k_prime) == 0)
    out = np.maximum(np.abs(ratio - 1), 1 - dip)
    out = np.where(stuck, 1.0, out)
    # u0 = w0 = 0 (p0 = 0, k' = 0): the origin is a fixed point, the NTK stays 0.
    return np.where((_arr(p0) == 0) & (_arr(k_prime) == 0), 0.0, out)


def order_parameter(pstar, k_prime):
    r""":math:`\chi = |p^*|/k'` (MATH.md §1): :math:`\chi \to 0` kernel, :math:`\Theta(1)`
    critical, :math:`\to\infty` feature learning."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(_arr(pstar)) / _arr(k_prime)


def disalignment_fraction(p0, pstar):
    r"""Exact fraction of the total variation of :math:`|p|` along the path that is
    decrease: :math:`|p_0|/(|p_0| + |p^*|)` on a sign flip, 1 on an overshoot, else 0.

    The path is monotone in :math:`p` from :math:`p_0` to :math:`p^*` (MATH.md §1).
    """
    p0, pstar = _arr(p0), _arr(pstar)
    a0, astar = np.abs(p0), np.abs(pstar)
    with np.errstate(invalid="ignore", divide="ignore"):
        on_flip = a0 / (a0 + astar)
    out = np.where(sign_flip(p0, pstar), on_flip, 0.0)
    return np.where(overshoot(p0, pstar), 1.0, out)


def alignment_score_exact(p0, pstar, q2):
    r"""Exact :math:`\alpha = \Delta\ln|\zeta| / \Delta\ln|p|` from :math:`p_0` to :math:`p^*`.

    With the exact identity :math:`\zeta^2 = p^2/(p^2 + Q_2)`,

    .. math:: \alpha = 1 - \frac{\ln\big((p^{*2} + Q_2)/(p_0^2 + Q_2)\big)}
                               {2\ln(|p^*|/|p_0|)} \in [0, 1],

    evaluated with ``log1p``. Defined where :math:`|p|` grows (:math:`|p^*| > |p_0|`);
    NaN elsewhere. :math:`p_0 = 0` with :math:`Q_2 > 0` gives the limit 1, and
    :math:`Q_2 = 0` gives 0 (:math:`\zeta = \pm 1` throughout).
    """
    p0, pstar, q2 = np.abs(_arr(p0)), np.abs(_arr(pstar)), _arr(q2)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        num = np.log1p((pstar - p0) * (pstar + p0) / (p0 * p0 + q2))
        den = 2 * (np.log(pstar) - np.log(p0))
        alpha = 1 - num / den
    alpha = np.where((p0 == 0) & (q2 > 0), 1.0, alpha)
    alpha = np.where(q2 == 0, 0.0, alpha)
    return np.where(pstar > p0, np.clip(alpha, 0.0, 1.0), np.nan)


# ---- sampled metrics (along a trajectory) ------------------------------------------------

def relative_ntk_change(ntk):
    r"""Sampled :math:`\max_t |K(t)/K(0) - 1|` along the last axis."""
    ntk = _arr(ntk)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.max(np.abs(ntk / ntk[..., :1] - 1), axis=-1)


def alignment_score(p, zeta):
    r"""Sampled :math:`\alpha = (\ln|\zeta_T| - \ln|\zeta_0|)/(\ln|p_T| - \ln|p_0|)`,
    first and last samples along the last axis (NaN where :math:`|p|` does not grow)."""
    p, zeta = np.abs(_arr(p)), np.abs(_arr(zeta))
    with np.errstate(invalid="ignore", divide="ignore"):
        dlp = np.log(p[..., -1]) - np.log(p[..., 0])
        dlz = np.log(zeta[..., -1]) - np.log(zeta[..., 0])
        return np.where(dlp > 0, dlz / dlp, np.nan)


def sampled_disalignment_fraction(p):
    r"""Sampled fraction of the total variation of :math:`|p|` that is decrease."""
    steps = np.diff(np.abs(_arr(p)), axis=-1)
    down = -np.sum(np.minimum(steps, 0), axis=-1)
    total = np.sum(np.abs(steps), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, down / total, 0.0)


# ---- the zeta path and the plain NTK (Xu & Ziyin's reading; MATH.md §1) ------------------

def teacher_sign(p0, pstar):
    r"""The sign that orients :math:`\zeta`: :math:`\operatorname{sign}(p^*)`, or
    :math:`\operatorname{sign}(p_0)` where :math:`p^* = 0` (then :math:`|\zeta|` only falls),
    or +1 where both vanish."""
    p0, pstar = _arr(p0), _arr(pstar)
    s = np.sign(pstar)
    s = np.where(s == 0, np.sign(p0), s)
    return np.where(s == 0, 1.0, s)


def _cosine(q, q2):
    """:math:`q/\\sqrt{q^2 + Q_2}` with the :math:`Q_2 = 0` limit sign(q)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = q / np.sqrt(q * q + q2)
    return np.where(q2 == 0, np.sign(q), z)


def zeta_path(p0, pstar, q2, k_prime=None):
    r"""Exact ends and parts of the path of :math:`\zeta = p/(\lVert u\rVert\lVert w\rVert)`,
    signed by the teacher.

    With :math:`s = \operatorname{sign}(p^*)` (:func:`teacher_sign`) and the exact identity
    :math:`\zeta^2 = p^2/(p^2 + Q_2)` (:math:`Q_2` conserved), :math:`s\zeta` is an
    increasing function of :math:`sp`, and :math:`p` moves monotonically from :math:`p_0` to
    :math:`p^*`. So the signed path :math:`s\zeta(t)` is monotone from
    :math:`s\zeta_0 = sp_0/\sqrt{p_0^2+Q_2}` to :math:`s\zeta_\infty = |p^*|/\sqrt{p^{*2}+Q_2}`,
    and it splits into at most two parts:

    * ``fall``: the decrease of :math:`|\zeta|` (disalignment). :math:`|\zeta_0|` when the sign
      of :math:`p` flips (:math:`|\zeta|` falls to 0 at :math:`p = 0`);
      :math:`s\zeta_0 - s\zeta_\infty` when the init lies beyond the target
      (:math:`|p_0| > |p^*|`, same side); else 0.
    * ``rise``: the increase of :math:`s\zeta` while :math:`s\zeta \ge 0` (alignment).
      :math:`\zeta_\infty` after a sign flip; :math:`s(\zeta_\infty - \zeta_0)` when
      :math:`0 \le sp_0 < |p^*|`; else 0.

    At :math:`k' = 0` with a sign flip, :math:`p` is stuck at the saddle (MATH.md §1) and
    :math:`\zeta = \pm1` throughout (:math:`Q_2 = 0`): both parts are 0; likewise at
    :math:`u_0 = w_0 = 0` (:math:`p_0 = 0`, :math:`k' = 0`), a fixed point.

    Returns
    -------
    dict of ndarray
        ``zeta0``, ``zeta_inf`` (unsigned values of :math:`\zeta`), ``fall``, ``rise``,
        ``sign`` (the orientation :math:`s`).
    """
    p0, pstar, q2 = np.broadcast_arrays(_arr(p0), _arr(pstar), _arr(q2))
    s = teacher_sign(p0, pstar)
    q0, qs = s * p0, s * pstar
    z0, zinf = _cosine(q0, q2), _cosine(qs, q2)
    flip = q0 < 0
    over = q0 > qs
    fall = np.where(flip, np.abs(z0), np.where(over, z0 - zinf, 0.0))
    rise = np.where(flip, np.maximum(zinf, 0.0), np.where(over, 0.0, zinf - z0))
    if k_prime is not None:
        stuck = (flip | (p0 == 0)) & (_arr(k_prime) == 0)
        zinf = np.where(stuck, z0, zinf)
        fall = np.where(stuck, 0.0, fall)
        rise = np.where(stuck, 0.0, rise)
    return {"zeta0": s * z0, "zeta_inf": s * zinf, "fall": np.maximum(fall, 0.0),
            "rise": np.maximum(rise, 0.0), "sign": s}


def norm_product_ratio(p0, pstar, q2, k_prime=None):
    r"""Exact :math:`\lVert u_\infty\rVert\lVert w_\infty\rVert / \lVert u_0\rVert\lVert
    w_0\rVert = \sqrt{(p^{*2} + Q_2)/(p_0^2 + Q_2)}` (0 when stuck at the saddle)."""
    p0, pstar, q2 = _arr(p0), _arr(pstar), _arr(q2)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.sqrt((pstar * pstar + q2) / (p0 * p0 + q2))
    if k_prime is not None:
        r = np.where(sign_flip(p0, pstar) & (_arr(k_prime) == 0), np.sqrt(q2) / np.sqrt(
            p0 * p0 + q2), r)
    return r


def plain_ntk_change(p0, pstar, k_prime, q1, eta_u, eta_w):
    r"""Exact :math:`\sup_t |K_{\rm plain}(t)/K_{\rm plain}(0) - 1|` of the unweighted NTK
    :math:`K_{\rm plain} = \nabla_\theta f\cdot\nabla_\theta f
    = \kappa^2\Sigma_{xx}(\lVert u\rVert^2 + \lVert w\rVert^2)` (Xu & Ziyin v1, Eq. 1).

    From the conserved :math:`Q_1 = \lVert u\rVert^2/\eta_u - \lVert w\rVert^2/\eta_w` and
    :math:`\eta_w\lVert u\rVert^2 + \eta_u\lVert w\rVert^2 = 2\sqrt{\eta_u\eta_w}
    \sqrt{p^2 + k'^2}`, with :math:`a = \sqrt{\eta_u/\eta_w}`:

    .. math:: \lVert u\rVert^2 + \lVert w\rVert^2 = (a + a^{-1})\sqrt{p^2 + k'^2}
              + \tfrac12 Q_1(\eta_u - \eta_w),

    a function of :math:`|p|` increasing with it, so (:math:`p` monotone) the sup is at the
    ends of the path or at :math:`p = 0` when the sign flips. With equal rates it equals
    :func:`exact_ntk_change` (the plain NTK is then the rate-weighted one over :math:`\eta`).
    """
    p0, pstar, kp, q1 = _arr(p0), _arr(pstar), _arr(k_prime), _arr(q1)
    eu, ew = _arr(eta_u), _arr(eta_w)
    a = np.sqrt(eu / ew)
    b = 0.5 * q1 * (eu - ew)

    def g(p):
        return (a + 1 / a) * np.hypot(p, kp) + b

    with np.errstate(invalid="ignore", divide="ignore"):
        g0 = g(p0)
        end = np.abs(g(pstar) / g0 - 1)
        dip = 1 - g(0.0) / g0
    flip = sign_flip(p0, pstar)
    out = np.where(flip, np.maximum(end, dip), end)
    stuck = flip & (kp == 0)
    out = np.where(stuck, dip, out)
    return np.where((p0 == 0) & (kp == 0), 0.0, out)  # u0 = w0 = 0: the NTK stays 0


def sampled_zeta_parts(zeta, sign):
    r"""Sampled ``fall`` and ``rise`` of :math:`\zeta` along the last axis (see
    :func:`zeta_path`): with :math:`s\zeta` the teacher-signed samples, ``fall`` sums the
    decreases of :math:`|\zeta|` and ``rise`` the increases of :math:`|\zeta|` on steps where
    :math:`s\zeta` rises on the teacher's side; a step that crosses 0 counts
    :math:`|\zeta|` down to 0, then up. Non-finite samples (a zero vector) count as 0."""
    z = np.nan_to_num(_arr(zeta) * _arr(sign)[..., None], nan=0.0)
    a, b = z[..., :-1], z[..., 1:]
    cross = a * b < 0
    down = np.where(cross, np.abs(a), np.maximum(np.abs(a) - np.abs(b), 0.0))
    up = np.where(cross, np.where(b > 0, np.abs(b), 0.0),
                  np.where((b > a) & (b >= 0), np.maximum(np.abs(b) - np.abs(a), 0.0), 0.0))
    return np.sum(down, axis=-1), np.sum(up, axis=-1)
