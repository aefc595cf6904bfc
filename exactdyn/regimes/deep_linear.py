r"""Regimes of deep linear networks (MATH.md §3): ``"ntk"`` / ``"saddle-to-saddle"`` /
``"intermediate"``.

Jacot, Ged, Şimşek, Hongler, Gabriel, "Saddle-to-Saddle Dynamics in Deep Linear Networks:
Small Initialization Training, Symmetry, and Sparsity" (arXiv:2106.15933). Read: the
abstract (arXiv, sciencestack.ai, researchtrend.ai); the body could not be read (see
``docs/papers/jacot.md``). The abstract:

    "For DLNs of width :math:`w`, we show a phase transition w.r.t. the scaling
    :math:`\gamma` of the variance :math:`\sigma^2 = w^{-\gamma}` as :math:`w\to\infty`: for
    large variance (:math:`\gamma < 1`), :math:`\theta_0` is very close to a global minimum
    but far from any saddle point, and for small variance (:math:`\gamma > 1`),
    :math:`\theta_0` is close to a saddle point and far from any global minimum. While the
    first case corresponds to the well-studied NTK regime, the second case is less
    understood. This motivates the study of the case :math:`\gamma\to+\infty`, where we
    conjecture a Saddle-to-Saddle dynamics: throughout training, gradient descent visits
    the neighborhoods of a sequence of saddles, each corresponding to linear maps of
    increasing rank, until reaching a sparse global minimum."

*Measured* (from a trajectory, or from the model's solved trajectory over the horizon of
:func:`horizon`), in this order:

1. ``"ntk"``: the NTK regime, the kernel stays put: the relative NTK movement
   :math:`m = \sup_t\lVert\Theta(t) - \Theta(0)\rVert_F/\lVert\Theta(0)\rVert_F`
   (:func:`~exactdyn.analysis.ntk_movement`) is below ``kernel_tol`` (default 0.1).
   The evidence also reports the paper's picture directly: ``param_movement``
   :math:`= \lVert\theta_T - \theta_0\rVert/\lVert\theta_0\rVert`, the distance to the
   global minimum reached relative to the distance to the saddle at 0 (small when
   :math:`\theta_0` is "very close to a global minimum but far from any saddle point").
2. ``"saddle-to-saddle"``: the path "visits the neighborhoods of a sequence of saddles,
   each corresponding to linear maps of increasing rank": at least ``min_plateaus``
   (default 1, ours) loss plateaus at saddle levels
   :math:`L_k = \tfrac12\sum_{\beta>k}s_\beta^2 > 0` are found
   (:func:`~exactdyn.analysis.analyze_saddles`), and the rank of :math:`A` only ever grows
   by one (``stepwise``).
3. ``"intermediate"`` otherwise: the NTK moves but no sequence of saddles is resolved —
   the finite-:math:`\gamma > 1` case the abstract calls "less understood".

*Predicted* (hyperparameters alone): :math:`\gamma < 1` ntk; :math:`\gamma > 1`
saddle-to-saddle, the paper's conjecture (stated for :math:`\gamma\to+\infty`; applying it
at every :math:`\gamma \ge 1` is ours, so where a finite :math:`\gamma` shows no plateau the
measured ``intermediate`` disagrees, and ``evidence["disagreement"]`` says so). When the init
scale is given directly (``sigma=`` or explicit weights: :math:`\sigma` is then the RMS
entry of the layers, geometric mean over layers) the effective exponent is
:math:`\gamma = -2\ln\sigma/\ln w`, i.e. ntk iff :math:`\sigma^2 w > 1`; at width 1 that is
:math:`\sigma > 1`.
"""

from __future__ import annotations

import numpy as np

from ..analysis import analyze_saddles, ntk_movement
from ..models.deep_linear import DeepLinear
from .base import Regime, Taxonomy, check_thresholds, register_taxonomy

LABELS = ("ntk", "saddle-to-saddle", "intermediate")
SCORES = ("ntk_movement", "plateau_count", "gamma", "param_movement")
THRESHOLDS = {"kernel_tol": 0.1, "min_plateaus": 1}


def _thresholds(options) -> dict:
    th = check_thresholds(options, THRESHOLDS, "deep_linear", bounded=())
    if th["min_plateaus"] != int(th["min_plateaus"]):
        raise ValueError(f"min_plateaus must be a positive integer, got {th['min_plateaus']!r}")
    th["min_plateaus"] = int(th["min_plateaus"])
    return th


def parameter_movement(traj) -> float:
    r""":math:`\lVert\theta_T - \theta_0\rVert/\lVert\theta_0\rVert` over all layers
    ``W1 .. WL`` of a trajectory (``inf`` when :math:`\theta_0 = 0`)."""
    names = sorted((k for k in traj.state if k.startswith("W") and k[1:].isdigit()),
                   key=lambda k: int(k[1:]))
    if not names:
        raise ValueError("trajectory must carry the layers W1 .. WL; it has "
                         f"{sorted(traj.state)}")
    d2 = sum(float(np.sum((np.asarray(traj.state[k][-1], float)
                           - np.asarray(traj.state[k][0], float)) ** 2)) for k in names)
    n2 = sum(float(np.sum(np.asarray(traj.state[k][0], float) ** 2)) for k in names)
    return float(np.sqrt(d2 / n2)) if n2 > 0 else float("inf")


def plateau_count(saddles) -> int:
    r"""Number of saddle plateaus: plateaus of a
    :class:`~exactdyn.analysis.SaddleAnalysis` whose predicted level
    :math:`\tfrac12\sum_{\beta>k}s_\beta^2` is positive (the final minimum is not a saddle).
    ``saddles`` may also be a trajectory (then :func:`analyze_saddles` runs on it)."""
    if not hasattr(saddles, "plateaus"):
        saddles = analyze_saddles(saddles)
    return int(sum(1 for p in saddles.plateaus if p.predicted_loss > 0))


def effective_sigma(model: DeepLinear) -> float:
    """The init scale: ``sigma`` / :math:`w^{-\\gamma/2}`, or for an explicit init the
    geometric mean over layers of the RMS entry."""
    if not model.explicit_init:
        return model.init_std
    rms = [float(np.sqrt(np.mean(np.asarray(w, float) ** 2))) for w in model._init]
    if min(rms) == 0:
        return 0.0
    return float(np.exp(np.mean(np.log(rms))))


def effective_gamma(sigma: float, width: int) -> float:
    r""":math:`\gamma = -2\ln\sigma/\ln w` (``nan`` at width 1; ``inf`` at :math:`\sigma=0`)."""
    if width <= 1:
        return float("nan")
    if sigma <= 0:
        return float("inf")
    return float(-2 * np.log(sigma) / np.log(width))


def predict(model: DeepLinear) -> str:
    """``"ntk"`` if :math:`\\gamma < 1` (i.e. :math:`\\sigma^2 w > 1`), else
    ``"saddle-to-saddle"``."""
    if model.explicit_init or model.sigma is not None:
        sig = effective_sigma(model)
        return "ntk" if sig * sig * model.width > 1 else "saddle-to-saddle"
    return "ntk" if model.gamma < 1 else "saddle-to-saddle"


def horizon(model: DeepLinear) -> float:
    r"""A time by which training has passed every saddle and converged: twice the escape
    time of the weakest teacher mode from the init's end-to-end scale :math:`u_0` (each mode
    :math:`\dot u \approx L s u^{2-2/L}`: :math:`\ln(s/u_0)/(2s)` at depth 2,
    :math:`u_0^{-(L-2)/L}/((L-2)s)` at depth :math:`L \ge 3`) plus ten relaxation times
    :math:`1/(L s^{2-2/L})`."""
    s = model.teacher_singular_values()
    s = s[s > 1e-12 * max(s.max(initial=0.0), 1e-300)]
    if s.size == 0:
        return 10.0
    L = model.depth
    st = model.initial_state()
    A = st[f"W{L}"]
    for l in range(L - 1, 0, -1):
        A = A @ st[f"W{l}"]
    sv = np.linalg.svd(A, compute_uv=False)
    u0 = max(float(sv.min()) if sv.size else 0.0, 1e-12 * float(s.min()), 1e-300)
    smin = float(s.min())
    if u0 >= smin:
        esc = 0.0
    elif L == 2:
        esc = np.log(smin / u0) / (2 * smin)
    else:
        esc = u0 ** (-(L - 2) / L) / ((L - 2) * smin)
    return float(2 * esc + 10 / (L * smin ** (2 - 2 / L)))


def classify_deep_linear(obj, **options) -> Regime:
    """Classify a :class:`~exactdyn.DeepLinear` (solved over :func:`horizon` at 400 evenly
    spaced times) or a trajectory of one (from its samples)."""
    th = _thresholds(options)
    if isinstance(obj, DeepLinear):
        from ..solve import solve

        model = obj
        T = horizon(model)
        traj = solve(model, np.linspace(0.0, T, 401), rtol=1e-9)
        source = "solve"
    else:
        traj = obj.as_float() if obj.precision is not None else obj
        model = None
        source = "trajectory"
    if len(traj.t) < 2:
        raise ValueError("a trajectory needs at least 2 times to be classified; "
                         f"got {len(traj.t)}")
    mv = ntk_movement(traj)
    sad = analyze_saddles(traj)
    movement = float(np.max(mv))
    inc = sad.rank_increments
    plateaus = plateau_count(sad)
    stepwise = bool(len(inc) > 0 and all(d == 1 for d in inc))
    if movement < th["kernel_tol"]:
        label = "ntk"
    elif plateaus >= th["min_plateaus"] and stepwise:
        label = "saddle-to-saddle"
    else:
        label = "intermediate"
    params = traj.meta.get("params", {})
    if model is not None:
        width, sigma = model.width, effective_sigma(model)
        gamma = model.gamma if not (model.explicit_init or model.sigma is not None) \
            else effective_gamma(sigma, width)
        predicted = predict(model)
    else:
        width = int(params.get("width", 0))
        if "weights" in params:
            rms = [float(np.sqrt(np.mean(np.asarray(w, float) ** 2)))
                   for w in params["weights"]]
            sigma = float(np.exp(np.mean(np.log(rms)))) if min(rms) > 0 else 0.0
        else:
            sigma = float(params.get("sigma", np.nan))
        gamma = float(params["gamma"]) if "gamma" in params and "weights" not in params \
            else effective_gamma(sigma, width)
        if "gamma" in params and "weights" not in params and \
                np.isclose(sigma, width ** (-gamma / 2)):
            predicted = "ntk" if gamma < 1 else "saddle-to-saddle"
        elif np.isfinite(sigma) and width >= 1:
            if "gamma" in params and "weights" not in params:
                gamma = effective_gamma(sigma, width)
            predicted = "ntk" if sigma * sigma * width > 1 else "saddle-to-saddle"
        else:
            predicted = None
    ev = {"ntk_movement": movement, "ntk_movement_end": float(mv[-1]),
          "param_movement": parameter_movement(traj),
          "plateau_count": plateaus,
          "rank_increments": str(inc), "stepwise": stepwise,
          "escape_times": ", ".join(f"{e:.6g}" for e in sad.escape_times),
          "plateau_losses": ", ".join(f"{p.loss:.6g}" for p in sad.plateaus
                                      if p.predicted_loss > 0),
          "gamma": float(gamma), "sigma": float(sigma), "sigma2_width": float(sigma**2 * width),
          "width": width, "loss_end": float(np.asarray(traj["loss"], float)[-1]),
          "t_end": float(traj.t[-1]), "source": source, **th}
    ev["disagreement"] = _disagreement(label, predicted, ev)
    return Regime(label=label, taxonomy="deep_linear", evidence=ev, predicted=predicted)


def _disagreement(label, predicted, ev) -> str:
    """Why the measured label differs from the prediction ('' when they agree)."""
    if predicted is None or label == predicted:
        return ""
    if label == "intermediate":
        return (f"the NTK moves ({ev['ntk_movement']:.3g}x) but {ev['plateau_count']} saddle "
                f"plateau(s) were resolved (min_plateaus = {ev['min_plateaus']}), rank "
                f"increments {ev['rank_increments']}: Jacot et al. conjecture "
                f"saddle-to-saddle as gamma -> +inf; gamma = {ev['gamma']:.3g} here")
    if label == "ntk":
        return (f"the NTK moves only {ev['ntk_movement']:.3g} < kernel_tol at "
                f"gamma = {ev['gamma']:.3g}, sigma^2 w = {ev['sigma2_width']:.3g}: a finite "
                "width near the gamma = 1 transition")
    return (f"the NTK moves {ev['ntk_movement']:.3g} >= kernel_tol at gamma = "
            f"{ev['gamma']:.3g} < 1: a finite width near the gamma = 1 transition")


def _accepts(obj) -> bool:
    if isinstance(obj, DeepLinear):
        return True
    meta = getattr(obj, "meta", None)
    return meta is not None and str(meta.get("model", "")).startswith("deep_linear")


DEEP_LINEAR = register_taxonomy(Taxonomy(
    name="deep_linear", labels=LABELS, accepts=_accepts, classify=classify_deep_linear,
    scores=SCORES), replace=True)
