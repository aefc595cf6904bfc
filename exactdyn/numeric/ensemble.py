r"""Ensembles: many two-layer networks of one width integrated as one batched system.

Luo et al.'s RD slope (:func:`exactdyn.regimes.two_layer.rd_slope`) trains three widths ×
seeds per (γ, γ') cell, and a phase diagram hundreds of cells: hundreds of small
integrations, each paying ``solve_ivp``'s Python overhead per step for a right-hand side of
tens of microseconds. Here every member of an ensemble — networks that share width, data,
activation and output scale α, and differ in their initial weights (seeds, init scales
β₁, β₂, i.e. grid cells (γ, γ')) — is one row of a state matrix of shape
``(members, m + m·d)``, and one call of the generated right-hand side evaluates all rows.

**Right-hand side.** Lowered by :func:`exactdyn.numeric.indexed.lower_indexed` from the
same symbolic derivation as :class:`~exactdyn.numeric.layer_flow.LayerLoweredFlow`
(:func:`exactdyn.symbolic.twolayer.derive_two_layer_flow`), with ``a`` and ``W`` carrying
a leading member axis (the printer's batched axis):

.. math:: \dot a_{bk} = -\frac{1}{\alpha n}\sum_i e_{bi}\,\sigma(h_{bki}),\qquad
          \dot w_{bk} = -\frac{a_{bk}}{\alpha n}\sum_i e_{bi}\,\sigma'(h_{bki})\,x_i,

:math:`h_{bki} = w_{bk}\cdot x_i`, :math:`e_{bi} = \frac1\alpha\sum_k a_{bk}\sigma(h_{bki})
- y_i` for member b. No equation is written twice.

**Grouping rule: by width, not padded.** Members of one ensemble have one width (the
generated code's shapes), one α (a scalar of the source; α = m^p differs across widths),
one data set and one activation. :func:`group_by_structure` sorts models into such groups.
Padding narrower members with zero neurons would be exact for σ(0) = 0 (a zero neuron stays
zero) but costs compute: classify's widths m/4, m/2, m padded to m evaluate 3m neurons
instead of 1.75m, and α still differs per width.

**Per-member error control.** :func:`dop853_members` is Dormand & Prince's DOP853
(Hairer, Nørsett & Wanner, *Solving ODEs I*, 2nd ed., §II.10; scipy's tableau, error
estimate and step-size controller, :mod:`scipy.integrate._ivp.rk`) vectorized over members:
every member has its own time, step size, error norm (over its own components only) and
accept/reject decision, so one stiff member takes small steps without shrinking anyone
else's; a member that is finished leaves the batch. Output times are hit by shortening a
member's step to the next one (no dense output is needed).

**Smooth activations only.** Kinked activations (ReLU) integrate segment by segment
between activation-pattern changes, with a per-member sliding set and event location
(:mod:`exactdyn.numeric.kinks`); batching those events is not done here, so
:class:`TwoLayerEnsemble` refuses piecewise activations and their callers keep the
per-member path.
"""

from __future__ import annotations

import types

import numpy as np

from .. import diskcache
from ..errors import IntegrationError
from . import runge_kutta as rk
from . import stored
from .indexed import KIND_ORDER, TIME, lower_indexed

_SOURCES: dict = {}

#: Step-size controller of scipy's explicit Runge–Kutta methods (``scipy.integrate._ivp.rk``,
#: :mod:`exactdyn.numeric.runge_kutta`).
SAFETY, MIN_FACTOR, MAX_FACTOR = 0.9, 0.2, 10.0
#: DOP853's error estimator is of order 7: the step factor is err^(-1/8).
ERROR_EXPONENT = -1.0 / 8.0


def batched_sources() -> dict:
    """Generated sources of the batched rhs and observables (``a``: (B, m), ``W``:
    (B, m, d)), derived once and kept on disk like the per-model ones."""
    if not _SOURCES:
        _SOURCES.update(diskcache.cached("twolayer_ensemble",
                                          "exactdyn.numeric.ensemble.batched_sources",
                                          _derive_batched, stored.encode_mapping,
                                          stored.decode_mapping))
    return _SOURCES


def _derive_batched() -> dict:
    from ..symbolic import twolayer as st

    flow = st.derive_two_layer_flow()
    arrays = (st.A, st.W, st.XS, st.YS)
    funcs = {st.SIGMA: "_sigma", st.DSIGMA: "_dsigma"}
    opts = {"batched": (st.A, st.W), "order": (TIME,) + KIND_ORDER}
    return {"rhs": lower_indexed([flow.rhs[st.A], flow.rhs[st.W]], arrays, st.INDEX_KINDS,
                                 funcs, "rhs", **opts),
            "obs": lower_indexed([flow.observables["output"], flow.observables["loss"]],
                                 arrays, st.INDEX_KINDS, funcs, "observables", **opts)}


#: The batched reductions the printer emits for the two-layer flow, as batched matrix
#: products (``t`` the member axis, k neuron, i sample, l feature): numpy's einsum runs
#: these contractions in its generic loop (three operands: no BLAS at all), ~3x slower.
_MATMUL_FORMS = {
    "tkl,il->tki": lambda W, X: np.matmul(W, X.T),
    "tk,tki->ti": lambda a, s: np.matmul(a[:, None, :], s)[:, 0, :],
    "ti,tki->tk": lambda e, s: np.matmul(s, e[:, :, None])[:, :, 0],
    "ti,il,tki->tkl": lambda e, X, d: np.matmul(d * e[:, None, :], X),
}


def _einsum(spec, *operands, optimize=False):
    """``np.einsum`` for the generated batched code: the two-layer flow's contractions as
    matrix products (:data:`_MATMUL_FORMS`), any other without numpy's path search
    (``optimize=True`` costs more than these small contractions themselves)."""
    form = _MATMUL_FORMS.get(spec)
    if form is not None:
        return form(*operands)
    return np.einsum(spec, *operands, optimize=False)


#: ``np`` of the generated batched code: numpy with a path-search-free einsum.
_NP = types.SimpleNamespace(**{k: getattr(np, k) for k in ("sum", "eye", "newaxis")},
                            einsum=_einsum)


def structure_key(model) -> tuple:
    """What members of one ensemble share: width, α, activation, data (bytes of X, y)."""
    return (model.width, float(model.alpha), model.act.name, model.X.shape,
            model.X.tobytes(), model.y.tobytes())


def group_by_structure(models) -> list:
    """Indices of ``models`` grouped by :func:`structure_key` (the grouping rule of the
    module docstring), in order of first appearance."""
    groups: dict = {}
    for i, mdl in enumerate(models):
        groups.setdefault(structure_key(mdl), []).append(i)
    return list(groups.values())


class TwoLayerEnsemble:
    """Batched numeric callables for :class:`~exactdyn.TwoLayer` models of one structure.

    Parameters
    ----------
    models : sequence of TwoLayer
        At least one; all of one width, α, data and smooth activation
        (:func:`structure_key`). Their initial weights may differ freely.

    Raises
    ------
    ValueError
        When ``models`` is empty, mixes structures, or has a piecewise (kinked) activation.
    TypeError
        When a member is not a :class:`~exactdyn.TwoLayer`.
    """

    def __init__(self, models):
        from ..models.twolayer import TwoLayer

        models = list(models)
        if not models:
            raise ValueError("models must hold at least one TwoLayer, got none")
        for mdl in models:
            if not isinstance(mdl, TwoLayer):
                raise TypeError(f"models must be TwoLayer instances, got "
                                f"{type(mdl).__name__}")
        key = structure_key(models[0])
        for mdl in models[1:]:
            if structure_key(mdl) != key:
                raise ValueError("models of one ensemble must share width, alpha, activation "
                                 f"and data; got {models[0]!r} and {mdl!r} (group them with "
                                 "group_by_structure)")
        first = models[0]
        if first.act.piecewise:
            raise ValueError(f"models: activation {first.act.name!r} has kinks; ensembles "
                             "integrate smooth activations only (use the per-member path)")
        self.models = models
        self.m, self.d = first.width, first.d_in
        self.size = self.m * (1 + self.d)
        self.X, self.y, self.alpha, self.n = first.X, first.y, first.alpha, first.n
        src = batched_sources()
        sig, dsig = first.act.numeric()
        ns = {"_sigma": sig, "_dsigma": dsig, "np": _NP}
        self._rhs = src["rhs"].function(ns)
        self._obs = src["obs"].function(ns)
        #: Packed initial states, one row per member.
        self.y0 = np.stack([np.concatenate([mdl.a0, np.ravel(mdl.W0)]) for mdl in models])

    def __len__(self) -> int:
        return len(self.models)

    def unpack(self, Y):
        """``(a, W)`` of packed states ``Y`` (..., m + m·d): shapes (..., m), (..., m, d)."""
        Y = np.asarray(Y)
        return Y[..., :self.m], Y[..., self.m:].reshape(Y.shape[:-1] + (self.m, self.d))

    def rhs(self, Y):
        """Right-hand sides of the members whose states are the rows of ``Y`` (B, size)."""
        a, W = self.unpack(Y)
        ra, rw = self._rhs(a, W, self.X, self.y, self.alpha, self.n)
        out = np.empty_like(Y)
        out[:, :self.m] = ra
        out[:, self.m:] = rw.reshape(len(Y), -1)
        return out

    def observe(self, Y):
        """``(output (B, n), loss (B,))`` of the rows of ``Y``."""
        a, W = self.unpack(Y)
        out, loss = self._obs(a, W, self.X, self.y, self.alpha, self.n)
        return out, np.asarray(loss, float)

    def loss(self, Y):
        return self.observe(Y)[1]

    def default_atol(self, rtol: float) -> np.ndarray:
        """Per-member absolute tolerance ``rtol × RMS(y0)`` (1 for a zero state), as
        :meth:`~exactdyn.numeric.layer_flow.LayerLoweredFlow.integrate`."""
        scale = np.sqrt(np.mean(self.y0**2, axis=1))
        return rtol * np.where(scale > 0, scale, 1.0)


# ---- DOP853 over members ------------------------------------------------------------------

def _tableau():
    # Hairer's DOP853 tableau, as exactdyn's port of scipy's stepper holds it (no import of
    # scipy.integrate).
    s = rk.DOP853_N_STAGES
    return rk.DOP853_A[:s, :s], rk.DOP853_B, rk.DOP853_C[:s], rk.DOP853_E3, rk.DOP853_E5, s


def _rms(x):
    return np.sqrt(np.mean(x * x, axis=-1))


def initial_steps(fun, Y0, F0, interval, rtol, atol):
    """Per-member first step: scipy's ``select_initial_step`` (Hairer, Nørsett & Wanner,
    §II.4) with order 7, vectorized over the rows of ``Y0``."""
    scale = atol[:, None] + np.abs(Y0) * rtol
    d0, d1 = _rms(Y0 / scale), _rms(F0 / scale)
    h0 = np.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / np.where(d1 > 0, d1, 1.0))
    h0 = np.minimum(h0, interval)
    F1 = fun(Y0 + h0[:, None] * F0)
    d2 = _rms((F1 - F0) / scale) / h0
    big = np.maximum(d1, d2)
    h1 = np.where(big <= 1e-15, np.maximum(1e-6, h0 * 1e-3),
                  (0.01 / np.where(big > 0, big, 1.0)) ** (1.0 / 8.0))
    return np.minimum(np.minimum(100 * h0, h1), interval)


def dop853_step(fun, Y, F, h, rtol, atol):
    """One DOP853 step of every row: ``(Y_new, F_new, error_norm)``, each row with its own
    step ``h`` (B,) and absolute tolerance ``atol`` (B,). ``F`` = ``fun(Y)``. The error
    norm is DOP853's (scipy's ``DOP853._estimate_error_norm``: the 5th-order estimate
    damped by the 3rd-order one), per row."""
    A, Bw, _C, E3, E5, s = _TABLEAU
    K = np.empty((s + 1,) + Y.shape)
    K[0] = F
    hc = h[:, None]
    for i in range(1, s):
        dy = np.tensordot(A[i, :i], K[:i], axes=1)
        K[i] = fun(Y + hc * dy)
    Y_new = Y + hc * np.tensordot(Bw, K[:s], axes=1)
    F_new = fun(Y_new)
    K[s] = F_new
    scale = atol[:, None] + np.maximum(np.abs(Y), np.abs(Y_new)) * rtol
    err5 = np.tensordot(E5, K, axes=1) / scale
    err3 = np.tensordot(E3, K, axes=1) / scale
    e5 = np.sum(err5 * err5, axis=1)
    e3 = np.sum(err3 * err3, axis=1)
    denom = e5 + 0.01 * e3
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(denom > 0, np.abs(h) * e5 / np.sqrt(denom * Y.shape[1]), 0.0)
    return Y_new, F_new, norm


_TABLEAU = _tableau()


def step_factor(norm, rejected_before):
    """scipy's controller: the factor for the next step after an accepted step (error norm
    < 1; capped at 1 right after a rejection) or a rejected one."""
    with np.errstate(divide="ignore"):
        grow = np.where(norm == 0, MAX_FACTOR,
                        np.minimum(MAX_FACTOR, SAFETY * norm ** ERROR_EXPONENT))
        shrink = np.maximum(MIN_FACTOR, SAFETY * norm ** ERROR_EXPONENT)
    grow = np.where(rejected_before, np.minimum(1.0, grow), grow)
    return np.where(norm < 1, grow, shrink)


class MemberStepper:
    """The state of a per-member DOP853 integration of an ensemble: time ``t``, states
    ``Y``, right-hand sides ``F``, next step sizes ``h``, all per member (rows)."""

    def __init__(self, ensemble: TwoLayerEnsemble, rtol: float, atol=None,
                 first_interval=1.0, max_steps: int = 10_000_000):
        self.ens = ensemble
        self.rtol = float(rtol)
        B = len(ensemble)
        self.atol = (ensemble.default_atol(rtol) if atol is None
                     else np.broadcast_to(np.asarray(atol, float), (B,)).copy())
        self.Y = ensemble.y0.copy()
        self.t = np.zeros(B)
        self.F = ensemble.rhs(self.Y)
        interval = np.broadcast_to(np.asarray(first_interval, float), (B,))
        self.h = initial_steps(ensemble.rhs, self.Y, self.F, interval, self.rtol, self.atol)
        self.rejected = np.zeros(B, bool)
        self.steps = np.zeros(B, int)
        self.max_steps = max_steps
        self.nfev = 2 * B  # member right-hand sides evaluated (F0, initial step)

    def advance(self, idx, bound):
        """Try one step of the members ``idx`` (no step past ``bound`` (len(idx),));
        returns the mask (over idx) of the accepted ones, whose t, Y, F are updated."""
        t, h = self.t[idx], self.h[idx]
        h_try = np.minimum(h, bound - t)
        tiny = 10 * np.abs(np.nextafter(t, np.inf) - t)
        if np.any(h_try < tiny):
            b = int(idx[np.argmax(h_try < tiny)])
            raise IntegrationError(f"ensemble member {b}: step size collapsed", float(self.t[b]))
        Y_new, F_new, norm = dop853_step(self.ens.rhs, self.Y[idx], self.F[idx], h_try,
                                         self.rtol, self.atol[idx])
        self.nfev += 12 * len(idx)
        ok = norm < 1
        finite = np.all(np.isfinite(Y_new), axis=1) & np.all(np.isfinite(F_new), axis=1)
        if np.any(ok & ~finite):
            b = int(idx[np.argmax(ok & ~finite)])
            raise IntegrationError(f"ensemble member {b}: state is no longer finite",
                                   float(self.t[b]))
        fac = step_factor(norm, self.rejected[idx])
        # A step shortened to reach an output time says nothing about the natural step:
        # keep the longer one unless the error asked for less.
        self.h[idx] = np.where(ok & (h_try < h), np.maximum(h, h_try * fac), h_try * fac)
        self.h[idx] = np.where(np.isfinite(self.h[idx]), self.h[idx], h)
        self.rejected[idx] = ~ok
        acc = idx[ok]
        self.t[acc] = np.where(h_try[ok] == bound[ok] - t[ok], bound[ok], t[ok] + h_try[ok])
        self.Y[acc] = Y_new[ok]
        self.F[acc] = F_new[ok]
        self.steps[idx] += 1
        if np.any(self.steps[idx] > self.max_steps):
            b = int(idx[np.argmax(self.steps[idx] > self.max_steps)])
            raise IntegrationError(f"ensemble member {b}: more than max_steps="
                                   f"{self.max_steps} steps", float(self.t[b]))
        return ok


def solve_ensemble(ensemble: TwoLayerEnsemble, times, rtol=1e-10, atol=None):
    """States of every member at the output ``times`` (increasing, from 0): an array of
    shape (len(times), B, size), and statistics (``nfev``: member right-hand sides,
    ``steps`` per member)."""
    times = np.asarray(times, float)
    if times.ndim != 1 or times.size == 0 or times[0] < 0 or np.any(np.diff(times) < 0):
        raise ValueError(f"times must be a non-empty increasing 1-D array from t >= 0, got "
                         f"{times!r}")
    B = len(ensemble)
    st = MemberStepper(ensemble, rtol, atol, first_interval=max(float(times[-1]), 1e-300))
    out = np.empty((times.size, B, ensemble.size))
    k = np.zeros(B, int)  # the next output index of each member

    def record():
        while True:
            hit = (k < times.size) & (st.t >= times[np.minimum(k, times.size - 1)])
            if not np.any(hit):
                return
            rows = np.flatnonzero(hit)
            out[k[rows], rows] = st.Y[rows]
            k[rows] += 1

    record()
    while np.any(k < times.size):
        idx = np.flatnonzero(k < times.size)
        st.advance(idx, times[k[idx]])
        record()
    return out, {"nfev": st.nfev, "steps": st.steps.copy(), "rtol": rtol,
                 "atol": st.atol.copy()}


def first_crossing(ensemble: TwoLayerEnsemble, fraction, checkpoints, on_checkpoint,
                   rtol=1e-9, atol=None):
    r"""Integrate each member until its loss first reaches ``fraction`` × its initial loss.

    Gradient flow never increases the loss, so the first accepted step whose end is at or
    below the target brackets the crossing; the crossing time :math:`t^*` is then found
    by a safeguarded Newton iteration on :math:`g(\tau) = \log L(t_n + \tau) - \log L^*`
    (first iterate: the secant through the bracket's ends), each iterate a DOP853 step of
    length τ from the bracket's start (no longer than the accepted step, so within
    tolerance), with :math:`g' = \dot L/L = -\lVert\dot\theta\rVert^2/L` (gradient flow:
    :math:`\dot L = -\lVert\nabla L\rVert^2`); bisection when Newton leaves the bracket.
    The iterates of all members that are locating a crossing are one batched step, taken
    beside the running members' steps.

    Parameters
    ----------
    fraction : float or array (B,)
        Stopping loss over initial loss, per member.
    checkpoints : sequence of float
        Increasing times each member's steps stop at (the decade ends of
        :func:`~exactdyn.regimes.two_layer.stop_rd`); the last one ends the integration.
    on_checkpoint : callable(member, k, t, loss_ratio) -> object or None
        Called at the k-th checkpoint a member reaches without crossing; a non-``None``
        return stops the member with that object as its result (a plateau rule).

    Returns
    -------
    list
        Per member: ``(t*, state at t*)``, or ``on_checkpoint``'s object (``None`` if the
        last checkpoint passed without either).
    dict
        Statistics: ``nfev`` (member right-hand sides), ``steps`` per member.
    """
    cps = np.asarray(checkpoints, float)
    if cps.ndim != 1 or cps.size == 0 or cps[0] <= 0 or np.any(np.diff(cps) <= 0):
        raise ValueError(f"checkpoints must be increasing positive times, got {checkpoints!r}")
    B = len(ensemble)
    st = MemberStepper(ensemble, rtol, atol, first_interval=float(cps[0]))
    L0 = ensemble.loss(st.Y)
    L = L0.copy()  # loss at each member's current state
    log_target = np.log(np.broadcast_to(np.asarray(fraction, float), (B,)) * L0)
    results: list = [None] * B
    running = L0 > np.exp(log_target)
    for b in np.flatnonzero(~running):
        results[b] = (0.0, st.Y[b].copy())
    cp = np.zeros(B, int)
    # Per member locating a crossing: the bracket's start (time, state, rhs), the bracket
    # [lo, hi] in τ, the current iterate τ and the iterations taken.
    locating = np.zeros(B, bool)
    base_t = np.zeros(B)
    base_Y, base_F = np.empty_like(st.Y), np.empty_like(st.Y)
    lo, hi, tau = np.zeros(B), np.zeros(B), np.zeros(B)
    iters = np.zeros(B, int)
    eps = np.finfo(float).eps
    while np.any(running) or np.any(locating):
        loc = np.flatnonzero(locating)
        idx = np.flatnonzero(running)
        if idx.size:
            t_prev, Y_prev, F_prev, L_prev = st.t[idx], st.Y[idx], st.F[idx], L[idx]
            ok = st.advance(idx, cps[cp[idx]])
            acc = idx[ok]
            if acc.size:
                L[acc] = ensemble.loss(st.Y[acc])
                crossed = np.log(L[acc]) <= log_target[acc]
                new = acc[crossed]
                if new.size:
                    # st.Y etc. were replaced by new arrays rows-wise: the previous rows
                    # are the bracket's start.
                    sel = np.flatnonzero(ok)[crossed]
                    base_t[new], base_Y[new], base_F[new] = t_prev[sel], Y_prev[sel], F_prev[sel]
                    g0 = np.log(L_prev[sel]) - log_target[new]
                    g1 = np.log(L[new]) - log_target[new]
                    lo[new], hi[new] = 0.0, st.t[new] - t_prev[sel]
                    frac = np.where(g0 > g1, g0 / np.where(g0 > g1, g0 - g1, 1.0), 1.0)
                    tau[new] = hi[new] * np.clip(frac, 0.0, 1.0)
                    iters[new] = 0
                    locating[new], running[new] = True, False
                for b in acc[~crossed & (st.t[acc] >= cps[cp[acc]])]:
                    stop = on_checkpoint(int(b), int(cp[b]), float(st.t[b]), float(L[b] / L0[b]))
                    if stop is not None or cp[b] + 1 >= cps.size:
                        results[b] = stop
                        running[b] = False
                    else:
                        cp[b] += 1
        if loc.size:
            _newton_round(ensemble, st, loc, base_t, base_Y, base_F, lo, hi, tau, iters,
                          log_target, results, locating, eps)
    return results, {"nfev": st.nfev, "steps": st.steps.copy()}


def _newton_round(ensemble, st, loc, base_t, base_Y, base_F, lo, hi, tau, iters, log_target,
                  results, locating, eps):
    """One batched iterate of the crossing search of the members ``loc``
    (:func:`first_crossing`); finished members get their result and leave ``locating``."""
    at_start = tau[loc] <= 0
    for b in loc[at_start]:  # the crossing is the bracket's start (to rounding)
        results[b] = (float(base_t[b]), base_Y[b].copy())
        locating[b] = False
    loc = loc[~at_start]
    if not loc.size:
        return
    Yt, Ft, _norm = dop853_step(ensemble.rhs, base_Y[loc], base_F[loc], tau[loc], st.rtol,
                                st.atol[loc])
    st.nfev += 12 * loc.size
    Lt = ensemble.loss(Yt)
    with np.errstate(divide="ignore"):
        g = np.log(Lt) - log_target[loc]
    iters[loc] += 1
    t_abs = np.maximum(1.0, base_t[loc] + tau[loc])
    below = g <= 0
    lo[loc] = np.where(below, lo[loc], tau[loc])
    hi[loc] = np.where(below, tau[loc], hi[loc])
    slope = -np.sum(Ft * Ft, axis=1) / np.where(Lt > 0, Lt, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        nxt = np.where(slope < 0, tau[loc] - g / slope, np.nan)
    inside = (nxt > lo[loc]) & (nxt < hi[loc])
    nxt = np.where(inside, nxt, 0.5 * (lo[loc] + hi[loc]))
    done = ((np.abs(g) <= 1e-12) | (hi[loc] - lo[loc] <= 4 * eps * t_abs)
            | (np.abs(nxt - tau[loc]) <= 2 * eps * t_abs) | (iters[loc] >= 60))
    for q in np.flatnonzero(done):
        b = loc[q]
        results[b] = (float(base_t[b] + tau[b]), Yt[q].copy())
        locating[b] = False
    tau[loc[~done]] = nxt[~done]


__all__ = ["TwoLayerEnsemble", "batched_sources", "dop853_step", "first_crossing",
           "group_by_structure", "solve_ensemble", "structure_key"]
