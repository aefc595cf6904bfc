r"""Width-scaling theory: which regime a parametrization gives as the width grows.

**1-D linear network** (MATH.md §1, Xu & Ziyin arXiv:2401.07085). With
:math:`\sigma_u^2 \propto d^{-a}`, :math:`\sigma_w^2 \propto d^{-b}`, :math:`\kappa \propto
d^{-e}`, :math:`\eta_u \propto d^{g_u}`, :math:`\eta_w \propto d^{g_w}`, the order parameter
:math:`\chi = |p^*|/k'` scales as :math:`d^{x}` with

.. math:: x = e - 1 + \min\big(a + (g_u - g_w)/2,\ b + (g_w - g_u)/2\big),

since :math:`p^* = c/\kappa \propto d^{e}` and
:math:`k' \approx M = \tfrac12(\sqrt{\eta_w/\eta_u}\,d\sigma_u^2
+ \sqrt{\eta_u/\eta_w}\,d\sigma_w^2)`.
:math:`x < 0` kernel, :math:`x = 0` critical, :math:`x > 0` feature learning.

**Two-layer networks** (MATH.md §4, Luo, Xu, Ma, Zhang, JMLR 2021):
:math:`f = \frac1\alpha\sum_k a_k\sigma(w_k\cdot x)`, :math:`a_k \sim N(0,\beta_1^2)`,
:math:`w_k \sim N(0, \beta_2^2 I)`,
:math:`\gamma = \lim -\log(\beta_1\beta_2/\alpha)/\log m`,
:math:`\gamma' = \lim -\log(\beta_1/\beta_2)/\log m`; linear if :math:`\gamma < 1` or
:math:`\gamma' > \gamma - 1`, condensed if :math:`\gamma > 1` and :math:`\gamma' < \gamma - 1`,
critical on the boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._validation import show

#: Two exponents closer than this are equal (a boundary) in the labels below.
EXPONENT_TOL = 1e-9


def _finite(name, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number, got {show(value)}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {show(value)}")
    return v


# ---- 1-D linear network ------------------------------------------------------------------

def chi_exponent(a=0.0, b=0.0, e=0.0, g_u=0.0, g_w=0.0) -> float:
    r"""Width exponent of :math:`\chi`: :math:`\lim \log_d\chi = e - 1 + \min(a + (g_u -
    g_w)/2, b + (g_w - g_u)/2)` (MATH.md §1).

    Parameters are the exponents of :math:`\sigma_u^2 \propto d^{-a}`,
    :math:`\sigma_w^2 \propto d^{-b}`, :math:`\kappa \propto d^{-e}`,
    :math:`\eta_u \propto d^{g_u}`, :math:`\eta_w \propto d^{g_w}`.
    """
    a, b, e, g_u, g_w = (_finite(n, x) for n, x in
                         (("a", a), ("b", b), ("e", e), ("g_u", g_u), ("g_w", g_w)))
    return e - 1 + min(a + (g_u - g_w) / 2, b + (g_w - g_u) / 2)


def chi_label(exponent: float) -> str:
    """``"kernel"`` (< 0), ``"critical"`` (= 0) or ``"feature-learning"`` (> 0)."""
    x = _finite("exponent", exponent)
    if abs(x) <= EXPONENT_TOL:
        return "critical"
    return "kernel" if x < 0 else "feature-learning"


@dataclass(frozen=True)
class Parametrization:
    r"""A width-scaling of the 1-D linear network's hyperparameters.

    :math:`\sigma_u = s_u d^{-a/2}`, :math:`\sigma_w = s_w d^{-b/2}`,
    :math:`\kappa = k d^{-e}`, :math:`\eta_u = d^{g_u}`, :math:`\eta_w = d^{g_w}`.
    """

    name: str
    a: float = 0.0
    b: float = 0.0
    e: float = 0.0
    g_u: float = 0.0
    g_w: float = 0.0
    note: str = ""

    @property
    def exponent(self) -> float:
        return chi_exponent(self.a, self.b, self.e, self.g_u, self.g_w)

    @property
    def label(self) -> str:
        return chi_label(self.exponent)

    def hyperparameters(self, width: int, sigma_u=1.0, sigma_w=1.0, kappa=1.0) -> dict:
        """The hyperparameters at ``width`` (prefactors ``sigma_u``, ``sigma_w``, ``kappa``)."""
        if isinstance(width, bool) or int(width) != width or width < 1:
            raise ValueError(f"width must be an integer >= 1, got {show(width)}")
        d = float(width)
        return {"width": int(width), "sigma_u": sigma_u * d ** (-self.a / 2),
                "sigma_w": sigma_w * d ** (-self.b / 2), "kappa": kappa * d ** (-self.e),
                "eta_u": d ** self.g_u, "eta_w": d ** self.g_w}


#: Named parametrizations of the 1-D linear network. μP-style is our reading of
#: Yang & Hu's maximal-update scaling for a 1-D input: readout init variance 1/d², readout
#: rate 1/d, input-layer rate d.
PARAMETRIZATIONS = {
    "ntk": Parametrization("ntk", e=0.5, note="kappa = d^-1/2, sigma = 1"),
    "mean-field": Parametrization("mean-field", e=1.0, note="kappa = 1/d, sigma = 1"),
    "standard": Parametrization("standard", a=1.0, note="kappa = 1, sigma_u^2 = 1/d"),
    "mup": Parametrization("mup", a=2.0, g_u=-1.0, g_w=1.0,
                           note="sigma_u^2 = 1/d^2, eta_u = 1/d, eta_w = d"),
}


def parametrization(name: str) -> Parametrization:
    """A named parametrization: ``ntk``, ``mean-field``, ``standard``, ``mup``."""
    if name not in PARAMETRIZATIONS:
        raise ValueError(f"parametrization must be one of {', '.join(PARAMETRIZATIONS)}; "
                         f"got {show(name)}")
    return PARAMETRIZATIONS[name]


# ---- two-layer networks [LX] -------------------------------------------------------------

def luo_exponents(alpha, beta1, beta2, m):
    r""":math:`(\gamma, \gamma')` of Luo et al. from :math:`\alpha, \beta_1, \beta_2` at widths
    :math:`m`.

    With scalars (one width): the finite-width values :math:`-\log(\beta_1\beta_2/\alpha)
    /\log m` and :math:`-\log(\beta_1/\beta_2)/\log m`. With arrays over several widths: the
    least-squares slopes of :math:`-\log(\beta_1\beta_2/\alpha)` and
    :math:`-\log(\beta_1/\beta_2)` against :math:`\log m` (the limit, without the
    constant prefactors that bias one-width values).
    """
    alpha, beta1, beta2, m = np.broadcast_arrays(*(np.asarray(x, float) for x in
                                                   (alpha, beta1, beta2, m)))
    for name, x in (("alpha", alpha), ("beta1", beta1), ("beta2", beta2)):
        if not np.all(np.isfinite(x)) or np.any(x <= 0):
            raise ValueError(f"{name} must be finite and > 0, got {show(x)}")
    if not np.all(np.isfinite(m)) or np.any(m <= 1):
        raise ValueError(f"m must be finite and > 1, got {show(m)}")
    y1 = -np.log(beta1 * beta2 / alpha)
    y2 = -np.log(beta1 / beta2)
    lm = np.log(m)
    if lm.ndim == 0 or np.unique(lm).size == 1:
        return float(np.mean(y1 / lm)), float(np.mean(y2 / lm))
    A = np.stack([lm.ravel(), np.ones(lm.size)], axis=1)
    g1 = np.linalg.lstsq(A, y1.ravel(), rcond=None)[0][0]
    g2 = np.linalg.lstsq(A, y2.ravel(), rcond=None)[0][0]
    return float(g1), float(g2)


def luo_label(gamma, gamma_prime, tol: float = EXPONENT_TOL):
    r"""Label of :math:`(\gamma, \gamma')` [LX]: ``"linear"``, ``"critical"``, ``"condensed"``.

    Array inputs give an array of labels. Points within ``tol`` of the boundary
    :math:`\{\gamma = 1, \gamma' \le 0\} \cup \{\gamma' = \gamma - 1, \gamma \ge 1\}` are
    critical.
    """
    g = np.asarray(gamma, float)
    gp = np.asarray(gamma_prime, float)
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(gp))):
        raise ValueError("gamma and gamma_prime must be finite")
    crit = ((np.abs(g - 1) <= tol) & (gp <= tol)) | ((np.abs(gp - (g - 1)) <= tol)
                                                      & (g >= 1 - tol))
    lin = (g < 1) | (gp > g - 1)
    out = np.where(crit, "critical", np.where(lin, "linear", "condensed"))
    return str(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class TwoLayerInit:
    r"""A named init of a two-layer network [LX]: :math:`\alpha = m^{p_\alpha}`,
    :math:`\beta_1 = m^{-q_1}`, :math:`\beta_2 = m^{-q_2}` (input dimension fixed)."""

    name: str
    p_alpha: float
    q1: float
    q2: float
    note: str = ""

    @property
    def gamma(self) -> float:
        return self.p_alpha + self.q1 + self.q2

    @property
    def gamma_prime(self) -> float:
        return self.q1 - self.q2

    @property
    def label(self) -> str:
        return luo_label(self.gamma, self.gamma_prime)

    def scales(self, m) -> dict:
        """``alpha``, ``beta1``, ``beta2`` at width ``m``."""
        m = float(m)
        return {"alpha": m**self.p_alpha, "beta1": m ** (-self.q1), "beta2": m ** (-self.q2)}


#: Named inits of Luo et al. (input dimension d fixed as m grows): NTK (α = √m, β = 1),
#: mean-field (α = m, β = 1), Xavier (β1² = 2/(m+1), β2² = 2/(d+m), α = 1), LeCun
#: (β1² = 1/m, β2² = 1/d), He (β1² = 2/m, β2² = 2/d), and the 1/m-both-layers init.
TWO_LAYER_INITS = {
    "ntk": TwoLayerInit("ntk", 0.5, 0.0, 0.0, "alpha = sqrt(m), beta = 1"),
    "mean-field": TwoLayerInit("mean-field", 1.0, 0.0, 0.0, "alpha = m, beta = 1"),
    "xavier": TwoLayerInit("xavier", 0.0, 0.5, 0.5, "beta1^2 = 2/(m+1), beta2^2 = 2/(d+m)"),
    "lecun": TwoLayerInit("lecun", 0.0, 0.5, 0.0, "beta1^2 = 1/m, beta2^2 = 1/d"),
    "he": TwoLayerInit("he", 0.0, 0.5, 0.0, "beta1^2 = 2/m, beta2^2 = 2/d"),
    "std-1/m": TwoLayerInit("std-1/m", 0.0, 1.0, 1.0, "beta1 = beta2 = 1/m"),
}


def two_layer_init(name: str) -> TwoLayerInit:
    """A named two-layer init: ``ntk``, ``mean-field``, ``xavier``, ``lecun``, ``he``,
    ``std-1/m``."""
    if name not in TWO_LAYER_INITS:
        raise ValueError(f"init must be one of {', '.join(TWO_LAYER_INITS)}; got {show(name)}")
    return TWO_LAYER_INITS[name]
