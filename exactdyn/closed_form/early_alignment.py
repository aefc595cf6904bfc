r"""Early alignment of ReLU neurons: the region-by-region closed form (MATH.md §4).

Boursier & Flammarion, "Early alignment in two-layer networks training is a two-edged
sword" (arXiv:2401.10791, 2024), after Maennel, Bousquet & Gelly (2018). Their abstract
(the part read; docs/papers/boursier_flammarion.md): "For small initialisation and one
hidden ReLU layer networks, the early stage of the training dynamics leads to an alignment
of the neurons towards key directions." The extremal-vector criterion below (D(u) ∥ u,
attracting) is the project's reading of "key directions"; their definition was not read.
While the network output is negligible (small init, early times) the residual is
:math:`e_i \approx -y_i` and every neuron of
:math:`f(x) = \frac1\alpha\sum_k a_k\sigma(w_k\cdot x)` moves on its own. For a
piecewise-linear activation with its kink at 0, :math:`\sigma(h) = c_+h` for
:math:`h > 0` and :math:`c_-h` otherwise (ReLU: :math:`c_+ = 1, c_- = 0`; σ'(0) = c₋),

.. math::

    D(u) = \frac1n\sum_i y_i\,\sigma'(u\cdot x_i)\,x_i,\qquad
    \Phi(u) = \frac1n\sum_i y_i\,\sigma(u\cdot x_i) = \langle D(u), u\rangle,

(bias folded into x), and the early-phase flow is

.. math::

    \dot w_k = \frac{a_k}{\alpha}D(w_k),\qquad \dot a_k = \frac1\alpha\langle D(w_k), w_k\rangle.

Inside one activation region (the signs of :math:`w_k\cdot x_i` fixed) D is a constant
vector, so the flow is **linear** and solved exactly like the multiplicity-1 form with z
replaced by the region's D: with :math:`s = \|D\|(t - t_0)/\alpha`,
:math:`P = \langle\hat D, w_k\rangle`,

.. math::

    a_k(t) = a_k(t_0)\cosh s + P(t_0)\sinh s,\qquad P(t) = P(t_0)\cosh s + a_k(t_0)\sinh s,

and the part of :math:`w_k` orthogonal to :math:`\hat D` is frozen. (For a balanced neuron,
:math:`a_k = \pm\|w_k\|` throughout, this is :math:`\tan(\theta/2) =
\tan(\theta_0/2)e^{-(a/\|w\|)\|D\|(t-t_0)/\alpha}` for the angle θ between
:math:`w_k` and D.) Each :math:`h_i(s) = w_k(t)\cdot x_i = C_i + \hat D\cdot x_i\,(P_0\cosh s
+ a_0\sinh s)` is :math:`A\cosh s + B\sinh s + C`; with :math:`e^s = 1 + \epsilon` its zeros
solve the quadratic

.. math::

    (A + B)\epsilon^2 + 2(h_i(0) + B)\epsilon + 2h_i(0) = 0,
    \qquad A = \hat D\cdot x_i\,P_0,\ B = \hat D\cdot x_i\,a_0,

solved in closed form (the cancellation-free pair of roots), so the **region-crossing
times** :math:`t = t_0 + \alpha\log(1+\epsilon)/\|D\|` are exact, not found by stepping.
At a crossing the neuron switches region and the next segment starts there.

**Boundaries** (Filippov sliding). When the flows on both sides of a boundary
:math:`w\cdot x_i = 0` push the neuron into it (:math:`\dot h_i > 0` on the inactive side,
:math:`< 0` on the active side), the neuron slides along it with Filippov's convex
combination :math:`\sigma'(h_i) = c_- + \lambda(c_+ - c_-)`, λ ∈ [0, 1] chosen so that
:math:`x_i\cdot\dot w_k = 0`: the effective :math:`D_\mathrm{eff}` is the region's D
projected onto the orthogonal complement of the sliding :math:`x_i`. It is constant in a
segment (λ depends only on the region), the same closed form applies with
:math:`D_\mathrm{eff}` (:math:`\dot a = \langle D_\mathrm{eff}, w\rangle/\alpha` since
:math:`w \perp x_i` there), and sliding on :math:`x_i` ends at a later crossing of another
sample when λ leaves [0, 1] (λ > 1: active, λ < 0: inactive). This is the rule the full
flow's integrator (:mod:`exactdyn.numeric.twolayer`) applies (for ReLU exactly; for leaky
ReLU the integrator combines :math:`c_- + \lambda c_+`, so its λ range differs, not the
sliding velocity). A neuron that starts exactly on a boundary and is not sliding goes to
the side the flow leaves to; where the flow leaves to both sides (a repelling boundary, a
non-unique solution) it is put on the active side. In the full flow a sliding
:math:`h_{ki}` stays within rounding of 0 and its sign flickers; the closed form keeps it
at 0 (to rounding of the crossing state). In 2-D inputs a sliding
neuron's direction is frozen on the boundary line: a stationary direction of the direction
flow that is not an extremal vector in the strict sense (:func:`stationary_directions_2d`
lists both).

**Ends.** A neuron stops moving in a dead region (no active point: D = 0, ReLU), converges
to an extremal vector (:math:`D(u) \parallel u`, u = ±D̂ inside its own region: no later
crossing), or to a sliding boundary direction; :attr:`AlignmentPath.status` says which.

This is the **early-phase** flow, not the full flow: the neglected output is
:math:`f = O(m\lambda^2)` for init scale λ, so at fixed t the weights and the crossing
times agree with the full flow to a relative :math:`O(\lambda^2)` (tests fit the order).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _validation as check
from ..errors import IntegrationError

#: Neuron end states (:attr:`AlignmentPath.status`).
STATUSES = ("extremal", "boundary", "dead", "stationary", "moving", "vanishing", "truncated")


def slopes(act) -> tuple:
    r"""``(c_plus, c_minus)`` of a piecewise-linear activation with its kink at 0.

    Raises ValueError unless :math:`\sigma(h) = c_+h` for h > 0 and :math:`c_-h` for
    h < 0 (ReLU, leaky ReLU, abs(x), ...). A named activation's slopes come from its
    float64 table (:meth:`~exactdyn.models.activations.Activation.kink_branches`, no
    sympy); any other's from its sympy branches."""
    if not act.piecewise:
        raise ValueError(f"activation must be piecewise linear with its kink at 0 (relu, "
                         f"leaky_relu) for early alignment; got {check.show(act.name)}")
    if act.tabulated:
        found = act.kink_branches()[2]
        if found is None:
            raise ValueError(f"activation must be piecewise linear with its kink at 0 (relu, "
                             f"leaky_relu) for early alignment; {act.name!r} is not")
        return found[0], found[1]
    import sympy as sp

    from ..models.activations import X

    xp, xn = sp.Symbol("x_p", positive=True), sp.Symbol("x_n", negative=True)
    expr = act.expr.rewrite(sp.Piecewise)
    out = []
    for sym in (xp, xn):
        branch = sp.simplify(expr.subs(X, sym))
        c = sp.simplify(branch / sym)
        if c.free_symbols or branch.has(sp.Piecewise):
            raise ValueError(f"activation must be piecewise linear with its kink at 0 (relu, "
                             f"leaky_relu) for early alignment; {act.name!r} is not")
        out.append(float(c))
    return out[0], out[1]


def applies(model) -> tuple:
    """``(ok, reason)``: the early-alignment form needs a piecewise-linear σ (kink at 0)."""
    try:
        slopes(model.act)
    except ValueError as exc:
        return False, str(exc)
    return True, ""


def asymptotic_order(model) -> int:
    r"""Order p = 2 in the init scale λ of the early-alignment form's error against the
    full flow: σ is exactly linear in each region, so the only neglected term is the
    output :math:`f = O(m\lambda^2)` in the residual, a relative :math:`O(\lambda^2)` at
    fixed t, crossing times included (:func:`exactdyn.verify` fits it; Boursier &
    Flammarion, arXiv:2401.10791)."""
    return 2


def _unit(name, u, d):
    u = check.finite_vector(name, u)
    if u.shape != (d,):
        raise ValueError(f"{name} must be a vector of length d_in = {d}, got shape {u.shape}")
    return u


def activation_region(model, u) -> np.ndarray:
    r"""The activation pattern :math:`1\{u\cdot x_i > 0\}` (bool, one per sample)."""
    u = _unit("u", u, model.d_in)
    return model.X @ u > 0


def d_vector(model, u) -> np.ndarray:
    r""":math:`D(u) = \frac1n\sum_i y_i\sigma'(u\cdot x_i)x_i` (σ'(0) = c₋; bias included)."""
    cp, cm = slopes(model.act)
    g = np.where(activation_region(model, u), cp, cm)
    return (model.y * g) @ model.X / model.n


def phi(model, u) -> float:
    r""":math:`\Phi(u) = \frac1n\sum_i y_i\sigma(u\cdot x_i)` (BF's growth rate of a neuron)."""
    u = _unit("u", u, model.d_in)
    cp, cm = slopes(model.act)
    h = model.X @ u
    return float(model.y @ np.where(h > 0, cp * h, cm * h) / model.n)


def proofs() -> dict:
    r"""The identities the closed form rests on, proven in sympy (each residual is 0).

    - the segment solution solves :math:`\dot a = \|D\|P/\alpha`,
      :math:`\dot P = \|D\|a/\alpha` (the region's linear flow along :math:`\hat D`);
    - :math:`a^2 - P^2` is constant along it (with the frozen orthogonal part:
      :math:`a^2 - \|w\|^2` is conserved);
    - crossing quadratic: with :math:`e^s = 1+\epsilon`,
      :math:`2(1+\epsilon)(A\cosh s + B\sinh s + C) = (A+B)\epsilon^2 + 2(A+B+C)\epsilon
      + 2(A+C)`, and :math:`h(0) = A + C`, :math:`h'(0) = B`.

    Returns
    -------
    dict of str -> sympy expression (all simplify to 0)
    """
    import sympy as sp

    t, nd, al = sp.symbols("t D alpha", positive=True)
    a0, p0, A, B, C, e = sp.symbols("a_0 P_0 A B C epsilon", real=True)
    s = nd * t / al
    a = a0 * sp.cosh(s) + p0 * sp.sinh(s)
    P = p0 * sp.cosh(s) + a0 * sp.sinh(s)
    S = sp.log(1 + e)
    h = (A * sp.cosh(S) + B * sp.sinh(S) + C).rewrite(sp.exp)
    quad = (A + B) * e**2 + 2 * (A + B + C) * e + 2 * (A + C)
    def zero(expr):  # exponential form, then a rational function: cheap and decisive
        return sp.cancel(sp.expand(expr.rewrite(sp.exp)))

    return {
        "a(t) solves adot = |D| P / alpha": zero(sp.diff(a, t) - nd * P / al),
        "P(t) solves Pdot = |D| a / alpha": zero(sp.diff(P, t) - nd * a / al),
        "a^2 - P^2 is constant": zero(a**2 - P**2 - (a0**2 - p0**2)),
        "crossing quadratic in e^s - 1": zero(2 * (1 + e) * h - quad),
    }


# ---- one neuron, region by region ------------------------------------------------------

@dataclass
class Segment:
    r"""One piece of a neuron's path: the closed form with a constant :math:`D_\mathrm{eff}`
    on :math:`[t_0, t_1)`, starting from ``a0``, ``w0``."""

    neuron: int
    t0: float
    t1: float
    a0: float
    w0: np.ndarray
    D: np.ndarray
    active: np.ndarray
    sliding: np.ndarray
    alpha: float = 1.0

    def at(self, t):
        """``(a, W)`` at times ``t`` (array) inside the segment."""
        t = np.asarray(t, float)
        nd = float(np.linalg.norm(self.D))
        if nd == 0.0:
            return np.full(t.shape, self.a0), np.broadcast_to(self.w0, t.shape + self.w0.shape)
        dh = self.D / nd
        return _evolve(self.a0, self.w0, dh, nd * (t - self.t0) / self.alpha)


def _evolve(a0, w0, dhat, s):
    s = np.asarray(s, float)
    p0 = float(w0 @ dhat)
    ch, sh = np.cosh(s), np.sinh(s)
    a = a0 * ch + p0 * sh
    dp = p0 * (ch - 1.0) + a0 * sh  # P(s) - P(0), without cancellation at small s
    return a, w0 + dp[..., None] * dhat


@dataclass
class Crossing:
    """A region change of one neuron: sample ``sample`` crosses at time ``t``; ``kind``
    is ``on`` (becomes active), ``off`` (inactive), ``slide`` (starts sliding on the
    boundary), ``release-on`` / ``release-off`` (sliding ends)."""

    t: float
    neuron: int
    sample: int
    kind: str

    def as_tuple(self):
        return (float(self.t), int(self.neuron), int(self.sample), self.kind)


@dataclass
class AlignmentPath:
    """The piecewise closed form of every neuron's early-phase path.

    Attributes
    ----------
    segments : list of list of Segment
        Per neuron, the pieces in time order.
    crossings : list of Crossing
        All region changes, sorted by time.
    status : list of str
        Per neuron, its state at ``t_end``: ``extremal`` (in the region of its limit
        direction ±D̂, no later crossing), ``boundary`` (sliding, no later crossing),
        ``dead`` (no active point, frozen), ``stationary`` (D = 0 with active points),
        ``vanishing`` (a₀ + P₀ = 0: a and the D̂-part decay), ``moving`` (a later crossing
        is due after ``t_end``), ``truncated`` (``max_crossings`` reached; its path is
        known only up to its last crossing, :attr:`next_crossing`).
    limit : ndarray, shape (m, d_in)
        Per neuron, the unit direction its current segment converges to as t → ∞
        (for ``moving`` neurons: where it would go if no region changed).
    t_end : float
    """

    model: object
    segments: list
    crossings: list
    status: list
    limit: np.ndarray
    t_end: float
    next_crossing: list = field(default_factory=list)

    def state(self, times):
        """``(a, W)`` arrays (T × m, T × m × d_in) at ``times`` ≤ ``t_end``."""
        times = np.asarray(times, float)
        m, d = self.model.width, self.model.d_in
        a = np.empty((times.size, m))
        W = np.empty((times.size, m, d))
        for k, segs in enumerate(self.segments):
            if self.status[k] == "truncated" and np.any(times > segs[-1].t0):
                raise IntegrationError(f"neuron {k} reached max_crossings region changes; its "
                                       "path is not known past them", t_reached=segs[-1].t0)
            starts = np.array([s.t0 for s in segs])
            idx = np.searchsorted(starts, times, side="right") - 1
            for j in np.unique(idx):
                sel = idx == j
                a[sel, k], W[sel, k] = segs[j].at(times[sel])
        return a, W

    def crossing_times(self, neuron=None):
        """``[(t, neuron, sample, kind), ...]`` (optionally of one neuron)."""
        return [c.as_tuple() for c in self.crossings if neuron is None or c.neuron == neuron]


def _segment_d(X, y, n, cp, cm, active, sliding):
    """Effective D of a segment and the sliding multipliers λ (Filippov)."""
    g = np.where(active, cp, cm)
    D = (y * g * ~sliding) @ X / n + (y * cm * sliding) @ X / n
    lam = np.zeros(len(y))
    if sliding.any():
        idx = np.flatnonzero(sliding)
        Xi = X[idx]
        coef = y[idx] * (cp - cm) / n
        G = (Xi @ Xi.T) * coef[None, :]
        sol = np.linalg.lstsq(G, -(Xi @ D), rcond=None)[0]
        lam[idx] = sol
        D = D + (sol * coef) @ Xi
    return D, lam


def _first_root(h0, A, B):
    r"""Smallest ε > 0 with :math:`(A+B)\epsilon^2 + 2(h_0+B)\epsilon + 2h_0 = 0` at a sign
    change, per entry (inf where none). Cancellation-free pair of roots:
    :math:`q = -(b + \operatorname{sign}(b)\sqrt{b^2 - 2ac})`, roots :math:`q/a` and
    :math:`2c/q`; a double root (tangency, no sign change) is not a crossing."""
    qa, qb, qc = A + B, h0 + B, h0
    disc = qb * qb - 2.0 * qa * qc
    with np.errstate(divide="ignore", invalid="ignore"):
        lin = np.where((qa == 0) & (qb != 0), -qc / qb, np.inf)
        q = -(qb + np.copysign(np.sqrt(np.maximum(disc, 0.0)), qb))
        quad = (qa != 0) & (disc > 0)
        r1 = np.where(quad, q / qa, np.inf)
        r2 = np.where(quad & (q != 0), 2.0 * qc / q, np.inf)
    roots = np.stack([lin, r1, r2])
    roots = np.where((roots > 0) & np.isfinite(roots), roots, np.inf)
    return roots.min(axis=0)


def _path_of_neuron(k, a0, w0, model, cp, cm, t_end, renormalize, max_crossings):
    X, y, n, alpha = model.X, model.y, model.n, model.alpha
    h = X @ w0
    active = h > 0
    sliding = np.zeros(n, bool)
    # A neuron that starts exactly on a boundary: decide the side by the flow (Filippov).
    segs, crossings = [], []
    t0, a, w = 0.0, float(a0), np.array(w0, float)
    on_boundary = h == 0
    for i in np.flatnonzero(on_boundary):
        _decide(i, a, X, y, n, cp, cm, active, sliding, crossings, t0, k, initial=True)
    while True:
        D, lam = _release(X, y, n, cp, cm, active, sliding, crossings, t0, k)
        nd = float(np.linalg.norm(D))
        if len(crossings) >= max_crossings:  # the path is known up to t0 only
            segs.append(Segment(k, t0, t0, a, w, D, active.copy(), sliding.copy(), alpha))
            return segs, crossings, "truncated", _safe_unit(w), t0
        if nd == 0.0:
            seg = Segment(k, t0, np.inf, a, w, D, active.copy(), sliding.copy(), alpha)
            segs.append(seg)
            status = "dead" if not active.any() and not sliding.any() else "stationary"
            return segs, crossings, status, _safe_unit(w), np.inf
        dh = D / nd
        p0 = float(w @ dh)
        c = X @ dh
        hcur = X @ w
        cand = ~sliding
        h0 = np.where(active, np.maximum(hcur, 0.0), np.minimum(hcur, 0.0))
        eps = np.full(n, np.inf)
        if cand.any():
            eps[cand] = _first_root(h0[cand], c[cand] * p0, c[cand] * a)
        j = int(np.argmin(eps))
        s_cross = np.log1p(eps[j]) if np.isfinite(eps[j]) else np.inf
        t_cross = t0 + alpha * s_cross / nd
        seg = Segment(k, t0, t_cross, a, w, D, active.copy(), sliding.copy(), alpha)
        segs.append(seg)
        grow = a + p0
        limit = _safe_unit(np.sign(grow) * dh) if grow != 0 else _safe_unit(w - p0 * dh)
        if t_cross > t_end or not np.isfinite(t_cross):
            seg.t1 = np.inf
            if np.isfinite(t_cross):
                return segs, crossings, "moving", limit, t_cross
            if grow == 0:
                return segs, crossings, "vanishing", limit, np.inf
            return segs, crossings, ("boundary" if sliding.any() else "extremal"), limit, np.inf
        # Cross: every entry whose root coincides (to rounding) crosses now.
        same = np.flatnonzero(np.isfinite(eps) & (np.log1p(eps) <= s_cross * (1 + 1e-12)))
        if renormalize:  # (a, w) / cosh s, then to unit norm: no overflow at large s
            sech = 2.0 * np.exp(-s_cross) / (1.0 + np.exp(-2.0 * s_cross))
            th = np.tanh(s_cross)
            a, p_sc = a + p0 * th, p0 + a * th  # a(s)/cosh s, P(s)/cosh s
            w = w * sech + (p_sc - p0 * sech) * dh
            r = np.hypot(a, np.linalg.norm(w))
            a, w = a / r, w / r
        else:
            a_new, w_new = _evolve(a, w, dh, s_cross)
            a, w = float(a_new), np.asarray(w_new, float)
        t0 = t_cross
        for i in same:
            # direction of motion of h_i at the crossing (from the old segment)
            up = not active[i]
            active[i] = up
            _decide(i, a, X, y, n, cp, cm, active, sliding, crossings, t0, k)


def _decide(i, a, X, y, n, cp, cm, active, sliding, crossings, t, k, initial=False):
    """Side of boundary i after a crossing, by Filippov's rule: slide iff both sides push
    h_i to 0 (velocity > 0 with i inactive, < 0 with i active). A neuron that *starts* on
    the boundary goes to the side the flow leaves to (active iff the active-side velocity
    is > 0); no crossing is recorded for it."""
    was = bool(active[i])
    active[i] = False
    Dm, _ = _segment_d(X, y, n, cp, cm, active, sliding)
    vm = a * float(Dm @ X[i])
    vp = vm + a * y[i] * (cp - cm) / n * float(X[i] @ X[i])
    if vm > 0 > vp:
        sliding[i] = True
        if not initial:
            crossings.append(Crossing(t, k, int(i), "slide"))
        return
    active[i] = bool(vp > 0) if initial else was
    if not initial:
        crossings.append(Crossing(t, k, int(i), "on" if was else "off"))


def _release(X, y, n, cp, cm, active, sliding, crossings, t, k):
    """End sliding where λ left [0, 1] (λ > 1: active, λ < 0: inactive), then D_eff."""
    D, lam = _segment_d(X, y, n, cp, cm, active, sliding)
    if sliding.any():
        leave = sliding & ((lam < 0) | (lam > 1))
        for i in np.flatnonzero(leave):
            sliding[i] = False
            active[i] = bool(lam[i] > 1)
            crossings.append(Crossing(t, k, int(i), "release-on" if active[i] else "release-off"))
        if leave.any():
            D, lam = _segment_d(X, y, n, cp, cm, active, sliding)
    return D, lam


def _safe_unit(v):
    nv = float(np.linalg.norm(v))
    return v / nv if nv > 0 else np.zeros_like(v)


def alignment_path(model, t_end=np.inf, max_crossings: int = 10_000,
                   renormalize: bool = False) -> AlignmentPath:
    r"""The early-phase path of every neuron, region by region, up to ``t_end``.

    Parameters
    ----------
    model : TwoLayer
        With a piecewise-linear activation (relu, leaky_relu).
    t_end : float
        Last time of interest (``inf``: follow every neuron to its end state).
    max_crossings : int
        Per neuron; a neuron that reaches it is left ``truncated`` (and
        :meth:`AlignmentPath.state` refuses times past its last crossing).
    renormalize : bool
        Rescale (a, w) to unit norm at each crossing (the flow is linear in (a, w), so
        directions and crossing times are unchanged): for following directions to
        t → ∞ without overflow (:func:`extremal_vectors`). The states are then not the
        network's.

    Returns
    -------
    AlignmentPath
    """
    ok, why = applies(model)
    if not ok:
        raise ValueError(f"model must have a piecewise-linear activation; {why}")
    t_end = float(t_end)
    if not t_end >= 0:
        raise ValueError(f"t_end must be >= 0, got {check.show(t_end)}")
    max_crossings = check.positive_int("max_crossings", max_crossings)
    cp, cm = slopes(model.act)
    segments, crossings, status, limits, nxt = [], [], [], [], []
    for k in range(model.width):
        segs, cr, st, lim, tn = _path_of_neuron(k, model.a0[k], model.W0[k], model, cp, cm,
                                                t_end, renormalize, max_crossings)
        segments.append(segs)
        crossings += cr
        status.append(st)
        limits.append(lim)
        nxt.append(tn)
    crossings.sort(key=lambda c: (c.t, c.neuron, c.sample))
    return AlignmentPath(model, segments, crossings, status, np.array(limits), t_end, nxt)


def early_alignment(model, t):
    r"""The early-phase closed form of a piecewise-linear two-layer network at times ``t``.

    Region-by-region cosh/sinh solution of :math:`\dot w_k = (a_k/\alpha)D(w_k)`,
    :math:`\dot a_k = \langle D(w_k), w_k\rangle/\alpha` (module docstring; Boursier &
    Flammarion 2024), with exact region-crossing times and Filippov sliding.

    Returns
    -------
    Trajectory
        State ``a``, ``W``; observables ``loss``, ``output``, ``rd`` (of the network at
        the closed-form weights); ``meta["crossings"]`` the list of
        ``(t, neuron, sample, kind)`` up to the last time, ``meta["status"]`` the neurons'
        end states (:class:`AlignmentPath`).
    """
    from ..numeric.twolayer import trajectory_from_states

    times = check.times("t", t)
    path = alignment_path(model, float(times[-1]))
    a, W = path.state(times)
    cp, cm = slopes(model.act)
    meta = {"method": "closed-form (early alignment, region by region)", "precision": None,
            "crossings": [list(c) for c in path.crossing_times()],
            "status": list(path.status), "slopes": [cp, cm]}
    traj = trajectory_from_states(model, times, a, W, meta)
    traj.path = path
    return traj


# ---- extremal vectors --------------------------------------------------------------------

@dataclass
class Stationary:
    r"""A stationary direction of the early direction flow on the sphere.

    ``kind``: ``extremal`` (:math:`D(u) = \Phi(u)u`, u inside its region) or ``boundary``
    (u on a boundary :math:`u\cdot x_i = 0` where both sides push into it: Filippov
    sliding). ``phi`` = Φ(u); ``attracts``: +1 (a > 0 neurons converge to it), −1
    (a < 0 neurons), 0 (neither)."""

    u: np.ndarray
    kind: str
    phi: float
    attracts: int

    @property
    def angle(self) -> float:
        return float(np.arctan2(self.u[1], self.u[0])) if self.u.size == 2 else float("nan")


def _arcs(model):
    """Boundary angles (sorted, in [−π, π)) of the lines ⊥ x_i on the circle."""
    X = model.X
    ang = []
    for x in X:
        if np.any(x != 0):
            base = np.arctan2(x[1], x[0]) + np.pi / 2
            ang += [base, base + np.pi]
    ang = np.mod(np.array(ang) + np.pi, 2 * np.pi) - np.pi
    return np.unique(ang)


def _u(theta):
    return np.array([np.cos(theta), np.sin(theta)])


def stationary_directions_2d(model):
    r"""Every stationary direction of the early direction flow for 2-D inputs (1-D data plus
    bias), and the dead arcs, enumerated exactly.

    The lines :math:`u\cdot x_i = 0` cut the circle into arcs; on each open arc D is a
    constant vector, so :math:`u = \pm\hat D` is an **extremal vector** iff it lies in that
    arc (Φ(u) = ±‖D‖: attracting for a > 0 if +, for a < 0 if −). A **boundary** point
    :math:`u_b` is stationary for the Filippov flow iff the tangential velocities
    :math:`\langle D_\pm, \tau\rangle` of the two neighbouring arcs (τ the counter-clockwise
    tangent) point into it from both sides: attracting for a > 0 if
    :math:`\langle D_\mathrm{ccw},\tau\rangle < 0 < \langle D_\mathrm{cw},\tau\rangle`, for
    a < 0 if the reverse. A boundary point with :math:`D(u_b) \parallel u_b` but no such
    push is listed too (attracts 0). Arcs with no active point are **dead** (D = 0).
    Boursier & Flammarion (arXiv:2401.10791), extremal vectors; Maennel et al. (2018).

    Returns
    -------
    stationary : list of Stationary
        Sorted by angle.
    dead : list of (float, float)
        Dead arcs as (start, end) angles, counter-clockwise, angles in [−π, π) (end may
        exceed π when the arc wraps).
    """
    if model.d_in != 2:
        raise ValueError(f"model must have 2-D inputs (1-D data plus bias, or d_in = 2) for "
                         f"the exact enumeration; got d_in = {model.d_in}")
    ok, why = applies(model)
    if not ok:
        raise ValueError(f"model must have a piecewise-linear activation; {why}")
    cp, cm = slopes(model.act)
    bnd = _arcs(model)
    if bnd.size == 0:
        raise ValueError("X must have a nonzero input (every x_i is 0)")
    ends = np.append(bnd, bnd[0] + 2 * np.pi)
    out, dead, arc_d = [], [], []
    for lo, hi in zip(ends[:-1], ends[1:]):
        mid = _u(0.5 * (lo + hi))
        act = model.X @ mid > 0
        D = (model.y * np.where(act, cp, cm)) @ model.X / model.n
        arc_d.append(D)
        if not np.any(D):
            if cm == 0 and not act.any():
                dead.append((float(lo), float(hi)))
            continue
        for sgn in (1.0, -1.0):
            th = np.arctan2(sgn * D[1], sgn * D[0])
            th = lo + np.mod(th - lo, 2 * np.pi)
            if lo < th < hi:
                u = _u(th)
                out.append(Stationary(u, "extremal", phi(model, u), int(sgn)))
    for j, b in enumerate(bnd):
        u = _u(b)
        tau = _u(b + np.pi / 2)
        ccw, cw = arc_d[j], arc_d[j - 1]
        vccw, vcw = float(ccw @ tau), float(cw @ tau)
        attracts = 1 if vccw < 0 < vcw else (-1 if vcw < 0 < vccw else 0)
        Du = d_vector(model, u)
        parallel = np.any(Du) and abs(Du[0] * u[1] - Du[1] * u[0]) <= 1e-12 * np.linalg.norm(Du)
        if attracts or parallel:
            out.append(Stationary(u, "boundary", phi(model, u), attracts))
    out.sort(key=lambda s: s.angle)
    return out, dead


def extremal_vectors(model, directions: int = 200, seed: int = 0, tol: float = 1e-7):
    r"""Attracting stationary directions of the early direction flow, found by the flow.

    For 2-D inputs use :func:`stationary_directions_2d` (exact). In any dimension this runs
    the region-by-region closed form (:func:`alignment_path`, renormalized) from
    ``directions`` random unit vectors, each once with a = +1 and once with a = −1
    (balanced neurons), to its end state, and collects the distinct limits of the neurons
    that end ``extremal`` or ``boundary``, with Φ and the sign of a they attract.

    Returns
    -------
    list of Stationary
        Deduplicated (cosine ≥ 1 − ``tol``), sorted by Φ decreasing.
    """
    directions = check.positive_int("directions", directions)
    rng = np.random.default_rng(check.seed("seed", seed))
    U = rng.normal(size=(directions, model.d_in))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    a = np.concatenate([np.ones(directions), -np.ones(directions)])
    probe = model.with_init(a, np.vstack([U, U]))  # same data, balanced unit-norm neurons
    path = alignment_path(probe, np.inf, renormalize=True)
    found = []
    for k, st in enumerate(path.status):
        if st not in ("extremal", "boundary"):
            continue
        u = path.limit[k]
        sgn = int(np.sign(a[k]))
        if any(float(u @ f.u) >= 1 - tol and f.attracts == sgn for f in found):
            continue
        found.append(Stationary(u, st, phi(model, u), sgn))
    found.sort(key=lambda s: -s.phi)
    return found


__all__ = ["AlignmentPath", "Crossing", "Segment", "Stationary", "activation_region",
           "alignment_path", "applies", "d_vector", "early_alignment", "extremal_vectors",
           "phi", "proofs", "slopes", "stationary_directions_2d"]
