r"""Regimes of the 1-D linear network (MATH.md §1): kernel, alignment, disalignment, rescaling.

**These are the project's operational definitions.** Xu & Ziyin (arXiv:2401.07085, ICLR
2025 as "Three mechanisms of feature learning in a linear network") name the mechanisms;
their exact criteria could not be read, so the thresholds below are ours.

With :math:`p = u\cdot w`, target :math:`p^* = c/\kappa`, the conserved
:math:`Q_2 = \lVert u\rVert^2\lVert w\rVert^2 - p^2`, :math:`k'^2 = M^2 - p_0^2` and the NTK
:math:`K = \omega\sqrt{p^2 + k'^2}`, the *measured* label (from the exact solution of a
model, or from the samples of a trajectory) is, in this order:

1. ``"kernel"`` if the NTK moves little: :math:`\sup_t|K(t)/K_0 - 1| <` ``kernel_tol``
   (default 0.1). Exactly, the sup is :math:`\max(|K_\infty/K_0 - 1|, 1 - K_{\min}/K_0)`
   with :math:`K_\infty/K_0 = \sqrt{(p^{*2}+k'^2)/(p_0^2+k'^2)}` and
   :math:`K_{\min} = \omega k'` when the sign of :math:`p` flips.
2. ``"disalignment"`` if decrease dominates the path of :math:`|p|`: the disalignment
   fraction :math:`D` (decrease over total variation of :math:`|p|`) is
   :math:`\ge` ``disalignment_threshold`` (default ½). The sign test
   (:math:`p_0p^* < 0`) and the overshoot test (:math:`|p_0| > |p^*|` on the same side) are
   reported in the evidence; exactly :math:`D = |p_0|/(|p_0|+|p^*|)` on a flip, 1 on an
   overshoot, 0 otherwise.
3. ``"alignment"`` if the growth of :math:`|p|` is carried by the alignment cosine
   :math:`\zeta = p/(\lVert u\rVert\lVert w\rVert)`: the score
   :math:`\alpha = \Delta\ln|\zeta|/\Delta\ln|p| \ge` ``alignment_threshold`` (default ½);
   exactly (with :math:`\zeta^2 = p^2/(p^2+Q_2)`)
   :math:`\alpha = 1 - \ln\frac{p^{*2}+Q_2}{p_0^2+Q_2} \big/ 2\ln\frac{|p^*|}{|p_0|}`.
4. ``"rescaling"`` otherwise (growth at nearly fixed :math:`\zeta`).

The *predicted* label is the asymptotic theory from the hyperparameters and the three
scalars of the init (:math:`\lVert u_0\rVert^2`, :math:`\lVert w_0\rVert^2`, :math:`p_0`,
fixed by seed, width and the init scales), with no dynamics:

1. kernel if :math:`\chi = |p^*|/k' < \chi_K` and :math:`|p_0|/k' < \chi_K`, where
   :math:`\chi_K = \sqrt{(1+\tau)^2 - 1}` (:math:`\tau` = ``kernel_tol``) is the point where
   the NTK of an init with :math:`p_0 = 0` changes by :math:`\tau`;
2. disalignment if :math:`|p_0| > |p^*|`;
3. alignment if :math:`Q_2 > |p_0 p^*|` (:math:`Q_2 \gg p^2` at the geometric middle of the
   path, the scale-separated limit of :math:`\alpha = \tfrac12`), else rescaling.

The theory boundaries are the curves where the predicted label changes.
"""

from __future__ import annotations

import numpy as np

from ..models.linear1d import Linear1D
from . import metrics as mt
from .base import Regime, Taxonomy, check_thresholds, register_taxonomy

LABELS = ("kernel", "disalignment", "alignment", "rescaling")
SCORES = ("chi", "ntk_ratio", "ntk_change", "alignment_score", "disalignment_fraction",
          "p0_over_k")

#: Default thresholds (documented in the module docstring).
THRESHOLDS = {"kernel_tol": 0.1, "disalignment_threshold": 0.5, "alignment_threshold": 0.5}


def _thresholds(options) -> dict:
    return check_thresholds(options, THRESHOLDS, "linear1d",
                            bounded=("disalignment_threshold", "alignment_threshold"))


# ---- scalars of the closed form ----------------------------------------------------------

def _q2_unit(u, w) -> float:
    """:math:`\\lVert u\\rVert^2\\lVert w\\rVert^2 - (u\\cdot w)^2`, never negative: by
    Lagrange's identity (a sum of squares) up to width 256, else as
    :math:`\\lVert u\\rVert^2\\lVert w_\\perp\\rVert^2`."""
    u, w = np.asarray(u, float), np.asarray(w, float)
    if u.size <= 256:
        cross = np.outer(u, w) - np.outer(w, u)
        return float(np.sum(np.triu(cross, 1) ** 2))
    uu = float(u @ u)
    if uu == 0:
        return 0.0
    w_perp = w - (float(u @ w) / uu) * u  # residual form: no cancellation of two big terms
    return uu * float(w_perp @ w_perp)


def scalars(model: Linear1D) -> dict:
    r"""The exact scalars of ``model``'s path: ``p0``, ``pstar``, ``k_prime``, ``q2``,
    ``M``, ``omega`` (MATH.md §1)."""
    init = model.initial_state()
    u0, w0 = init["u"], init["w"]
    a = np.sqrt(model.eta_u / model.eta_w)
    m_plus = float(np.sum((u0 + a * w0) ** 2)) / (2 * a)
    m_minus = float(np.sum((u0 - a * w0) ** 2)) / (2 * a)
    return {"p0": float(u0 @ w0), "pstar": model.teacher / model.kappa,
            "k_prime": float(np.sqrt(m_plus * m_minus)), "q2": _q2_unit(u0, w0),
            "M": (m_plus + m_minus) / 2,
            "omega": 2 * model.kappa**2 * model.x_var * np.sqrt(model.eta_u * model.eta_w)}


# ---- vectorized labels -------------------------------------------------------------------

def measure(p0, pstar, k_prime, q2, **options):
    """Measured labels and scores from the exact scalars (arrays broadcast; no loops).

    Returns
    -------
    labels : ndarray of str
    scores : dict of str -> ndarray
    """
    th = _thresholds(options)
    p0, pstar, kp, q2 = np.broadcast_arrays(*(np.asarray(v, float) for v in (p0, pstar,
                                                                            k_prime, q2)))
    change = mt.exact_ntk_change(p0, pstar, kp)
    dfrac = mt.disalignment_fraction(p0, pstar)
    alpha = mt.alignment_score_exact(p0, pstar, q2)
    labels = np.where(alpha >= th["alignment_threshold"], "alignment", "rescaling")
    labels = np.where(dfrac >= th["disalignment_threshold"], "disalignment", labels)
    labels = np.where(change < th["kernel_tol"], "kernel", labels).astype("<U12")
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = {"chi": mt.order_parameter(pstar, kp),
                  "ntk_ratio": mt.ntk_ratio(p0, pstar, kp),
                  "ntk_change": change,
                  "alignment_score": alpha,
                  "disalignment_fraction": dfrac,
                  "p0_over_k": np.abs(p0) / kp}
    return labels, scores


def predict(p0, pstar, k_prime, q2, **options):
    """Predicted (theory) labels from the init scalars and hyperparameters (arrays)."""
    th = _thresholds(options)
    p0, pstar, kp, q2 = np.broadcast_arrays(*(np.asarray(v, float) for v in (p0, pstar,
                                                                            k_prime, q2)))
    chi_k = np.sqrt((1 + th["kernel_tol"]) ** 2 - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kern = (np.abs(pstar) < chi_k * kp) & (np.abs(p0) < chi_k * kp)
    labels = np.where(q2 > np.abs(p0 * pstar), "alignment", "rescaling")
    labels = np.where(np.abs(p0) > np.abs(pstar), "disalignment", labels)
    return np.where(kern, "kernel", labels).astype("<U12")


# ---- model and trajectory ----------------------------------------------------------------

def _accepts(obj) -> bool:
    if isinstance(obj, Linear1D):
        return True
    return getattr(obj, "meta", None) is not None and obj.meta.get("model") == "linear1d"


def model_from_params(params: dict) -> Linear1D:
    """Rebuild the :class:`Linear1D` of a trajectory's ``meta["params"]``."""
    params = dict(params)
    if "u0" in params:
        return Linear1D.from_init(params.pop("u0"), params.pop("w0"),
                                  **{k: params[k] for k in ("kappa", "eta_u", "eta_w",
                                                            "teacher", "x_var")})
    return Linear1D(**params)


def classify_linear1d(obj, **options) -> Regime:
    """Classify a :class:`Linear1D` (exact) or a trajectory of one (sampled)."""
    th = _thresholds(options)
    model = obj if isinstance(obj, Linear1D) else model_from_params(obj.meta["params"])
    s = scalars(model)
    predicted = str(predict(s["p0"], s["pstar"], s["k_prime"], s["q2"], **options))
    if isinstance(obj, Linear1D):
        label, sc = measure(s["p0"], s["pstar"], s["k_prime"], s["q2"], **options)
        label = str(label)
        ev = {k: float(v) for k, v in sc.items()}
        ev["ntk_dip"] = float(mt.ntk_dip_ratio(s["p0"], s["pstar"], s["k_prime"]))
        ev["source"] = "exact"
    else:
        traj = obj.as_float() if obj.precision is not None else obj
        if len(traj.t) < 2:
            raise ValueError("a trajectory needs at least 2 times to be classified; "
                             f"got {len(traj.t)}")
        p = np.asarray(traj["end_to_end"], float) / model.kappa
        ntk = np.asarray(traj["ntk"], float)
        zeta = np.asarray(traj["alignment"], float)
        change = float(mt.relative_ntk_change(ntk))
        dfrac = float(mt.sampled_disalignment_fraction(p))
        alpha = float(mt.alignment_score(p, zeta))
        if change < th["kernel_tol"]:
            label = "kernel"
        elif dfrac >= th["disalignment_threshold"]:
            label = "disalignment"
        elif np.isnan(alpha):
            label = "disalignment" if dfrac > 0 else "kernel"
        else:
            label = "alignment" if alpha >= th["alignment_threshold"] else "rescaling"
        ev = {"ntk_change": change, "ntk_ratio": float(ntk[-1] / ntk[0]),
              "ntk_dip": float(np.min(ntk) / ntk[0]), "alignment_score": alpha,
              "disalignment_fraction": dfrac,
              "chi": float(mt.order_parameter(s["pstar"], s["k_prime"])),
              "p0_over_k": abs(s["p0"]) / s["k_prime"] if s["k_prime"] else float("inf"),
              "t_end": float(traj.t[-1]), "source": "trajectory"}
    ev.update(sign_flip=bool(mt.sign_flip(s["p0"], s["pstar"])),
              overshoot=bool(mt.overshoot(s["p0"], s["pstar"])),
              p0=s["p0"], pstar=s["pstar"], k_prime=s["k_prime"], q2=s["q2"], **th)
    return Regime(label=label, taxonomy="linear1d", evidence=ev, predicted=predicted)


# ---- grid (vectorized phase diagrams) ----------------------------------------------------

GRID_PARAMS = ("width", "seed", "kappa", "eta_u", "eta_w", "sigma_u", "sigma_w", "teacher",
               "x_var")


def _unit_stats(width: int, seed):
    rng = np.random.default_rng(seed)
    u = rng.normal(0.0, 1.0, width)
    w = rng.normal(0.0, 1.0, width)
    return float(u @ u), float(w @ w), float(u @ w), _q2_unit(u, w)


def grid_linear1d(values: dict, base: Linear1D | None = None, **options):
    r"""Measured and predicted labels and scores on a grid, all cells at once.

    ``values`` maps hyperparameter names to arrays of one shape (the grid). The init of a
    cell is the unit draw of its ``(width, seed)`` scaled by its ``sigma_u``, ``sigma_w``
    (exactly what :meth:`Linear1D.initial_state` does), so the only loop is over the
    distinct ``(width, seed)`` pairs; every closed-form scalar is an array expression:

    .. math:: M \pm p_0 = \frac{\sigma_u^2 A \pm 2a\sigma_u\sigma_w P + a^2\sigma_w^2 B}{2a},
              \quad Q_2 = \sigma_u^2\sigma_w^2 (AB - P^2),

    with :math:`A = \lVert\hat u\rVert^2`, :math:`B = \lVert\hat w\rVert^2`,
    :math:`P = \hat u\cdot\hat w`, :math:`a = \sqrt{\eta_u/\eta_w}`.
    ``base`` with an explicit init uses that init as the draw (then ``sigma_*``,
    ``width`` and ``seed`` must not vary).
    """
    shape = np.broadcast(*values.values()).shape
    v = {k: np.broadcast_to(np.asarray(x), shape) for k, x in values.items()}
    sig_u = v["sigma_u"].astype(float)
    sig_w = v["sigma_w"].astype(float)
    A = np.empty(shape)
    B = np.empty(shape)
    P = np.empty(shape)
    Q = np.empty(shape)
    if base is not None and base.explicit_init:
        init = base.initial_state()
        A[...], B[...] = init["u"] @ init["u"], init["w"] @ init["w"]
        P[...], Q[...] = init["u"] @ init["w"], _q2_unit(init["u"], init["w"])
        sig_u = np.ones(shape)
        sig_w = np.ones(shape)
    else:
        pairs = np.stack([v["width"].astype(np.int64).ravel(),
                          np.asarray(v["seed"], dtype=np.int64).ravel()], axis=1)
        uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
        stats = np.array([_unit_stats(int(wd), int(sd)) for wd, sd in uniq])
        inverse = np.asarray(inverse).ravel()
        A, B, P, Q = (stats[inverse, i].reshape(shape) for i in range(4))
    a = np.sqrt(v["eta_u"] / v["eta_w"])
    uu, ww, uw = sig_u**2 * A, a * a * sig_w**2 * B, 2 * a * sig_u * sig_w * P
    m_plus = np.maximum(uu + uw + ww, 0) / (2 * a)
    m_minus = np.maximum(uu - uw + ww, 0) / (2 * a)
    p0 = sig_u * sig_w * P
    q2 = sig_u**2 * sig_w**2 * Q
    kp = np.sqrt(m_plus * m_minus)
    pstar = v["teacher"] / v["kappa"]
    labels, scores = measure(p0, pstar, kp, q2, **options)
    predicted = predict(p0, pstar, kp, q2, **options)
    omega = 2 * v["kappa"] ** 2 * v["x_var"] * np.sqrt(v["eta_u"] * v["eta_w"])
    scores["K0"] = omega * (m_plus + m_minus) / 2
    scores["K_inf"] = omega * np.hypot(pstar, kp)
    return labels, predicted, scores


LINEAR1D = register_taxonomy(Taxonomy(
    name="linear1d", labels=LABELS, accepts=_accepts, classify=classify_linear1d,
    grid=grid_linear1d, scores=SCORES + ("K0", "K_inf")), replace=True)
