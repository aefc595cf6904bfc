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

from dataclasses import dataclass

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


# ---- grid (vectorized phase diagrams of decoupled inits) ---------------------------------
#
# A random init has no closed form, so the vectorized diagram is for the decoupled init of
# :meth:`DeepLinear.decoupled` only: every one of the r = min(out_dim, in_dim, width) modes
# starts at a^L (a = ``mode_init``, the per-layer scale) and follows the scalar chain
# towards its teacher value s_alpha (MATH.md §3). A diagram sweeps it when ``mode_init`` is
# on an axis or fixed.

#: Hyperparameters of a decoupled-init diagram besides ``s1``, ``s2``, ... (the teacher's
#: singular values, sorted; each may be an axis or fixed, overriding ``sigma_yx``'s).
DECOUPLED_PARAMS = ("depth", "width", "mode_init", "in_dim", "out_dim", "sigma_yx",
                    "sigma_xx")
#: Hyperparameters of a random init (no closed form).
RANDOM_INIT_PARAMS = ("gamma", "sigma", "seed")
#: Output times of :func:`classify_deep_linear`'s solve: ``linspace(0, horizon, 401)``.
_SAMPLES = 401
#: Loss band of :func:`~exactdyn.analysis.analyze_saddles` (its default).
_BAND = 0.01


def _svals_with(sigma_yx, overrides: dict) -> np.ndarray:
    s = np.linalg.svd(np.asarray(sigma_yx, float), compute_uv=False)
    for k, v in overrides.items():
        i = int(k[1:]) - 1
        if not 0 <= i < s.size:
            raise ValueError(f"{k}: the teacher has {s.size} singular values (s1 .. s{s.size})")
        s[i] = v
    return s


def decoupled_teacher(family: str, allowed: tuple, sigma_yx, in_dim=None, out_dim=None,
                      svals=None) -> np.ndarray:
    """The teacher of one decoupled-init cell: ``sigma_yx`` (checked against ``in_dim``
    and ``out_dim``) with ``s1``, ``s2``, ... of ``svals`` replacing its singular values
    (its singular vectors kept). ``family`` and ``allowed`` name the diagram's model and
    parameters in the errors."""
    svals = svals or {}
    if sigma_yx is None:
        raise ValueError(f"a decoupled {family} diagram needs sigma_yx in fixed (CLI: "
                         "--teacher-svals)")
    syx = np.asarray(sigma_yx, float)
    for name, n, want in (("in_dim", in_dim, syx.shape[1]), ("out_dim", out_dim, syx.shape[0])):
        if n is not None and int(float(n)) != want:
            raise ValueError(f"{name} = {n} does not match sigma_yx of shape {syx.shape}")
    unknown = [k for k in svals if not (k.startswith("s") and k[1:].isdigit())]
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for a decoupled "
                         f"{family}; allowed: {', '.join(allowed)}, s1, s2, ...")
    if svals:
        U, _, Vt = np.linalg.svd(syx)
        s = _svals_with(syx, svals)
        if np.any(s < 0):
            raise ValueError(f"teacher singular values must be >= 0, got {s.tolist()}")
        syx = (U[:, :s.size] * s) @ Vt[:s.size]
    return syx


def decoupled_family(family: str, switch: str, random_params, fixed: dict) -> tuple:
    """What a decoupled-init diagram's cells share: the teacher of ``fixed`` (required),
    the names ``s1``, ``s2``, ... of its singular values and their defaults, after
    refusing the hyperparameters of a random init (``random_params``) next to the
    decoupled init's ``switch`` parameter."""
    clash = sorted(set(fixed) & set(random_params))
    if clash:
        raise ValueError(f"{', '.join(clash)} set a random init, {switch} the decoupled "
                         "one: give one or the other")
    syx = fixed.get("sigma_yx")
    if syx is None:
        raise ValueError(f"a decoupled {family} diagram needs sigma_yx in fixed (CLI: "
                         "--teacher-svals)")
    syx = np.asarray(syx, dtype=float)
    s = np.linalg.svd(syx, compute_uv=False)
    names = tuple(f"s{i + 1}" for i in range(s.size))
    teacher = {"in_dim": syx.shape[1], "out_dim": syx.shape[0], "sigma_yx": syx,
               "sigma_xx": None, **{n: float(v) for n, v in zip(names, s)}}
    return names, teacher


@dataclass(frozen=True)
class DecoupledCells:
    """Builds the cells of a decoupled-init DeepLinear diagram:
    ``DeepLinear.decoupled(depth, width, sigma_yx, mode_init, sigma_xx)``, with ``s1``,
    ``s2``, ... replacing the singular values of ``sigma_yx`` (its singular vectors kept)."""

    explicit_init = False
    name = "deep_linear_decoupled"

    def with_values(self, depth=3, width=16, mode_init=1e-3, sigma_yx=None, sigma_xx=None,
                    in_dim=None, out_dim=None, **svals) -> DeepLinear:
        syx = decoupled_teacher("DeepLinear", DECOUPLED_PARAMS, sigma_yx, in_dim, out_dim,
                                svals)
        for name, v in (("depth", depth), ("width", width)):
            if float(v) != int(float(v)):
                raise ValueError(f"{name} must be an integer, got {v!r}")
        return DeepLinear.decoupled(int(float(depth)), int(float(width)), syx,
                                    float(mode_init), sigma_xx)


def _lambda_pairs(x_out, x_in, L):
    r"""Eigenvalues :math:`\lambda_{\alpha\beta} = \sum_{l=1}^{L} x_\alpha^{L-l}
    y_\beta^{l-1}` of the NTK of a decoupled network in the basis
    :math:`u_\alpha\otimes v_\beta` (:math:`x = a^2` per mode, padded with zeros to the
    output and input dimensions; :math:`0^0 = 1`). Shapes (..., n_out), (..., n_in)."""
    xo, xi = x_out[..., :, None], x_in[..., None, :]
    lam = np.zeros(np.broadcast_shapes(xo.shape, xi.shape))
    for l in range(1, L + 1):
        lam += xo ** (L - l) * xi ** (l - 1)
    return lam


def grid_deep_linear(values: dict, base=None, **options):
    r"""Measured and predicted labels and scores of decoupled-init
    :class:`~exactdyn.DeepLinear` cells, all at once, from the modes' exact times.

    The rules of :func:`classify_deep_linear`, read off the exact path instead of 401
    solved samples (like Linear1D's grid, the measured label is the exact path's):

    * ``ntk_movement``: the NTK's relative change at convergence, from the closed-form
      eigenvalues :math:`\lambda_{\alpha\beta}` (:func:`_lambda_pairs`). When every mode
      moves the same way (all start below, or all above, their teacher value) the change
      grows monotonically, so this is the sup over the path; when the init lies between two
      teacher values it is a lower bound (score ``monotone`` = 0 marks those cells). The
      classifier's solve stops at :func:`horizon`, which takes the init scale as at least
      :math:`10^{-12}s_{min}` (and as that when :math:`A_0` has a zero singular value:
      width < min(in_dim, out_dim)): a mode below it has not escaped by then, so there the
      per-cell path sees less movement than the converged path the grid reads.
    * ``stepwise``: the times the modes cross the rank threshold (half the smallest
      nonzero teacher value, :func:`~exactdyn.analysis.analyze_saddles`' default), exact
      by :func:`~exactdyn.closed_form.deep_linear.chain_times`, fall in distinct intervals
      of the classifier's 401 samples of ``[0, horizon]``, at least one of them.
    * a plateau at rank k (saddle level :math:`L_k = \tfrac12\sum_{\beta>k}s_\beta^2 > 0`):
      its stretch of constant rank holds at least 3 samples, and (the stretch from t = 0,
      whose first sample the sampled rule always takes as the flattest) the loss's first
      step :math:`|\dot L(0)|\,\Delta t` is within the band, or (later stretches) the
      loss stays near :math:`L_k` for at least one sample spacing, read off the two modes
      that dominate the loss there: from the time every mode below k is within
      :math:`\tfrac12(s_\alpha - u_\alpha)^2 \le b` of its teacher value until a mode from
      k on has grown by :math:`b/(2s_\alpha)` (:math:`b = 0.01\cdot\tfrac12 s_{k+1}^2`,
      the band of :func:`~exactdyn.analysis.analyze_saddles`). This is a proxy of the
      sampled rule (the flattest sample and a neighbour within the band): where the two
      modes overlap it can count one plateau fewer (``plateau_count``); the label, which
      needs ``min_plateaus`` (default 1), agreed with the per-cell path on every cell of
      the tests.
    """
    from ..closed_form.deep_linear import chain_potential, chain_times

    th = _thresholds(options)
    sxx = values.get("sigma_xx")
    syx = values.get("sigma_yx")
    if syx is None:
        raise ValueError("a decoupled DeepLinear diagram needs sigma_yx in fixed (CLI: "
                         "--teacher-svals)")
    syx = np.asarray(syx, float)
    if sxx is not None and not np.array_equal(np.asarray(sxx, float), np.eye(syx.shape[1])):
        raise ValueError("the closed-form DeepLinear diagram needs whitened inputs "
                         "(sigma_xx = None); use method='trajectory'")
    n_out, n_in = syx.shape
    k_all = min(n_out, n_in)
    scal = {k: np.asarray(v, float) for k, v in values.items()
            if k not in ("sigma_yx", "sigma_xx") and v is not None}
    shape = np.broadcast(*scal.values()).shape
    v = {k: np.broadcast_to(x, shape).ravel() for k, x in scal.items()}
    N = int(np.prod(shape))
    s_base = np.linalg.svd(syx, compute_uv=False)
    S = np.tile(s_base, (N, 1))
    for i in range(k_all):
        if f"s{i + 1}" in v:
            S[:, i] = v[f"s{i + 1}"]
    if np.any(S < 0):
        raise ValueError("teacher singular values must be >= 0")
    S = -np.sort(-S, axis=1)  # descending, as the SVD of each cell's sigma_yx
    depth = v["depth"].astype(int)
    width = v["width"].astype(int)
    a = v["mode_init"]
    r = np.minimum(k_all, width)
    idx = np.arange(k_all)[None, :]
    live = idx < r[:, None]  # modes the init sets (the others stay 0)
    labels = np.empty(N, dtype="<U16")
    out = {k: np.full(N, np.nan) for k in ("ntk_movement", "ntk_movement_end",
                                            "param_movement", "plateau_count", "gamma",
                                            "sigma", "sigma2_width", "width", "loss_end",
                                            "t_end", "monotone", "stepwise")}
    for L in np.unique(depth):
        c = np.flatnonzero(depth == L)
        L = int(L)
        s, ac, lv, w = S[c], a[c], live[c], width[c]
        u0 = np.where(lv, ac[:, None] ** L, 0.0)
        # the limit t -> inf: learned modes at s, zero-teacher or never-started ones at 0
        uinf = np.where(lv & (u0 > 0), s, 0.0)
        x0, xinf = u0 ** (2 / L), uinf ** (2 / L)
        pad_o = np.zeros((c.size, n_out - k_all))
        pad_i = np.zeros((c.size, n_in - k_all))
        l0 = _lambda_pairs(np.hstack([x0, pad_o]), np.hstack([x0, pad_i]), L)
        li = _lambda_pairs(np.hstack([xinf, pad_o]), np.hstack([xinf, pad_i]), L)
        n0 = np.sum(l0**2, axis=(1, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            mv = np.sqrt(np.sum((li - l0) ** 2, axis=(1, 2)) / n0)
        mv = np.where(n0 > 0, mv, np.inf)
        up = lv & (u0 < s) & (u0 > 0)
        down = lv & (u0 > s)
        monotone = ~(up.any(axis=1) & down.any(axis=1))
        # horizon(model): the smallest singular value of A0, escape of the weakest mode
        pos = s > 1e-12 * np.maximum(s.max(axis=1, keepdims=True), 1e-300)
        smin = np.where(pos, s, np.inf).min(axis=1)
        has = np.isfinite(smin)
        smin_s = np.where(has, smin, 1.0)
        sv_min = np.where(lv, u0, 0.0).min(axis=1)
        u0h = np.maximum(np.maximum(sv_min, 1e-12 * smin_s), 1e-300)
        with np.errstate(divide="ignore", over="ignore"):
            esc = np.where(u0h >= smin_s, 0.0,
                           np.log(smin_s / u0h) / (2 * smin_s) if L == 2 else
                           u0h ** (-(L - 2) / L) / ((L - 2) * smin_s))
        T = np.where(has, 2 * esc + 10 / (L * smin_s ** (2 - 2 / L)), 10.0)
        dt = T / (_SAMPLES - 1)
        # rank crossings of rho = smin/2 (analyze_saddles' default rank_tol)
        rho = 0.5 * smin_s[:, None]
        p0 = chain_potential(np.where(lv, u0, np.nan), s, L)  # shared by every time below

        def times(u, need, u0=u0, s=s, L=L, p0=p0):
            """chain_times(u, u0, s) where ``need``, else inf (nothing evaluated there)."""
            return chain_times(np.where(need, u, np.nan), u0, s, L, p0)

        rho_m = np.broadcast_to(rho, u0.shape)
        t_up = times(rho_m, lv & (u0 > 0) & (u0 < rho) & (s > rho))
        t_dn = times(rho_m, lv & (s == 0) & (u0 > rho))
        with np.errstate(invalid="ignore"):
            i_up = np.floor(t_up / dt[:, None]) + 1  # first sample with u > rho
            i_dn = np.floor(t_dn / dt[:, None]) + 1
        seen_up = i_up <= _SAMPLES - 1
        seen_dn = i_dn <= _SAMPLES - 1
        i_sorted = np.sort(np.where(seen_up, i_up, np.inf), axis=1)
        with np.errstate(invalid="ignore"):  # inf - inf: modes never crossing
            distinct = np.all((np.diff(i_sorted, axis=1) > 0)
                              | ~np.isfinite(i_sorted[:, 1:]), axis=1)
        stepwise = seen_up.any(axis=1) & distinct & ~seen_dn.any(axis=1)
        # plateaus: one stretch per rank value k from rank(0) on
        rank0 = np.sum(np.where(lv, u0, 0.0) > rho, axis=1)
        n_pos = pos.sum(axis=1)
        plateaus = np.zeros(c.size, dtype=int)
        bounds = np.hstack([np.zeros((c.size, 1)), i_sorted,
                            np.full((c.size, 1), np.inf)])
        for j in range(k_all + 1):  # the stretch after the j-th crossing
            lo = bounds[:, j]
            hi = np.minimum(bounds[:, j + 1], _SAMPLES)
            k = rank0 + j
            ok = np.isfinite(lo) & (hi - lo >= 3) & (k < n_pos)
            if not ok.any():
                continue
            kk = np.minimum(k, k_all - 1)
            s_next = np.take_along_axis(s, kk[:, None], 1)[:, 0]  # s_{k+1} (1-based)
            drop = 0.5 * s_next**2
            if j > 0:
                # enter: every mode alpha < k has 1/2 (s_alpha - u_alpha)^2 <= band drop
                tol_in = np.sqrt(2 * _BAND * drop)[:, None]
                target = np.where(u0 < s, s - tol_in, s + tol_in)
                need = (idx < k[:, None]) & (np.abs(u0 - s) > tol_in) & ok[:, None]
                t_in = times(np.maximum(target, 0.0), need)
                t_in = np.where(need, t_in, 0.0).max(axis=1)
                # leave: a mode alpha >= k has grown by band drop / (2 s_alpha)
                grow = (_BAND * drop)[:, None] / (2 * np.where(s > 0, s, 1.0))
                t_out = times(np.minimum(u0 + grow, s),
                              lv & (idx >= k[:, None]) & (s > 0) & (u0 > 0) & ok[:, None])
                flat = t_out.min(axis=1) - t_in >= dt
            else:
                # The first stretch starts at t = 0, which analyze_saddles' flatness weight
                # (|dL/dt| max(t, 1e-12 t_end)) always picks: a plateau when the loss's first
                # step, about |dL/dt(0)| dt = sum L u0^(2-2/L) (s - u0)^2 dt, is in the band.
                rate0 = np.sum(np.where(lv, L * u0 ** (2 - 2 / L) * (s - u0) ** 2, 0.0),
                               axis=1)
                flat = rate0 * dt <= _BAND * drop
            plateaus += ok & flat
        sigma = _decoupled_sigma(ac, r[c], w, n_in, n_out, L)
        with np.errstate(divide="ignore", invalid="ignore"):
            gamma = np.where(w > 1, np.where(sigma > 0, -2 * np.log(sigma) / np.log(
                np.maximum(w, 2)), np.inf), np.nan)
        lab = np.where(plateaus >= th["min_plateaus"], "saddle-to-saddle", "intermediate")
        lab = np.where(stepwise, lab, "intermediate")
        labels[c] = np.where(mv < th["kernel_tol"], "ntk", lab)
        n_l = lv.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            pm = np.where(ac > 0, np.sqrt(np.sum(np.where(lv, (uinf ** (1 / L) - ac[:, None])
                                                         ** 2, 0.0), axis=1)
                                          / (n_l * ac**2)), np.inf)
        out["ntk_movement"][c] = mv
        out["ntk_movement_end"][c] = mv
        out["param_movement"][c] = pm
        out["plateau_count"][c] = plateaus
        out["gamma"][c] = gamma
        out["sigma"][c] = sigma
        out["sigma2_width"][c] = sigma**2 * w
        out["width"][c] = w
        out["loss_end"][c] = 0.5 * np.sum((s - uinf) ** 2, axis=1) + 0.5 * (
            np.sum(syx**2) - np.sum(s_base**2))
        out["t_end"][c] = T
        out["monotone"][c] = monotone
        out["stepwise"][c] = stepwise
    predicted = np.where(out["sigma2_width"] > 1, "ntk", "saddle-to-saddle").astype("<U16")
    return (labels.reshape(shape), predicted.reshape(shape),
            {k: x.reshape(shape) for k, x in out.items()})


def _decoupled_sigma(a, r, width, n_in, n_out, L):
    """:func:`effective_sigma` of decoupled inits: the geometric mean over layers of the RMS
    entry (each layer holds r entries a)."""
    with np.errstate(divide="ignore"):
        logs = (np.log(a * np.sqrt(r / (width * n_in)))
                + (L - 2) * np.log(a * np.sqrt(r) / width)
                + np.log(a * np.sqrt(r / (n_out * width))))
    return np.where(a > 0, np.exp(logs / L), 0.0)


def grid_applies(params: dict) -> str:
    """'' when the vectorized grid applies to a diagram with these hyperparameters, else
    why not (a random init has no closed form)."""
    if "mode_init" in params:
        return ""
    return ("DeepLinear has a closed form for the decoupled init only (DeepLinear.decoupled): "
            "put mode_init on an axis or in fixed (CLI: --fixed mode_init=1e-3) for the "
            "vectorized diagram; a random init (gamma, sigma, seed) needs "
            "method='trajectory'")


def diagram_family(model, fixed: dict, axes: tuple):
    """DeepLinear with the decoupled init (``mode_init`` swept or fixed): cells are
    ``DeepLinear.decoupled(depth, width, sigma_yx, mode_init)``; ``s1``, ``s2``, ... are
    the teacher's singular values. ``None`` otherwise (a random init: the generic rule)."""
    if model is not DeepLinear or "mode_init" not in {*fixed, *axes}:
        return None
    names, teacher = decoupled_family("DeepLinear", "mode_init", RANDOM_INIT_PARAMS, fixed)
    defaults = {"depth": 3, "width": 16, "mode_init": 1e-3, **teacher}
    return DeepLinear, DecoupledCells(), DECOUPLED_PARAMS + names, defaults


DEEP_LINEAR = register_taxonomy(Taxonomy(
    name="deep_linear", labels=LABELS, accepts=_accepts, classify=classify_deep_linear,
    grid=grid_deep_linear, grid_applies=grid_applies, diagram=diagram_family,
    scores=SCORES + ("ntk_movement_end", "sigma", "sigma2_width", "loss_end", "t_end",
                     "monotone", "stepwise")), replace=True)
