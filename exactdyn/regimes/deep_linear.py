r"""Regimes of deep linear networks (MATH.md §3): ``"ntk"`` / ``"saddle-to-saddle"``.

**These are the project's operational definitions**, after Jacot, Ged, Şimşek, Hongler,
Gabriel (arXiv:2106.15933): with i.i.d. :math:`N(0, \sigma^2)` entries and
:math:`\sigma^2 = w^{-\gamma}`, :math:`\gamma < 1` is the NTK regime (the kernel hardly
moves) and :math:`\gamma > 1` starts near the saddle at 0 and, for small init, visits a
sequence of saddles (plateaus at :math:`L_k = \tfrac12\sum_{\beta>k}s_\beta^2` while the
rank of :math:`A` grows by one at each escape).

*Measured* (from a trajectory, or from the model's solved trajectory over the horizon of
:func:`horizon`): the relative NTK movement
:math:`m = \sup_t\lVert\Theta(t) - \Theta(0)\rVert_F/\lVert\Theta(0)\rVert_F`
(:func:`~exactdyn.analysis.ntk_movement`) and the saddle plateaus of
:func:`~exactdyn.analysis.analyze_saddles`. The label is ``"ntk"`` if
:math:`m <` ``kernel_tol`` (default 0.1) and ``"saddle-to-saddle"`` otherwise. The
evidence reports :func:`plateau_count` (plateaus above the minimum), the rank increments,
whether they are all +1 (``stepwise``), the escape times and the plateau levels.

*Predicted* (hyperparameters alone): :math:`\gamma < 1` ntk, :math:`\gamma > 1`
saddle-to-saddle (:math:`\gamma = 1` counts as saddle-to-saddle). When the init scale is
given directly (``sigma=`` or explicit weights: :math:`\sigma` is then the RMS entry of the
layers, geometric mean over layers) the effective exponent is
:math:`\gamma = -2\ln\sigma/\ln w`, i.e. ntk iff :math:`\sigma^2 w > 1`; at width 1 that
is :math:`\sigma > 1`.
"""

from __future__ import annotations

import numpy as np

from ..analysis import analyze_saddles, ntk_movement
from ..models.deep_linear import DeepLinear
from .base import Regime, Taxonomy, check_thresholds, register_taxonomy

LABELS = ("ntk", "saddle-to-saddle")
SCORES = ("ntk_movement", "plateau_count", "gamma")
THRESHOLDS = {"kernel_tol": 0.1}


def _thresholds(options) -> dict:
    return check_thresholds(options, THRESHOLDS, "deep_linear", bounded=())


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
    label = "ntk" if movement < th["kernel_tol"] else "saddle-to-saddle"
    inc = sad.rank_increments
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
          "plateau_count": plateau_count(sad),
          "rank_increments": str(inc), "stepwise": bool(len(inc) > 0 and
                                                        all(d == 1 for d in inc)),
          "escape_times": ", ".join(f"{e:.6g}" for e in sad.escape_times),
          "plateau_losses": ", ".join(f"{p.loss:.6g}" for p in sad.plateaus
                                      if p.predicted_loss > 0),
          "gamma": float(gamma), "sigma": float(sigma), "sigma2_width": float(sigma**2 * width),
          "width": width, "loss_end": float(np.asarray(traj["loss"], float)[-1]),
          "t_end": float(traj.t[-1]), "source": source, **th}
    return Regime(label=label, taxonomy="deep_linear", evidence=ev, predicted=predicted)


def _accepts(obj) -> bool:
    if isinstance(obj, DeepLinear):
        return True
    meta = getattr(obj, "meta", None)
    return meta is not None and str(meta.get("model", "")).startswith("deep_linear")


DEEP_LINEAR = register_taxonomy(Taxonomy(
    name="deep_linear", labels=LABELS, accepts=_accepts, classify=classify_deep_linear,
    scores=SCORES), replace=True)
