r"""Regimes of the 1-D linear network (MATH.md §1): kernel, alignment, disalignment, rescaling.

Xu & Ziyin, "Three mechanisms of feature learning in a linear network" (arXiv:2401.07085;
v1 "When does feature learning happen? Perspective from an analytically solvable model";
ICLR 2025). What could be read of the paper, and where (see ``docs/papers/xu_ziyin.md``):

* Kernel regime, §1 (v3): "We say that a model is in the kernel regime if the NTK of the
  model remains unchanged throughout training, and the learning dynamics is linear in the
  model parameters. When the learning dynamics is not linear, we say that the model is in
  the feature learning regime."
* The NTK, §1 (v1, Eq. 1): :math:`K(x, x') = \nabla_\theta f(x)\cdot\nabla_\theta f(x')`,
  the *plain* kernel (no learning rates), which "does not change throughout training" in
  the kernel regime.
* The mechanisms, abstract: "(1) learning by alignment, (2) learning by disalignment, and
  (3) learning by rescaling", which "contrast starkly with the dynamics observed in the
  kernel regime".
* Fig. 1 caption (v3): "The evolution of ζ of two-layer networks with different settings.
  Specifically, we test linear, ReLU, sigmoid, swish, and leaky ReLU activations for both
  alignment (upper) and disalignment (lower) cases. For the linear network, we show the
  theoretical predictions obtained from (14) as lines and experimental results as points."

The sections that define the mechanisms quantitatively (and Eq. 14) could not be read: the
stored full texts stop at the introduction. The criteria below read the mechanisms
*through the path of* :math:`\zeta = u\cdot w/(\lVert u\rVert\lVert w\rVert)`, as Fig. 1
shows them; the tolerances are ours (named options).

With :math:`p = u\cdot w`, target :math:`p^* = c/\kappa`, the conserved
:math:`Q_2 = \lVert u\rVert^2\lVert w\rVert^2 - p^2` and the teacher sign
:math:`s = \operatorname{sign}(c)`, :math:`s\zeta` moves monotonically from
:math:`s\zeta_0` to :math:`s\zeta_\infty = |p^*|/\sqrt{p^{*2}+Q_2}`
(:func:`~exactdyn.regimes.metrics.zeta_path`). The label is, in this order:

1. ``"kernel"`` if the NTK stays (nearly) unchanged: its exact sup relative change along
   the path is below ``kernel_tol`` (default 0.1). Which NTK is option ``ntk``:
   ``"plain"`` (default, the paper's Eq. 1: :math:`\kappa^2\Sigma_{xx}(\lVert u\rVert^2 +
   \lVert w\rVert^2)`) or ``"weighted"`` (ours, MATH.md's convention:
   :math:`\kappa^2\Sigma_{xx}(\eta_u\lVert w\rVert^2 + \eta_w\lVert u\rVert^2)`, the kernel
   of :math:`\dot f = -K\,r`). With equal rates the two are proportional; with unequal rates
   they can disagree, and the evidence then says so (``ntk_disagree``, ``kernel_note``).
2. ``"disalignment"`` if :math:`|\zeta|` falls by at least ``zeta_tol`` (default 0.1)
   somewhere on the path (``zeta_fall``). A sign flip of :math:`p` (:math:`\zeta` passes
   through 0 towards the teacher's sign) is disalignment followed by alignment: the label
   is the first part, ``mechanisms`` lists both, ``zeta_fall`` and ``zeta_rise`` give
   both sizes. The label does not depend on which part is larger, so it does not jump
   at :math:`|c| = |\kappa p_0|`.
3. ``"alignment"`` if :math:`s\zeta` rises by at least ``zeta_tol`` (``zeta_rise``).
4. ``"rescaling"`` otherwise: :math:`\zeta` stays within ``zeta_tol`` of its start while
   the NTK, hence :math:`\lVert u\rVert\lVert w\rVert = \sqrt{p^2 + Q_2}`, changes
   (``norm_ratio``).

The *predicted* label is the theory: the same criteria evaluated from the exact solution's
scalars (:math:`p_0`, :math:`p^*`, :math:`k'`, :math:`Q_1`, :math:`Q_2`; the path's ends and
its NTK extremes, no integration). The *measured* label reads the samples of a trajectory:
``classify(model)`` samples the closed-form trajectory to convergence (the time :math:`p`
crosses 0 included), ``classify(trajectory)`` reads the given samples. They agree on a
converged trajectory; where they do not, ``evidence["disagreement"]`` says why (a path
stopped early, a sampled NTK sup below the exact one).

Scores of ours kept as evidence: the order parameter :math:`\chi = |p^*|/k'` (MATH.md §1)
and the growth share :math:`\alpha = \Delta\ln|\zeta|/\Delta\ln|p|` (``alignment_score``,
the project's earlier criterion, which falls with the init scale and no longer labels).
"""

from __future__ import annotations

import numpy as np

from ..models.linear1d import Linear1D
from . import metrics as mt
from .base import Regime, Taxonomy, check_thresholds, register_taxonomy

LABELS = ("kernel", "disalignment", "alignment", "rescaling")
SCORES = ("chi", "ntk_ratio", "ntk_change", "ntk_change_plain", "ntk_change_weighted",
          "zeta0", "zeta_inf", "zeta_fall", "zeta_rise", "norm_ratio", "alignment_score",
          "p0_over_k")

#: Default thresholds (documented in the module docstring; the values are ours).
THRESHOLDS = {"kernel_tol": 0.1, "zeta_tol": 0.1}
#: Which NTK decides "kernel": the paper's plain one (default) or the rate-weighted one.
NTK_CHOICES = ("plain", "weighted")

_NTK_WHY = {
    "plain": "plain NTK grad f . grad f (Xu & Ziyin v1, Eq. 1)",
    "weighted": "rate-weighted NTK sum_l eta_l |d f/d theta_l|^2 (ours, MATH.md: the kernel "
                "of df/dt)",
}


def _thresholds(options) -> tuple[dict, str]:
    options = dict(options)
    ntk = options.pop("ntk", "plain")
    if ntk not in NTK_CHOICES:
        raise ValueError(f"ntk must be one of {', '.join(NTK_CHOICES)}, got {ntk!r}")
    return check_thresholds(options, THRESHOLDS, "linear1d", bounded=("zeta_tol",)), ntk


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
    r"""The exact scalars of ``model``'s path: ``p0``, ``pstar``, ``k_prime``, ``q1``,
    ``q2``, ``M``, ``omega``, ``eta_u``, ``eta_w`` (MATH.md §1)."""
    init = model.initial_state()
    u0, w0 = init["u"], init["w"]
    a = np.sqrt(model.eta_u / model.eta_w)
    m_plus = float(np.sum((u0 + a * w0) ** 2)) / (2 * a)
    m_minus = float(np.sum((u0 - a * w0) ** 2)) / (2 * a)
    return {"p0": float(u0 @ w0), "pstar": model.teacher / model.kappa,
            "k_prime": float(np.sqrt(m_plus * m_minus)), "q2": _q2_unit(u0, w0),
            "q1": float(u0 @ u0) / model.eta_u - float(w0 @ w0) / model.eta_w,
            "M": (m_plus + m_minus) / 2, "eta_u": model.eta_u, "eta_w": model.eta_w,
            "omega": 2 * model.kappa**2 * model.x_var * np.sqrt(model.eta_u * model.eta_w)}


# ---- labels from the parts of the path ---------------------------------------------------

def _label(change, fall, rise, kernel_tol, zeta_tol):
    """The label rule of the module docstring, vectorized."""
    labels = np.where(rise >= zeta_tol, "alignment", "rescaling")
    labels = np.where(fall >= zeta_tol, "disalignment", labels)
    return np.where(change < kernel_tol, "kernel", labels).astype("<U12")


def mechanisms(label, fall, rise, zeta_tol) -> str:
    """The sequence of mechanisms on the path, e.g. ``"disalignment, then alignment"``."""
    if label == "kernel":
        return "kernel"
    if label == "disalignment" and rise >= zeta_tol:
        return "disalignment, then alignment"
    return str(label)


def _exact_scores(p0, pstar, kp, q1, q2, eta_u, eta_w):
    with np.errstate(divide="ignore", invalid="ignore"):
        path = mt.zeta_path(p0, pstar, q2, kp)
        weighted = mt.exact_ntk_change(p0, pstar, kp)
        plain = mt.plain_ntk_change(p0, pstar, kp, q1, eta_u, eta_w)
        return {"chi": mt.order_parameter(pstar, kp),
                "ntk_ratio": mt.ntk_ratio(p0, pstar, kp),
                "ntk_change_plain": plain, "ntk_change_weighted": weighted,
                "zeta0": path["zeta0"], "zeta_inf": path["zeta_inf"],
                "zeta_fall": path["fall"], "zeta_rise": path["rise"],
                "norm_ratio": mt.norm_product_ratio(p0, pstar, q2, kp),
                "alignment_score": mt.alignment_score_exact(p0, pstar, q2),
                "p0_over_k": np.abs(p0) / kp}


def measure(p0, pstar, k_prime, q2, q1=0.0, eta_u=1.0, eta_w=1.0, **options):
    """Labels and scores from the exact scalars (arrays broadcast; no loops): the theory.

    ``q1``, ``eta_u``, ``eta_w`` enter the plain NTK only (with equal rates it does not
    depend on them).

    Returns
    -------
    labels : ndarray of str
    scores : dict of str -> ndarray
    """
    th, ntk = _thresholds(options)
    arrs = np.broadcast_arrays(*(np.asarray(v, float) for v in (p0, pstar, k_prime, q1, q2,
                                                                eta_u, eta_w)))
    sc = _exact_scores(*arrs)
    sc["ntk_change"] = sc[f"ntk_change_{ntk}"]
    labels = _label(sc["ntk_change"], sc["zeta_fall"], sc["zeta_rise"], th["kernel_tol"],
                    th["zeta_tol"])
    return labels, sc


def predict(p0, pstar, k_prime, q2, q1=0.0, eta_u=1.0, eta_w=1.0, **options):
    """Predicted (theory) labels from the init scalars and hyperparameters (arrays)."""
    return measure(p0, pstar, k_prime, q2, q1, eta_u, eta_w, **options)[0]


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


def convergence_times(model: Linear1D, n: int = 400) -> np.ndarray:
    r"""Times that sample ``model``'s closed-form path to convergence: 0, ``n`` geometric
    times up to :math:`t_{\rm end} = (\ln\max(|R_0|, 1) + 45)/K_\infty` (then
    :math:`|R(t)| \le e^{-45}`, MATH.md §1), and the time :math:`p` crosses 0 on a sign
    flip, :math:`t_0 = K_\infty^{-1}\ln[R_0(1 - z_-)/(1 - z_+)]`. Empty if the path has no
    time scale (:math:`k' = 0` or :math:`K_\infty = 0`)."""
    s = scalars(model)
    p0, ps, kp = s["p0"], s["pstar"], s["k_prime"]
    k_inf = s["omega"] * np.hypot(ps, kp)
    if not (kp > 0 and np.isfinite(k_inf) and k_inf > 0):
        return np.empty(0)
    z = lambda q: (q + np.hypot(q, kp)) / kp  # noqa: E731
    zp, zm, z0 = z(ps), (ps - np.hypot(ps, kp)) / kp, z(p0)
    r0 = (z0 - zp) / (z0 - zm)
    t_end = (np.log(max(abs(r0), 1.0)) + 45.0) / k_inf
    times = [0.0, *np.geomspace(t_end * 1e-9, t_end, n)]
    if p0 * ps < 0:
        times.append(np.log(r0 * (1 - zm) / (1 - zp)) / k_inf)
    times = np.unique(np.asarray(times, float))
    return times[np.isfinite(times) & (times >= 0)]


def _ratio(a, b) -> float:
    """a/b, NaN where b = 0 (undefined: a zero readout or input weight at t = 0)."""
    return float(a / b) if b != 0 else float("nan")


def _sampled(traj, model, s, th, ntk):
    """Measured label and scores from the samples of a trajectory."""
    traj = traj.as_float() if traj.precision is not None else traj
    if len(traj.t) < 2:
        raise ValueError("a trajectory needs at least 2 times to be classified; "
                         f"got {len(traj.t)}")
    p = np.asarray(traj["end_to_end"], float) / model.kappa
    zeta = np.asarray(traj["alignment"], float)
    nu, nw = np.asarray(traj["norm_u"], float), np.asarray(traj["norm_w"], float)
    weighted = np.asarray(traj["ntk"], float)
    plain = model.kappa**2 * model.x_var * (nu**2 + nw**2)
    sign = float(mt.teacher_sign(s["p0"], s["pstar"]))
    fall, rise = (float(v) for v in mt.sampled_zeta_parts(zeta, sign))
    change = {"plain": float(mt.relative_ntk_change(plain)),
              "weighted": float(mt.relative_ntk_change(weighted))}
    label = str(_label(change[ntk], fall, rise, th["kernel_tol"], th["zeta_tol"]))
    ev = {"ntk_change": change[ntk], "ntk_change_plain": change["plain"],
          "ntk_change_weighted": change["weighted"],
          "ntk_ratio": float(weighted[-1] / weighted[0]),
          "ntk_dip": float(np.min(weighted) / weighted[0]),
          "zeta0": float(zeta[0]), "zeta_end": float(zeta[-1]),
          "zeta_fall": fall, "zeta_rise": rise,
          "norm_ratio": _ratio(nu[-1] * nw[-1], nu[0] * nw[0]),
          "alignment_score": float(mt.alignment_score(p, zeta)),
          "t_end": float(traj.t[-1]),
          "path_done": float((p[-1] - p[0]) / (s["pstar"] - s["p0"]))
          if s["pstar"] != s["p0"] else 1.0}
    return label, ev


def _disagreement(label, predicted, ev, exact, th, ntk) -> str:
    """Why the measured label differs from the theory's ('' when they agree)."""
    if label == predicted:
        return ""
    why = []
    done = ev.get("path_done", 1.0)
    if abs(done - 1) > 1e-3:
        why.append(f"the trajectory stops at t = {ev['t_end']:.4g}, {100 * done:.1f}% of "
                   "the way from p0 to p*")
    if ev["ntk_change"] < th["kernel_tol"] <= exact["ntk_change"]:
        why.append(f"the sampled sup of the {ntk} NTK change ({ev['ntk_change']:.4g}) misses "
                   f"the exact one ({exact['ntk_change']:.4g}) between samples")
    for part in ("zeta_fall", "zeta_rise"):
        if (ev[part] >= th["zeta_tol"]) != (exact[part] >= th["zeta_tol"]):
            why.append(f"{part} sampled {ev[part]:.4g}, exact {exact[part]:.4g}")
    return "; ".join(why) or "measured and exact scores straddle a threshold"


def classify_linear1d(obj, **options) -> Regime:
    """Classify a :class:`Linear1D` (its closed-form trajectory, sampled to convergence) or
    a trajectory of one (its samples); the prediction is the exact theory."""
    from ..closed_form import exact as _exact  # closed_form sits below regimes

    th, ntk = _thresholds(options)
    model = obj if isinstance(obj, Linear1D) else model_from_params(obj.meta["params"])
    s = scalars(model)
    pred_label, pred = measure(s["p0"], s["pstar"], s["k_prime"], s["q2"], s["q1"],
                               s["eta_u"], s["eta_w"], **options)
    predicted = str(pred_label)
    exact_ev = {k: float(v) for k, v in pred.items()}
    if isinstance(obj, Linear1D):
        times = convergence_times(model)
        if times.size:
            label, ev = _sampled(_exact(model, times), model, s, th, ntk)
            ev["source"] = "closed-form trajectory"
        else:  # no time scale (stuck at the saddle): the exact ends are the measurement
            label, ev = predicted, dict(exact_ev, source="exact")
            ev["zeta_end"] = ev.pop("zeta_inf")
    else:
        label, ev = _sampled(obj, model, s, th, ntk)
        ev["source"] = "trajectory"
    ev.update(chi=exact_ev["chi"], p0_over_k=exact_ev["p0_over_k"],
              zeta_inf=exact_ev["zeta_inf"],
              exact_ntk_change=exact_ev["ntk_change"],
              ntk_dip_exact=float(mt.ntk_dip_ratio(s["p0"], s["pstar"], s["k_prime"])),
              sign_flip=bool(mt.sign_flip(s["p0"], s["pstar"])),
              stuck_at_saddle=bool(s["k_prime"] == 0 and (s["p0"] == 0 or
                                                        s["p0"] * s["pstar"] < 0)),
              overshoot=bool(mt.overshoot(s["p0"], s["pstar"])),
              p0=s["p0"], pstar=s["pstar"], k_prime=s["k_prime"], q1=s["q1"], q2=s["q2"],
              mechanisms=mechanisms(label, ev["zeta_fall"], ev["zeta_rise"], th["zeta_tol"]),
              kernel_ntk=ntk, **th)
    ev["ntk_disagree"] = bool((ev["ntk_change_plain"] < th["kernel_tol"])
                              != (ev["ntk_change_weighted"] < th["kernel_tol"]))
    other = "weighted" if ntk == "plain" else "plain"
    ev["kernel_note"] = (
        f"kernel test on the {_NTK_WHY[ntk]}: sup change {ev['ntk_change']:.3g} "
        f"{'<' if ev['ntk_change'] < th['kernel_tol'] else '>='} kernel_tol "
        f"{th['kernel_tol']:g}" + (
            f"; the {other} NTK moves {ev[f'ntk_change_{other}']:.3g} and would say "
            f"{'kernel' if ev[f'ntk_change_{other}'] < th['kernel_tol'] else 'not kernel'} "
            f"(eta_u = {model.eta_u:g} != eta_w = {model.eta_w:g})"
            if ev["ntk_disagree"] else ""))
    ev["disagreement"] = _disagreement(label, predicted, ev, exact_ev, th, ntk)
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
    if values.get("seed", 0) is None and not (base is not None and base.explicit_init):
        raise ValueError("the vectorized Linear1D diagram needs an integer seed (the unit "
                         "draw of each width); got seed = None")
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
    q1 = sig_u**2 * A / v["eta_u"] - sig_w**2 * B / v["eta_w"]
    uu, ww, uw = sig_u**2 * A, a * a * sig_w**2 * B, 2 * a * sig_u * sig_w * P
    m_plus = np.maximum(uu + uw + ww, 0) / (2 * a)
    m_minus = np.maximum(uu - uw + ww, 0) / (2 * a)
    p0 = sig_u * sig_w * P
    q2 = sig_u**2 * sig_w**2 * Q
    kp = np.sqrt(m_plus * m_minus)
    pstar = v["teacher"] / v["kappa"]
    labels, scores = measure(p0, pstar, kp, q2, q1, v["eta_u"], v["eta_w"], **options)
    # Vectorized, the measured label is the exact path's: the theory's, by construction
    # (method="trajectory" measures sampled closed-form trajectories instead).
    predicted = labels.copy()
    omega = 2 * v["kappa"] ** 2 * v["x_var"] * np.sqrt(v["eta_u"] * v["eta_w"])
    scores["K0"] = omega * (m_plus + m_minus) / 2
    scores["K_inf"] = omega * np.hypot(pstar, kp)
    return labels, predicted, scores


class ExplicitInitCells:
    """The cells of a diagram over the hyperparameters of a Linear1D with an explicit
    init: ``Linear1D.from_init(u0, w0, **params)``, the same init in every cell."""

    explicit_init = True
    #: Hyperparameters that set a random init, so not swept here.
    RANDOM_INIT = ("width", "seed", "sigma_u", "sigma_w")

    def __init__(self, model: Linear1D):
        self.model = model
        self.name = model.name

    def initial_state(self) -> dict:
        return self.model.initial_state()

    def with_values(self, **params) -> Linear1D:
        init = self.model.initial_state()
        kw = {k: v for k, v in params.items() if k not in self.RANDOM_INIT}
        return Linear1D.from_init(init["u"], init["w"], **kw)


def diagram_family(model, fixed: dict, axes: tuple):
    """Linear1D diagrams (class: defaults for unlisted hyperparameters; instance: its
    values, and its explicit init if it has one); ``None`` for other models."""
    if not (model is Linear1D or isinstance(model, Linear1D)):
        return None
    base = model if isinstance(model, Linear1D) else Linear1D()
    defaults = {k: getattr(base, k) for k in GRID_PARAMS}
    if base.explicit_init:
        params = tuple(k for k in GRID_PARAMS if k not in ExplicitInitCells.RANDOM_INIT)
        return Linear1D, ExplicitInitCells(base), params, defaults
    return Linear1D, (base if isinstance(model, Linear1D) else None), GRID_PARAMS, defaults


def diagram_times(model: Linear1D, t=None) -> np.ndarray:
    """Output times of a per-cell trajectory: ``t`` if given, else the times that sample
    the path to convergence (:func:`convergence_times`: 200 geometric times up to
    |R(t)| <= e^-45, and the time p crosses 0 on a sign flip), or, where the path has no
    such time scale, 0 and 200 geometric times from 1e-3/K∞ to 50/K∞."""
    if t is not None:
        return np.asarray(t, dtype=float)
    times = convergence_times(model, 200)
    if times.size:
        return times
    s = scalars(model)
    k_inf = s["omega"] * np.hypot(s["pstar"], s["k_prime"])
    if not np.isfinite(k_inf) or k_inf <= 0:
        raise ValueError(f"K_inf = {k_inf!r}: no relaxation time scale; give t explicitly")
    return np.concatenate([[0.0], np.geomspace(1e-3, 50.0, 200) / k_inf])


def diagram_cell(model: Linear1D, t=None, **options) -> Regime:
    """One cell of the per-cell path: the closed-form trajectory at :func:`diagram_times`,
    classified from its samples."""
    from ..closed_form import exact

    return classify_linear1d(exact(model, diagram_times(model, t)), **options)


LINEAR1D = register_taxonomy(Taxonomy(
    name="linear1d", labels=LABELS, accepts=_accepts, classify=classify_linear1d,
    grid=grid_linear1d, scores=SCORES + ("K0", "K_inf"), diagram=diagram_family,
    diagram_cell=diagram_cell), replace=True)
