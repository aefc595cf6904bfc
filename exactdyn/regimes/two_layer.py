r"""Luo et al.'s phase diagram measured: the width scaling of the relative distance RD.

Luo, Xu, Ma, Zhang, "Phase diagram for two-layer ReLU neural networks at infinite-width
limit", JMLR 22 (2021) 71 (MATH.md §4). For :math:`f = \frac1\alpha\sum_k a_k\sigma(w_k\cdot
x)` with :math:`\beta_1\beta_2/\alpha = m^{-\gamma}`, :math:`\beta_1/\beta_2 = m^{-\gamma'}`,

.. math:: \mathrm{RD}(t) = \frac{\lVert\theta_w(t) - \theta_w(0)\rVert}{\lVert\theta_w(0)
          \rVert}

over all input weights (bias included) goes to 0 as :math:`m\to\infty` in the *linear*
regime (:math:`\gamma < 1` or :math:`\gamma' > \gamma - 1`) and to :math:`\infty` in the
*condensed* regime (:math:`\gamma > 1`, :math:`\gamma' < \gamma - 1`); the paper measures
RD at the end of training and fits the slope of :math:`\log\mathrm{RD}` against
:math:`\log m` over several widths.

**Stopping rule** (ours). RD at a fixed time is not comparable across widths: the escape
time from a small init grows like :math:`\log m` and time scales with α. We stop each
width when the training loss first falls to ``loss_fraction`` times its initial value:
:func:`exactdyn.solve` runs on a geometric time grid (``points`` times from
:math:`10^{-4}T` to :math:`T`, :math:`T = 1, 10, 100, \dots` up to ``max_time``) until the
loss crosses; a second solve on a uniform grid of the bracketing interval refines the
crossing time :math:`t^*`, and RD is interpolated linearly there (the loss linearly in
:math:`\log L`); each solve continues from the state the previous one reached. For smooth
activations the runs of :func:`rd_slope` are integrated together as ensembles by default
(:func:`stop_rd_many`, :mod:`exactdyn.numeric.ensemble`), which locate :math:`t^*` on
the integrator's own steps (Newton's method on :math:`\log L`) with the same decade ends
and plateau rule. The default ``loss_fraction = 0.05`` is "end of training" but below the
plateau at the best linear fit that small-init networks pass through after condensing
(for ``1d-sine``, about half the initial loss), so the stop is never on a plateau.
Where the loss stays on a plateau above ``loss_fraction`` (tanh with a small init on
``1d-cubic`` sits at 29 % of its start, creeping down by 0.03 % a decade of time), the
*plateau rule* of :func:`stop_rd` stops after two flat decades and the label is
``undetermined``, with the plateau's level and a ``loss_fraction`` that would measure it
in the evidence's ``reason``.

**Label** (ours): the least-squares slope :math:`s` of :math:`\log\overline{\mathrm{RD}}`
(geometric mean over seeds) against :math:`\log m`; ``linear`` if :math:`s < -b`,
``condensed`` if :math:`s > b`, else ``critical``, with a dead band b that is the
measurement noise of s (:func:`noise_band`): two standard errors over the S seeds,
:math:`b = 2\max(\sigma_0, \hat\sigma)/\sqrt S`, :math:`\hat\sigma` the sample standard
deviation of the per-seed slopes (S ≥ 3) and :math:`\sigma_0 = 0.1` a floor measured
here: per-seed slopes over widths 16–4096 (protocol below, 5 and 8 seeds) scatter with
standard deviation 0.02–0.14 (about 0.1 pooled) at the four points of the issue. One seed
gives b = 0.2 (the former fixed threshold); five give 0.089. A fixed band of 0.2 could
never label (1.5, 0.25) ``condensed``: there the slope tends to only
:math:`(\gamma - \gamma' - 1)/2 = 0.125` (see below).

**Expected slopes.** For a 1-homogeneous σ (ReLU; tanh while :math:`|w\cdot x| \ll 1`)
with :math:`\lVert\theta_w(0)\rVert \propto \sqrt m\,\beta_2 = m^{(1-\gamma+\gamma')/2}`:
in the condensed regime the grown weights carry the fit with
:math:`\lVert\theta_w(t^*)\rVert = O(1)`, so :math:`s \to (\gamma - \gamma' - 1)/2`
(0.375 at (1.75, 0), 0.125 at (1.5, 0.25)); in the linear regime with
:math:`\beta_1 \ll \beta_2` the output weights do the fitting
(:math:`a \sim 1/(m\beta_2)`) and the input weights move by :math:`O(a^2/\beta_2)`, so
:math:`s \to 2(\gamma - \gamma' - 1)` (−0.5 at (1.25, 0.5)); at the NTK point both
layers move lazily and :math:`s = -\tfrac12`. The sign of :math:`\gamma - \gamma' - 1`
decides both limits, which is Luo et al.'s boundary :math:`\gamma' = \gamma - 1`.

**Which RD** (option ``rd``). Luo et al. (JMLR 2021, abstract) name the regimes "based on
the relative change of input weights as the width approaches infinity, which tends to 0,
O(1) and +∞". Default ``rd="all"`` (ours): the relative change over *every* input weight
(bias included) of the network, both halves of a mirrored init. ``rd="copy"`` follows
their code (github.com/xuzhiqin1990/phasediagram_twolayerNN, ``scalestudy1d_191224.py``):
with ``ASI=1`` the network is two copies of width m with output weights ±a, and ``wb2theta``
/ ``runtest`` read only the first copy's input weights and biases ``v``, so the plotted
"RD(θ*_w)" is

.. math:: \mathrm{RD}_{\rm copy} = \frac{\lVert v(t) - v(0)\rVert}{\lVert v(0)\rVert}

(their ``diff_w_rescale``: the RMS of the change of ``v/β2`` over the RMS of ``v(0)/β2``;
the β2 cancels) over the first half of a mirrored init only (:func:`relative_distance`).
Their stop is ``loss < 1e-6`` with Adam; ours is the flow with ``loss_fraction``. The two
RDs obey :math:`\mathrm{RD}_{\rm all}^2 = (\mathrm{RD}_1^2 + \mathrm{RD}_2^2)/2` (the
halves start equal), so they scale alike unless one copy moves much more than the other.

**Protocol** (:data:`PROTOCOL`, used by the slow test and ``examples/rd_slopes.py``):
tanh, mirrored init, data ``1d-linear`` (n = 10, y = x/2 + 1/4), widths 16, 64, 256,
1024, 4096, five seeds, loss fraction 0.05. Why the linear target: for tanh at
:math:`\gamma > \gamma'` the init scale :math:`\beta_2 \to 0`, the features
:math:`\tanh(w\cdot x) \to w\cdot x` and the limiting kernel is linear in x; a target
outside its span (``1d-sine``) forces the input weights out of the linear regime at every
width, an artefact of tanh, not Luo et al.'s phase (their ReLU is homogeneous, its
features keep their shape at any scale). With ``1d-sine`` and widths 16–256 the near-
boundary slopes were +0.05..+0.10 at (1.5, 0.25) and −0.12..−0.14 at (1.25, 0.5). ReLU
is exact in (γ, γ') and agrees on ``1d-linear`` (widths 32–512, 3 seeds: −0.53, +0.41,
+0.14 at NTK, (1.75, 0), (1.5, 0.25); −0.61 at (1.25, 0.5), widths 32–2048), but its kinks
make condensed runs slow (m = 512: 25–65 s a run), so ReLU is not the default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import _validation as check
from .._progress import Progress, quiet
from .base import Regime, Taxonomy, register_taxonomy
from .scaling import luo_exponents, luo_label

#: ``undetermined``: some width never reached the stopping loss (a plateau above it, or
#: ``max_time``); the reason is in the evidence.
LABELS = ("linear", "critical", "condensed", "undetermined")
SCORES = ("rd_slope",)
DEFAULT_WIDTHS = (16, 32, 64, 128, 256)
#: Per-seed standard deviation of the fitted slope assumed at least (measured; see above).
SLOPE_NOISE = 0.1
#: The dead band with one seed: two standard deviations of a one-seed slope.
DEFAULT_TOL = 2 * SLOPE_NOISE
#: The measurement protocol whose signs are checked at the issue's four points.
PROTOCOL = {"activation": "tanh", "data": "1d-linear", "n": 10, "init": "mirrored",
            "widths": (16, 64, 256, 1024, 4096), "seeds": (0, 1, 2, 3, 4),
            "loss_fraction": 0.05}


@dataclass(frozen=True)
class RDSlope:
    """The result of :func:`rd_slope`.

    Attributes
    ----------
    gamma, gamma_prime : float
        Luo et al.'s exponents of the runs.
    widths : tuple of int
    rd : ndarray, shape (len(widths), len(seeds))
        RD at the stopping time, per width and seed.
    stop_time : ndarray, same shape
        The time :math:`t^*` at which the loss reached ``loss_fraction`` of its start.
    slope, intercept : float
        Least-squares fit :math:`\\log\\overline{RD} = \\mathrm{slope}\\,\\log m +
        \\mathrm{intercept}` (geometric mean over seeds).
    slope_stderr, r2 : float
        Standard error of the slope (``nan`` with two widths) and the fit's R².
    label : str
        ``linear`` / ``critical`` / ``condensed`` from the slope and ``tol``.
    predicted : str
        ``luo_label(gamma, gamma_prime)``.
    tol : float
        The dead band b of the label (given, or :func:`noise_band` of the seed slopes).
    options : dict
        activation, data, n, seeds, loss_fraction, alpha_exponent, init.
    seed_slopes : ndarray, shape (len(seeds),)
        The slope fitted to each seed's RD alone.
    reason : str
        Why the label is ``undetermined`` (empty otherwise): which width and seed never
        reached the stopping loss, and why (:class:`NoStop`).
    """

    gamma: float
    gamma_prime: float
    widths: tuple
    rd: np.ndarray
    stop_time: np.ndarray
    slope: float
    intercept: float
    slope_stderr: float
    r2: float
    label: str
    predicted: str
    tol: float
    options: dict = field(default_factory=dict)
    seed_slopes: np.ndarray = field(default_factory=lambda: np.array([]))
    reason: str = ""

    @property
    def seed_sd(self) -> float:
        """Sample standard deviation of the per-seed slopes (``nan`` under 2 seeds)."""
        v = np.asarray(self.seed_slopes, float)
        return float(np.std(v, ddof=1)) if v.size > 1 else float("nan")

    @property
    def rd_mean(self) -> np.ndarray:
        """Geometric mean of RD over seeds, per width."""
        return np.exp(np.mean(np.log(self.rd), axis=1))

    def regime(self) -> Regime:
        """This result as a :class:`Regime` of the ``two_layer`` taxonomy."""
        ev = {"gamma": self.gamma, "gamma_prime": self.gamma_prime, "rd_slope": self.slope,
              "rd_slope_stderr": self.slope_stderr, "rd_fit_r2": self.r2,
              "widths": list(self.widths), "rd": _floats(self.rd_mean),
              "stop_time": _floats(np.mean(self.stop_time, axis=1)),
              "tol": self.tol, "seed_slopes": _floats(self.seed_slopes),
              **{k: v for k, v in self.options.items()
                                  if k in ("activation", "loss_fraction", "alpha_exponent")}}
        if self.options.get("rd", "all") != "all":
            ev["rd_kind"] = self.options["rd"]
        if self.reason:
            ev["reason"] = self.reason
        return Regime(self.label, "two_layer", ev, self.predicted)


def _floats(values) -> list:
    """Plain floats, ``None`` where not measured (JSON has no NaN)."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, float)]


def slope_label(slope: float, tol: float = DEFAULT_TOL) -> str:
    """``linear`` (slope < −tol), ``condensed`` (> tol) or ``critical``."""
    s = float(slope)
    if s < -tol:
        return "linear"
    return "condensed" if s > tol else "critical"


def noise_band(seed_slopes, floor: float = SLOPE_NOISE) -> float:
    r"""Dead band of the slope label: two standard errors of the seed-averaged slope,

    .. math:: b = \frac{2\max(\sigma_0, \hat\sigma)}{\sqrt S},

    S the number of seeds, :math:`\hat\sigma` the sample standard deviation of the per-seed
    slopes (used from S = 3 on; fewer seeds cannot estimate it), :math:`\sigma_0` = ``floor``
    (default :data:`SLOPE_NOISE` = 0.1, measured; module docstring).
    """
    v = np.asarray(seed_slopes, dtype=float).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError(f"seed_slopes must be a non-empty array of finite slopes, got "
                         f"{seed_slopes!r}")
    floor = check.nonnegative("floor", floor)
    sd = float(np.std(v, ddof=1)) if v.size >= 3 else 0.0
    return 2.0 * max(floor, sd) / math.sqrt(v.size)


def _crossing(times, loss, rd, target):
    """(t*, RD(t*)) at the first sample pair bracketing ``loss = target`` (None if none)."""
    below = np.flatnonzero(loss <= target)
    if below.size == 0:
        return None
    i = int(below[0])
    if i == 0:
        return float(times[0]), float(rd[0])
    l0, l1 = math.log(loss[i - 1]), math.log(max(loss[i], 1e-300))
    f = (l0 - math.log(target)) / (l0 - l1) if l0 != l1 else 1.0
    return (float(times[i - 1] + f * (times[i] - times[i - 1])),
            float(rd[i - 1] + f * (rd[i] - rd[i - 1])))


class NoStop(ValueError):
    """The loss never reached ``loss_fraction`` of its start: it plateaued, or ``max_time``
    came first. ``reason`` says which (with the loss ratio and the time), ``time`` is the
    last time integrated, ``loss_ratio`` the loss there over its start."""

    def __init__(self, reason: str, time: float, loss_ratio: float):
        super().__init__(reason)
        self.reason, self.time, self.loss_ratio = reason, float(time), float(loss_ratio)


#: Plateau rule of :func:`stop_rd`: the loss changed by less than this (relative) over
#: each of the last :data:`PLATEAU_DECADES` decades of time ...
PLATEAU_RTOL = 0.01
PLATEAU_DECADES = 2
#: ... after falling below this fraction of its start (so the initial saddle of a small
#: init, where the loss also sits still before the escape, is not a plateau).
PLATEAU_BELOW = 0.9


#: The RDs :func:`relative_distance` measures: ``all`` (ours) and ``copy`` (Luo et al.'s code).
RD_KINDS = ("all", "copy")


def relative_distance(W0, W, rd="all"):
    r"""Luo et al.'s relative distance of the input weights at each time.

    .. math:: \mathrm{RD}(t) = \frac{\lVert\theta_w(t) - \theta_w(0)\rVert}
              {\lVert\theta_w(0)\rVert}

    Parameters
    ----------
    W0 : array_like, shape (m, d_in)
        Initial input weights (bias column included).
    W : array_like, shape (T, m, d_in) or (m, d_in)
        Input weights at T times.
    rd : {"all", "copy"}
        ``all`` (default, ours): over every neuron. ``copy``: over the first m/2 neurons
        only, the first copy of a mirrored init, as Luo et al.'s code measures it
        (``scalestudy1d_191224.py``: ``wb2theta`` takes the first copy's ``w`` and ``b``;
        module docstring, *Which RD*). m must be even.

    Returns
    -------
    ndarray, shape (T,) (or a float for a single W)
    """
    check.choice("rd", rd, RD_KINDS)
    W0 = np.asarray(W0, dtype=float)
    Wa = np.asarray(W, dtype=float)
    single = Wa.ndim == 2
    Wa = Wa[None] if single else Wa
    m = W0.shape[0]
    if rd == "copy":
        if m % 2:
            raise ValueError(f"rd='copy' needs an even width (two mirrored copies), got {m}")
        W0, Wa = W0[: m // 2], Wa[:, : m // 2]
    out = (np.linalg.norm((Wa - W0).reshape(len(Wa), -1), axis=1)
           / np.linalg.norm(W0))
    return float(out[0]) if single else out


def _decade_stop(history, loss_fraction, max_time, plateau_rtol, plateau_decades):
    """The :class:`NoStop` of :func:`stop_rd`'s plateau rule or of ``max_time`` after a
    decade ending at ``history[-1] = (T, loss(T)/loss(0))`` without a crossing, else None."""
    T, ratio = history[-1]
    if plateau_rtol > 0 and len(history) > plateau_decades:
        last = [r for _, r in history[-plateau_decades - 1:]]
        steps = [abs(a - b) / a for a, b in zip(last, last[1:])]
        if last[0] < PLATEAU_BELOW and max(steps) < plateau_rtol:
            return NoStop(
                f"loss plateau at {ratio:.3g} of its start (changed by < {plateau_rtol:g} "
                f"a decade over t = {history[-plateau_decades - 1][0]:g}..{T:g}), above "
                f"loss_fraction={loss_fraction:g}; pass loss_fraction (--loss-fraction) > "
                f"{ratio:.3g} (e.g. {min(0.95, 1.1 * ratio):.2g}) to measure RD on the "
                "way to the plateau",
                T, ratio)
    if T >= max_time:
        return NoStop(f"loss_fraction={loss_fraction:g} not reached by max_time="
                      f"{max_time:g} (loss ratio {ratio:.3g})", T, ratio)
    return None


def decade_ends(max_time) -> list:
    """The times :func:`stop_rd` integrates to: 1, 10, 100, ... capped at ``max_time``."""
    ends = [1.0]
    while ends[-1] < max_time:
        ends.append(min(10 * ends[-1], float(max_time)))
    return ends


def ensemble_applies(model) -> bool:
    """Whether :func:`stop_rd_many` integrates ``model`` in an ensemble: a smooth
    activation (kinked ones take the per-member path, :mod:`exactdyn.numeric.ensemble`)."""
    return not model.act.piecewise


def stop_rd_many(models, loss_fraction=0.05, max_time=1e6, rtol=1e-9,
                 plateau_rtol=PLATEAU_RTOL, plateau_decades=PLATEAU_DECADES, rd="all"):
    r""":func:`stop_rd` of many smooth-activation models at once, as ensembles
    (:mod:`exactdyn.numeric.ensemble`): the models are grouped by width, α, data and
    activation (:func:`~exactdyn.numeric.ensemble.group_by_structure`), each group is one
    batched DOP853 integration with per-member step sizes, and each member stops at its own
    crossing of ``loss_fraction`` (located to rounding on the integrator's steps, where
    :func:`stop_rd` interpolates on a grid) or by the plateau rule / ``max_time`` at the
    same decade ends 1, 10, 100, ... as :func:`stop_rd`.

    Returns
    -------
    list
        Per model, ``(t*, RD(t*))`` or the :class:`NoStop` that :func:`stop_rd` would raise.
    """
    from ..numeric.ensemble import TwoLayerEnsemble, first_crossing, group_by_structure

    kind = check.choice("rd", rd, RD_KINDS)
    models = list(models)
    for mdl in models:
        if kind == "copy" and getattr(mdl, "init", None) != "mirrored":
            raise ValueError(f"rd='copy' measures one copy of a mirrored init; the model's "
                             f"init is {getattr(mdl, 'init', None)!r}")
    ends = decade_ends(max_time)
    out: list = [None] * len(models)
    for group in group_by_structure(models):
        ens = TwoLayerEnsemble([models[i] for i in group])
        histories: dict = {b: [] for b in range(len(group))}

        def at_decade(b, _k, t, ratio, histories=histories):
            histories[b].append((t, ratio))
            return _decade_stop(histories[b], loss_fraction, max_time, plateau_rtol,
                                plateau_decades)

        res, _stats = first_crossing(ens, loss_fraction, ends, at_decade, rtol=rtol)
        for b, i in enumerate(group):
            r = res[b]
            if isinstance(r, NoStop) or r is None:
                out[i] = r if r is not None else NoStop(
                    f"loss_fraction={loss_fraction:g} not reached by max_time={max_time:g}",
                    ends[-1], float("nan"))
                continue
            t_star, state = r
            W = ens.unpack(state)[1]
            out[i] = (float(t_star), float(relative_distance(models[i].W0, W, kind)))
    return out


def stop_rd(model, loss_fraction=0.05, max_time=1e6, points=60, refine=64, rtol=1e-9,
            plateau_rtol=PLATEAU_RTOL, plateau_decades=PLATEAU_DECADES, rd="all"):
    r"""RD of ``model`` (a :class:`~exactdyn.TwoLayer`) when its loss first reaches
    ``loss_fraction`` times its initial value; returns ``(t*, RD(t*))``.

    The stopping rule of the module docstring: geometric grids to
    :math:`T = 1, 10, \dots`, ``max_time``, then ``refine`` uniform times on the bracket;
    each decade and the bracket are integrated from the state reached (not from t = 0
    again), with the absolute tolerance of the initial state.

    **Plateau rule.** Once the loss is below :data:`PLATEAU_BELOW` (0.9) of its start, if
    it changed by less than ``plateau_rtol`` (relative; default 1 %) over each of the
    last ``plateau_decades`` decades of time (default 2; e.g. t = 10 → 100 → 1000), the
    run is on a plateau above ``loss_fraction`` (tanh fitting ``1d-cubic`` sits at 29 %
    of its start, creeping down by 0.03 % a decade) and :class:`NoStop` is raised at once
    instead of integrating on to ``max_time`` (each decade of time costs about ten times
    the last: the step size is bounded by the flow's stiffness). ``plateau_rtol=0``
    turns the rule off. :class:`NoStop` (a ``ValueError``) also when the loss never gets
    to ``loss_fraction`` by ``max_time``.

    ``rd``: ``all`` (default) or ``copy`` (Luo et al.'s code; :func:`relative_distance`).
    """
    from ..solve import solve

    check.choice("rd", rd, RD_KINDS)
    if rd == "copy" and getattr(model, "init", None) != "mirrored":
        raise ValueError(f"rd='copy' measures one copy of a mirrored init; the model's init "
                         f"is {getattr(model, 'init', None)!r}")

    def rds(tr):
        return relative_distance(model.W0, tr["W"], rd)

    # Every solve continues from the last state reached (a model built from it,
    # :meth:`~exactdyn.TwoLayer.with_init`; gradient flow is autonomous), with the
    # tolerances of the first: each decade integrates only (T/10, T] and the refinement
    # only its bracket, where solving from t = 0 each time integrated the early dynamics
    # (a ReLU network's escape and its kinks) once per decade and again for the bracket.
    y0 = np.concatenate([model.a0, np.ravel(model.W0)])
    atol = rtol * (float(np.sqrt(np.mean(y0**2))) or 1.0)
    T = 1.0
    history = []  # (T, loss(T) / loss(0)) at the end of each decade
    current, t_start, loss0 = model, 0.0, None
    while True:
        grid = np.geomspace(1e-4 * T, T, points)
        t = np.concatenate([[t_start], grid[grid > t_start]])
        tr = solve(current, t - t_start, rtol=rtol, atol=atol)
        loss = tr["loss"]
        loss0 = loss[0] if loss0 is None else loss0
        target = loss_fraction * loss0
        below = np.flatnonzero(loss <= target)
        if below.size:
            break
        ratio = float(loss[-1] / loss0)
        history.append((T, ratio))
        stop = _decade_stop(history, loss_fraction, max_time, plateau_rtol, plateau_decades)
        if stop is not None:
            raise stop
        current, t_start = model.with_init(tr["a"][-1], tr["W"][-1]), T
        T = min(10 * T, max_time)
    i = int(below[0])
    if (i <= 1 and t_start == 0.0) or refine < 2:
        return _crossing(t, loss, rds(tr), target)
    fine = np.linspace(t[i - 1], t[i], refine)
    tr2 = solve(model.with_init(tr["a"][i - 1], tr["W"][i - 1]), fine - fine[0], rtol=rtol,
                atol=atol)
    hit = _crossing(fine, tr2["loss"], rds(tr2), target)
    return hit if hit is not None else _crossing(t, loss, rds(tr), target)


def _fit(widths, rd_mean):
    x = np.log(np.asarray(widths, float))
    yv = np.log(rd_mean)
    A = np.stack([x, np.ones_like(x)], axis=1)
    (slope, intercept), *_ = np.linalg.lstsq(A, yv, rcond=None)
    resid = yv - A @ np.array([slope, intercept])
    ss_tot = float(np.sum((yv - yv.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else 1.0
    k = x.size
    stderr = (math.sqrt(float(np.sum(resid**2)) / (k - 2) / float(np.sum((x - x.mean()) ** 2)))
              if k > 2 else float("nan"))
    return float(slope), float(intercept), stderr, r2


def rd_slope(gamma, gamma_prime, widths=DEFAULT_WIDTHS, activation="tanh", data="1d-linear",
             n=10, y=None, seeds=(0,), loss_fraction=0.05, alpha_exponent=0.0,
             init="mirrored", bias=True, tol=None, max_time=1e6, rtol=1e-9,
             progress=None, rd="all", ensemble=None) -> RDSlope:
    r"""Measure Luo et al.'s regime at :math:`(\gamma, \gamma')` from the width scaling of RD.

    For each width m (and seed), builds ``TwoLayer(m, data, gamma=gamma,
    gamma_prime=gamma_prime, alpha=m**alpha_exponent, init=init)``, i.e.
    :math:`\alpha = m^{p}`, :math:`\beta_1 = \sqrt\alpha\,m^{-(\gamma+\gamma')/2}`,
    :math:`\beta_2 = \sqrt\alpha\,m^{-(\gamma-\gamma')/2}`, trains it by
    :func:`exactdyn.solve` until the loss is ``loss_fraction`` of its initial value
    (:func:`stop_rd`), records
    :math:`\mathrm{RD} = \lVert\theta_w(t^*) - \theta_w(0)\rVert/\lVert\theta_w(0)\rVert`,
    and fits :math:`\log\overline{\mathrm{RD}} = s\log m + c` by least squares [LX].

    Parameters
    ----------
    gamma, gamma_prime : float
        :math:`\beta_1\beta_2/\alpha = m^{-\gamma}`, :math:`\beta_1/\beta_2 = m^{-\gamma'}`.
    widths : sequence of int
        At least two distinct widths (even for ``init="mirrored"``).
    activation : str
        Any :class:`~exactdyn.TwoLayer` activation. ``tanh`` is smooth (no kinks) and fast;
        ``relu`` is Luo et al.'s and exact in (γ, γ') (α only rescales time) but slower.
    data : str or array_like
        A built-in data set name (``n`` points), or inputs X with targets ``y``. Default
        ``1d-linear``: a target in the span of tanh's small-scale (linear) kernel (module
        docstring, *Protocol*).
    seeds : sequence of int
        Init seeds; RD is averaged geometrically over them.
    loss_fraction : float in (0, 1)
        Stop when loss ≤ ``loss_fraction`` × initial loss.
    alpha_exponent : float
        :math:`\alpha = m^{p}` (0: α = 1; ½ with (½, 0) is the NTK init β = 1).
    init : str
        ``mirrored`` (default: f ≡ 0 at t = 0, as in Luo et al.'s code) or ``gaussian``.
    bias : bool
        Append a column of ones to the inputs (its weight counts in RD).
    tol : float, optional
        Dead band of the label (``linear`` < −tol, ``condensed`` > tol); default
        :func:`noise_band` of the per-seed slopes (0.2 with one seed, 0.089 with five).
        :data:`PROTOCOL` holds the settings whose signs are checked at the issue's points.
    rd : {"all", "copy"}
        Which RD (:func:`relative_distance`): ``all`` (default, ours) over every input
        weight; ``copy`` over the first copy of the mirrored init only, as Luo et al.'s code
        measures it (needs ``init="mirrored"``). For ``copy`` the width given is the whole
        network's (2 copies); Luo et al.'s code's m is one copy's.
    progress : bool or callable(str), optional
        A progress bar over the runs (widths × seeds) on stderr. Default ``None``: shown
        when stderr is a terminal only; ``False`` silences it (CLI: ``--no-progress``). A
        callable is called instead with a one-line message before each run (the CLI's
        log lines).
    ensemble : bool, optional
        Integrate the widths × seeds runs as ensembles (:func:`stop_rd_many`: one batched
        integration per width, per-member step sizes) instead of one :func:`stop_rd` each.
        Default ``None``: ensembles for smooth activations (tanh), the per-member path for
        kinked ones (ReLU), which ensembles do not batch. ``True`` with a kinked activation
        raises ``ValueError``. The two paths agree to the integration tolerance (the
        ensemble locates t* on its steps, :func:`stop_rd` interpolates on a grid).

    Returns
    -------
    RDSlope
        Labelled ``undetermined`` (with the reason) as soon as one width never reaches
        the stopping loss: a loss plateau above it or ``max_time`` (:func:`stop_rd`).
    """
    plan = _rd_plan(gamma, gamma_prime, widths, activation, data, n, y, seeds, loss_fraction,
                    alpha_exponent, init, bias, tol, max_time, rtol, rd)
    use = _use_ensemble(ensemble, plan["models"][0][2])
    say = progress if callable(progress) else None
    runs = len(plan["models"])
    bar = Progress(runs, False if say is not None else progress,
                   desc=f"RD slope at ({plan['g']:g}, {plan['gp']:g})", unit="runs")
    try:
        if use:
            if say is not None:
                say(f"rd_slope: {runs} runs as ensembles (one per width)")
            stops = _stops_ensemble([plan])[0]
            bar.update(n=runs)
        else:
            stops = []
            for i, j, net in plan["models"]:
                if say is not None:
                    say(f"rd_slope: width {plan['ws'][i]} ({i + 1}/{len(plan['ws'])}), "
                        f"seed {plan['sd'][j]}")
                try:
                    with quiet():  # the runs' integrations draw no bars under this one
                        stops.append(stop_rd(net, plan["lf"], max_time=max_time, rtol=rtol,
                                             rd=plan["kind"]))
                except NoStop as exc:
                    # One width without a stopping time leaves no slope: stop here.
                    stops.append(exc)
                    break
                bar.update()
    finally:
        bar.close()
    return _rd_finish(plan, stops)


def _use_ensemble(ensemble, model) -> bool:
    if ensemble is None:
        return ensemble_applies(model)
    if check.boolean("ensemble", ensemble) and not ensemble_applies(model):
        raise ValueError(f"ensemble=True integrates smooth activations only; activation "
                         f"{model.act.name!r} has kinks (pass ensemble=None or False)")
    return bool(ensemble)


def _rd_plan(gamma, gamma_prime, widths, activation, data, n, y, seeds, loss_fraction,
             alpha_exponent, init, bias, tol, max_time, rtol, rd) -> dict:
    """:func:`rd_slope`'s arguments checked, and its runs: ``(i, j, TwoLayer)`` per width
    index i and seed index j, widths outer."""
    from ..models.twolayer import TwoLayer

    g = check.real("gamma", gamma)
    gp = check.real("gamma_prime", gamma_prime)
    try:
        ws = tuple(int(w) for w in widths)
    except (TypeError, ValueError):
        raise ValueError(f"widths must be a sequence of integers >= 2, "
                         f"got {check.show(widths)}") from None
    if len(set(ws)) < 2 or min(ws) < 2 or any(w != v for w, v in zip(ws, widths)):
        raise ValueError(f"widths must hold at least two distinct integers >= 2, "
                         f"got {check.show(widths)}")
    try:
        sd = tuple(seeds)
    except TypeError:
        raise ValueError(f"seeds must be a non-empty sequence of integers, "
                         f"got {check.show(seeds)}") from None
    if not sd:
        raise ValueError("seeds must be a non-empty sequence of integers")
    lf = check.positive("loss_fraction", loss_fraction)
    if lf >= 1:
        raise ValueError(f"loss_fraction must be in (0, 1), got {check.show(loss_fraction)}")
    p = check.real("alpha_exponent", alpha_exponent)
    if tol is not None:
        tol = check.nonnegative("tol", tol)
    kind = check.choice("rd", rd, RD_KINDS)
    if kind == "copy" and init != "mirrored":
        raise ValueError(f"rd='copy' measures one copy of a mirrored init; got init={init!r}")
    opts = {"activation": activation, "data": data if isinstance(data, str) else "array",
            "n": n, "seeds": sd, "loss_fraction": lf, "alpha_exponent": p, "init": init,
            "rd": kind}
    runs = []
    for i, m in enumerate(ws):
        for j, s in enumerate(sd):
            if isinstance(data, str):
                net = TwoLayer(m, data, activation=activation, alpha=float(m) ** p, gamma=g,
                               gamma_prime=gp, init=init, seed=s, n=n, bias=bias)
            else:
                net = TwoLayer(m, data, y, activation=activation, alpha=float(m) ** p,
                               gamma=g, gamma_prime=gp, init=init, seed=s, bias=bias)
            runs.append((i, j, net))
    return {"g": g, "gp": gp, "ws": ws, "sd": sd, "lf": lf, "p": p, "tol": tol,
            "kind": kind, "opts": opts, "models": runs, "max_time": max_time, "rtol": rtol}


def _stops_ensemble(plans) -> list:
    """The runs of every plan measured by :func:`stop_rd_many`, all plans with one
    stopping setting in one call (so runs of one width from different cells share an
    ensemble); per plan, the list of ``(t*, RD)`` or :class:`NoStop` in run order."""
    settings: dict = {}
    for q, plan in enumerate(plans):
        settings.setdefault((plan["lf"], plan["max_time"], plan["rtol"], plan["kind"]),
                            []).append(q)
    out: list = [None] * len(plans)
    for (lf, max_time, rtol, kind), qs in settings.items():
        models = [net for q in qs for _i, _j, net in plans[q]["models"]]
        with quiet():
            res = stop_rd_many(models, lf, max_time=max_time, rtol=rtol, rd=kind)
        k = 0
        for q in qs:
            r = len(plans[q]["models"])
            out[q], k = res[k:k + r], k + r
    return out


def _rd_finish(plan, stops) -> RDSlope:
    """The :class:`RDSlope` of a plan's measured runs (``stops`` in run order; the first
    :class:`NoStop` makes it ``undetermined``, later runs are not counted, as in the
    per-member loop that stops there)."""
    g, gp, ws, sd, tol, opts = (plan[k] for k in ("g", "gp", "ws", "sd", "tol", "opts"))
    rd = np.full((len(ws), len(sd)), np.nan)
    ts = np.full_like(rd, np.nan)
    for (i, j, _net), stop in zip(plan["models"], stops):
        if isinstance(stop, NoStop):
            nan = float("nan")
            return RDSlope(g, gp, ws, rd, ts, nan, nan, nan, nan, "undetermined",
                           luo_label(g, gp), nan if tol is None else tol, opts,
                           np.full(len(sd), np.nan),
                           f"width {ws[i]}, seed {sd[j]}: {stop.reason}")
        ts[i, j], rd[i, j] = stop
    if not np.all(rd > 0):
        raise ValueError("RD is 0 at the stopping time for some width (the loss started "
                         "below loss_fraction?)")
    mean = np.exp(np.mean(np.log(rd), axis=1))
    slope, intercept, stderr, r2 = _fit(ws, mean)
    seed_slopes = np.array([_fit(ws, rd[:, j])[0] for j in range(len(sd))])
    if tol is None:
        tol = noise_band(seed_slopes)
    return RDSlope(g, gp, ws, rd, ts, slope, intercept, stderr, r2, slope_label(slope, tol),
                   luo_label(g, gp), tol, opts, seed_slopes)


# ---- taxonomy ----------------------------------------------------------------------------

def _accepts(obj) -> bool:
    from ..models.twolayer import TwoLayer

    return isinstance(obj, (TwoLayer, RDSlope))


def default_widths(m: int) -> tuple:
    """Widths for ``classify(model)``: m/4, m/2, m (even, at least 4)."""
    return tuple(sorted({max(4, 2 * ((m // k) // 2)) for k in (4, 2, 1)}))


def classify_two_layer(obj, widths=None, seeds=None, loss_fraction=0.05, tol=None,
                       **options) -> Regime:
    r"""Measured regime of a two-layer network from the width scaling of RD [LX].

    With an :class:`RDSlope`: its label (re-thresholded at ``tol`` when given). With a
    :class:`~exactdyn.TwoLayer`: :math:`(\gamma, \gamma')` are read from the model at its
    width (exact for a model built with ``gamma=``, ``gamma_prime=``; prefactors count
    otherwise), α's exponent as :math:`\log\alpha/\log m`, and :func:`rd_slope` runs on the
    model's data, activation, init and seed at ``widths`` (default m/4, m/2, m). The
    predicted label is :func:`~exactdyn.regimes.luo_label` of (γ, γ').
    """
    if isinstance(obj, RDSlope):
        res = obj
        if tol is not None and tol != res.tol and res.label != "undetermined":
            res = RDSlope(**{**res.__dict__, "label": slope_label(res.slope, tol), "tol": tol})
        return res.regime()
    if obj.beta1 is None or obj.width < 2:
        raise ValueError("classify needs a TwoLayer built with scales (beta1, beta2 or gamma, "
                         "gamma_prime) and width >= 2; from_init models have no (gamma, "
                         "gamma_prime)")
    return rd_slope(**_rd_arguments(obj, widths, seeds, loss_fraction, tol),
                    **options).regime()


def _rd_arguments(obj, widths, seeds, loss_fraction, tol) -> dict:
    """:func:`rd_slope`'s arguments for ``classify(obj)`` (see :func:`classify_two_layer`)."""
    if obj.beta1 is None or obj.width < 2:
        raise ValueError("classify needs a TwoLayer built with scales (beta1, beta2 or gamma, "
                         "gamma_prime) and width >= 2; from_init models have no (gamma, "
                         "gamma_prime)")
    g, gp = luo_exponents(obj.alpha, obj.beta1, obj.beta2, obj.width)
    p = math.log(obj.alpha) / math.log(obj.width)
    X = obj.X[:, :-1] if obj.bias else obj.X
    if obj.init == "mirrored" or widths is not None:
        ws = default_widths(obj.width) if widths is None else widths
    else:
        ws = tuple(sorted({max(2, obj.width // k) for k in (4, 2, 1)}))
    return dict(gamma=g, gamma_prime=gp, widths=ws, activation=obj.act.name, data=X, y=obj.y,
                seeds=(obj.seed,) if seeds is None else seeds, loss_fraction=loss_fraction,
                alpha_exponent=p, init=obj.init, bias=obj.bias, tol=tol)


def classify_two_layer_many(models, widths=None, seeds=None, loss_fraction=0.05, tol=None,
                            max_time=1e6, rtol=1e-9, rd="all", ensemble=None) -> list:
    r""":func:`classify_two_layer` of many :class:`~exactdyn.TwoLayer` models (the cells of a
    phase diagram) with all their runs integrated together: every run of every model with
    a smooth activation goes into ensembles grouped by width (:func:`stop_rd_many`), so a
    (γ, γ') diagram is three batched integrations (widths m/4, m/2, m) instead of three
    per cell. Kinked activations (or ``ensemble=False``) take :func:`rd_slope`'s
    per-member path, model by model.

    Returns
    -------
    list
        Per model, its :class:`Regime`, or the exception that classifying it raised (so
        one bad cell does not lose the others).
    """
    out: list = [None] * len(models)
    plans: dict = {}
    for q, obj in enumerate(models):
        try:
            if isinstance(obj, RDSlope):
                out[q] = classify_two_layer(obj, tol=tol)
                continue
            args = _rd_arguments(obj, widths, seeds, loss_fraction, tol)
            plan = _rd_plan(**args, n=10, max_time=max_time, rtol=rtol, rd=rd)
            if _use_ensemble(ensemble, plan["models"][0][2]):
                plans[q] = plan
            else:
                out[q] = rd_slope(**args, max_time=max_time, rtol=rtol, rd=rd,
                                  ensemble=False, progress=False).regime()
        except Exception as exc:  # recorded per model, the others go on
            out[q] = exc
    if plans:
        keys = list(plans)
        stops = _stops_ensemble([plans[q] for q in keys])
        for q, st in zip(keys, stops):
            try:
                out[q] = _rd_finish(plans[q], st).regime()
            except Exception as exc:  # noqa: BLE001 (as above)
                out[q] = exc
    return out


def _batches(model) -> bool:
    """Whether :func:`classify_two_layer_many` batches ``model``'s runs (phase diagrams)."""
    from ..models.twolayer import TwoLayer

    return isinstance(model, TwoLayer) and ensemble_applies(model)


TWO_LAYER = register_taxonomy(Taxonomy(
    name="two_layer", labels=LABELS, accepts=_accepts, classify=classify_two_layer,
    scores=SCORES, classify_many=classify_two_layer_many, batches=_batches), replace=True)

__all__ = ["PROTOCOL", "RD_KINDS", "NoStop", "RDSlope", "classify_two_layer",
           "classify_two_layer_many", "decade_ends", "ensemble_applies", "noise_band",
           "stop_rd_many",
           "rd_slope", "relative_distance", "slope_label", "stop_rd"]
