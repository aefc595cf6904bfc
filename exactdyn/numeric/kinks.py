r"""Integration through ReLU-type kinks with Filippov sliding, shared by the two-layer
network (:mod:`exactdyn.numeric.twolayer`) and the two-layer CNN
(:mod:`exactdyn.numeric.cnn`).

Both flows have the same kink structure. A *unit* k (a hidden neuron; a CNN kernel β)
has a weight vector :math:`w_k \in \mathbb R^d` and meets *entries* j with inputs
:math:`x_j` (the data points; the (sample, position) patches), preactivation
:math:`h_{kj} = w_k\cdot x_j`, and the unit's flow is

.. math::

    \dot w_k = \sum_j c_{kj}\,\sigma'(h_{kj})\,x_j,

linear in σ' (two-layer: :math:`c_{kj} = -a_k e_j/(\alpha n)`; CNN:
:math:`c_{\beta,(i,u)} = -a_{u\beta} e_i/(\alpha n)`, MATH.md §5). The activation pattern
(on/off/sliding per (k, j)), the Filippov multipliers, the decision rule from the one-sided
velocities :math:`\dot h^\mp` and their uncertainty bounds, the location of pattern
changes on the dense output and the restart loop are all written here once, in
:class:`KinkState` and :func:`integrate`; the equations and the rule are in
:mod:`exactdyn.numeric.twolayer`'s docstring (Filippov, *Differential Equations with
Discontinuous Righthand Sides*, 1988, §2.4).

The model-specific parts (:class:`KinkFlow` protocol) are built once, for every network,
by :class:`exactdyn.numeric.kink_adapter.KinkAdapter` from what the network declares
(:class:`exactdyn.models.base.KinkedPreactivation`) and its generated sources:

- ``kink_inputs``: the entry inputs :math:`x_j` as an (N, d) array;
- ``kink_weights(y)``: the (m, d) unit weights of a flat state (a linear selection; for
  stacked states (..., size) the (..., m, d) weights), ``kink_replace(y, W)``;
- ``kink_functions(state)``: ``(frozen, jump)``; ``frozen(y)`` returns the flat rhs with
  the pattern ``state.mask`` (m, N) frozen (sliding entries on the − branch) and a
  writable (m, d) view of its unit part; ``jump(y)`` the (m, N) coefficients
  :math:`g_{kj} = c_{kj}(\sigma_+'(0) - \sigma_-'(0))` of the jump of the flow across
  the kink; optionally a third, ``frozen_jump(y)`` -> ``(out, rw, G)``, both in one pass;
- ``branch_slopes`` (optional): ``(c+, c-)`` when σ± = c± x, else None;
- ``kink_uncertainty(y, rtol, atol)``: ``(rho, c)``, rho (N,) a bound of the
  uncertainty of the residual seen by entry j (rounding plus the integrator's tolerance
  on the state) and c (m, N) or (m, 1) the magnitude of :math:`c_{kj}/e`, so that the
  uncertainty of :math:`\dot h` is bounded as in :meth:`KinkState.velocities`;
- ``kink_gammas``: Higham's :math:`(\gamma_h, \gamma_f, \gamma_s)` for the dot product h,
  the output f and the sum over entries of the flow; ``branches`` (σ+, σ−, σ+', σ−') and
  ``flat_minus`` (σ−' ≡ 0).

Entries whose inputs are parallel share one switching surface per unit
(:func:`shared_surfaces`: 1-D data without a bias, duplicated points); they change as
one event, decided from the surface's one-sided velocities
(:meth:`KinkState.class_velocities`), and slide together (issue 16).

Everything here runs on products with the (N, d) input array (never an N × N Gram
matrix), so a CNN with many patches costs what its rhs costs.
"""

from __future__ import annotations

import functools
import math
from typing import Protocol

import numpy as np

from ..errors import IntegrationError

_EPS = np.finfo(float).eps
#: Condition bound below which the sliding multipliers are solved with a cached inverse
#: (lstsq's truncation, at eps * size * the largest singular value, cannot act there).
_COND_FAST = 1e8


def _well_determined(cond, lo, hi):
    r"""Whether the multipliers of a sliding set are well determined: its jump
    coefficients' sizes, in [lo, hi], are nonzero and the condition number ``cond`` of
    :math:`X_SX_S^\top` times their spread hi/lo is below :data:`_COND_FAST` (then
    :math:`X_SX_S^\top\mathrm{diag}(g)` is well conditioned). Elementwise on arrays."""
    return (lo > 0) & (cond * hi < _COND_FAST * lo)


def gamma(k: int) -> float:
    r"""Higham's :math:`\gamma_k = k u/(1 - k u)`: bound of the relative rounding error of a
    sum or dot product of k terms (Higham, *Accuracy and Stability of Numerical
    Algorithms*, 2nd ed., 2002, §3.1)."""
    return k * _EPS / (1 - k * _EPS)


def shared_surfaces(X, tol: float = 16 * _EPS):
    r"""Entries whose kinks lie on one surface: rows of X that are parallel (or
    antiparallel), :math:`x_j = s_j\lVert x_j\rVert u_c`, so that
    :math:`h_{kj} = s_j\lVert x_j\rVert\,(w_k\cdot u_c)` for every unit k. On 1-D inputs
    without a bias all nonzero inputs share the surface :math:`w_k = 0`; duplicated points
    share theirs too. Such entries cross together and their sides are coupled (a side of
    :math:`w_k\cdot u_c = 0` fixes all of them), so they are decided and slide as one
    (:meth:`KinkState.update`, issue 16).

    Returns ``(cls, sgn, classes, cdir)``: ``cls`` (N,) the class of each entry (-1 when
    its surface is its own, or x_j = 0), ``sgn`` (N,) the signs :math:`s_j`, ``classes``
    the index arrays (two entries or more) and ``cdir`` (n_classes, d) the unit normals.
    Directions are compared after normalisation, to ``tol`` in each component (rows
    sorted lexicographically, neighbours compared)."""
    X = np.asarray(X, float)
    N = X.shape[0]
    cls = np.full(N, -1)
    sgn = np.ones(N)
    norms = np.linalg.norm(X, axis=1)
    nz = np.flatnonzero(norms > 0)
    if nz.size < 2:
        return cls, sgn, [], np.zeros((0, X.shape[1]))
    V = X[nz] / norms[nz, None]
    # canonical sign: the first component clearly away from 0 is positive
    lead = np.argmax(np.abs(V) > 1e-8, axis=1)
    s = np.sign(V[np.arange(nz.size), lead])
    V = V * s[:, None]
    order = np.lexsort(V.T[::-1])
    Vs = V[order]
    same = np.all(np.abs(np.diff(Vs, axis=0)) <= tol, axis=1)
    starts = np.flatnonzero(np.r_[True, ~same])
    ends = np.r_[starts[1:], nz.size]
    classes, cdir = [], []
    for a, b in zip(starts, ends):
        if b - a < 2:
            continue
        members = np.sort(nz[order[a:b]])
        c = len(classes)
        cls[members] = c
        classes.append(members)
        u = V[order[a]]
        cdir.append(u / np.linalg.norm(u))
    sgn[nz] = s
    if not classes:
        return cls, sgn, [], np.zeros((0, X.shape[1]))
    # signs relative to the class normal (exact for the representative)
    cdir_arr = np.array(cdir)
    for c, members in enumerate(classes):
        sgn[members] = np.sign(X[members] @ cdir_arr[c])
    return cls, sgn, classes, cdir_arr



def _bisect_sign_change(f, lo: float, hi: float, xtol: float) -> float:
    """A point within ``xtol`` of where ``f`` turns from positive (at ``lo``) to
    non-positive, by bisection (at most ~60 halvings of a float64 bracket)."""
    while hi - lo > xtol:
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:  # the bracket is two adjacent floats
            break
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)

#: Uniform grid of :func:`first_root`: sign changes closer than 1/_ROOT_GRID of a step
#: (a margin that dips below zero and back inside one cell) are not seen there.
_ROOT_GRID = 32


def first_root(P, xtol: float) -> float:
    r"""The first x in (0, 1] where one of the polynomials in the rows of ``P`` ((K, q):
    coefficients in ascending powers of x, each positive at x = 0) turns negative,
    within ``xtol``; NaN when none is negative anywhere on the grid.

    All rows at once: their values on a uniform grid of ``_ROOT_GRID`` cells (one matrix
    product) give the first cell where any row is negative; in it, for the rows negative
    at its end (usually one), Newton's method on the polynomial from the secant of the
    cell, safeguarded by bisection of the bracket (so a double root, where Newton is
    slow, still ends: at most ~60 halvings of a float64 bracket), until the step or the
    bracket is below ``xtol``; the smallest of their roots. Event location on the step's
    polynomial as in Hairer, Nørsett & Wanner, *Solving ODEs I* (1993), §II.6 (dense
    output), and heyoka's event detection on the Taylor polynomial (Biscani & Izzo,
    MNRAS 2021), here with a grid instead of root isolation: two roots closer than a
    cell can hide each other (a margin that dips below zero and back inside one cell);
    the caller's exact tests catch what that misses."""
    P = np.asarray(P, float)
    if P.ndim != 2 or P.shape[1] < 1:
        raise ValueError(f"P must be a (rows, coefficients) array, not of shape {P.shape}")
    if not xtol > 0:
        raise ValueError(f"xtol must be positive, not {xtol!r}")
    values = P @ _grid_powers(P.shape[1])
    negative = values[:, 1:] < 0
    first = negative.any(axis=0)
    if not first.any():
        return float("nan")
    cell = int(np.argmax(first))
    best = float("nan")
    for row in np.flatnonzero(negative[:, cell]):
        coefficients = P[row].tolist()
        x = _refine_root(coefficients, cell / _ROOT_GRID, (cell + 1) / _ROOT_GRID,
                         float(values[row, cell]), float(values[row, cell + 1]), xtol)
        if not x >= best:
            best = x
    return best


def _grid_powers(q: int) -> np.ndarray:
    """(q, _ROOT_GRID + 1): the powers 0..q-1 of the grid points (cached per q)."""
    cached = _GRID_POWERS.get(q)
    if cached is None:
        grid = np.linspace(0.0, 1.0, _ROOT_GRID + 1)
        cached = _GRID_POWERS[q] = grid[None, :] ** np.arange(q)[:, None]
    return cached


_GRID_POWERS: dict = {}


def _refine_root(coefficients, a, b, fa, fb, xtol):
    """A root of the polynomial (ascending ``coefficients``) in [a, b], where fa > 0 >
    fb, within ``xtol``: Newton from the secant point, a bisection step whenever Newton
    leaves the bracket (scalar: one or a few rows, Python floats beat numpy calls)."""
    x = a + (b - a) * fa / (fa - fb)
    if not a <= x <= b:
        x = 0.5 * (a + b)
    reversed_coefficients = coefficients[::-1]
    for _ in range(200):
        value, slope = 0.0, 0.0
        for c in reversed_coefficients:  # Horner, value and derivative
            slope = slope * x + value
            value = value * x + c
        if value > 0:
            a = x
        elif value < 0:
            b = x
        else:
            return x
        step = x - value / slope if slope != 0 else a - 1.0
        if not a < step < b:
            step = 0.5 * (a + b)
        if abs(step - x) <= xtol or b - a <= xtol:
            return step
        x = step
    return x  # pragma: no cover  (the bracket halves at least every other step)


def _brent(f, a: float, b: float, xtol: float, rtol: float, maxiter: int = 100):
    """Brent's method for a root of f in [a, b] (f(a), f(b) of opposite signs), a port
    of scipy's ``brentq`` (scipy/optimize/Zeros/brentq.c; Brent, *Algorithms for
    Minimization Without Derivatives*, 1973, ch. 4) so that locating a sliding exit does
    not import scipy.optimize. Returns ``(root, converged)``; the stopping rule is
    brentq's: the bracket's half width below (xtol + rtol |x|) / 2."""
    xpre, xcur = a, b
    xblk = fblk = spre = scur = 0.0
    fpre, fcur = f(xpre), f(xcur)
    if fpre == 0:
        return xpre, True
    if fcur == 0:
        return xcur, True
    if (fpre > 0) == (fcur > 0):
        raise ValueError("f(a) and f(b) must have opposite signs")
    for _ in range(maxiter):
        if fpre != 0 and fcur != 0 and (fpre < 0) != (fcur < 0):
            xblk, fblk = xpre, fpre
            spre = scur = xcur - xpre
        if abs(fblk) < abs(fcur):
            xpre, xcur, xblk = xcur, xblk, xcur
            fpre, fcur, fblk = fcur, fblk, fcur
        delta = (xtol + rtol * abs(xcur)) / 2
        sbis = (xblk - xcur) / 2
        if fcur == 0 or abs(sbis) < delta:
            return xcur, True
        if abs(spre) > delta and abs(fcur) < abs(fpre):
            try:
                if xpre == xblk:  # interpolate
                    stry = -fcur * (xcur - xpre) / (fcur - fpre)
                else:  # extrapolate (inverse quadratic)
                    dpre = (fpre - fcur) / (xpre - xcur)
                    dblk = (fblk - fcur) / (xblk - xcur)
                    stry = -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
            except ZeroDivisionError:  # underflow: C's inf, which fails the test below
                stry = math.inf
            if 2 * abs(stry) < min(abs(spre), 3 * abs(sbis) - delta):  # good short step
                spre, scur = scur, stry
            else:
                spre = scur = sbis
        else:
            spre = scur = sbis
        xpre, fpre = xcur, fcur
        xcur += scur if abs(scur) > delta else (delta if sbis > 0 else -delta)
        fcur = f(xcur)
    return xcur, False


def _per_pattern(method):
    """A :class:`KinkState` method without arguments whose value depends on the pattern
    only: computed on first use after each change of ``mask``/``slide``
    (:meth:`KinkState._refresh`) and kept until the next."""
    name = method.__name__

    @functools.wraps(method)
    def cached(self):
        derived = self._derived
        if name not in derived:
            derived[name] = method(self)
        return derived[name]

    return cached


class KinkFlow(Protocol):
    """What a lowered flow supplies to :class:`KinkState` (see the module docstring)."""

    kink_inputs: np.ndarray
    kink_gammas: tuple
    branches: tuple
    flat_minus: bool
    size: int

    def kink_weights(self, y) -> np.ndarray: ...

    def kink_replace(self, y, W) -> np.ndarray: ...

    def kink_functions(self, state): ...

    def kink_uncertainty(self, y, rtol, atol): ...


class KinkState:
    r"""Activation pattern and sliding set of one integration through kinks.

    ``mask[k, j]``: entry on the + branch; ``slide[k, j]``: entry on its sliding surface
    :math:`h_{kj} = 0` (then ``mask`` is False there). Created by :func:`integrate` for
    each call, so one lowered flow may serve several integrations at once; the equations
    are in :mod:`exactdyn.numeric.twolayer`'s docstring.
    """

    def __init__(self, low: KinkFlow, y0, rtol: float = 0.0, atol: float = 0.0):
        self.low = low
        self.rtol, self.atol = float(rtol), float(atol)
        X = np.asarray(low.kink_inputs, float)
        self.X = X
        self.absX = np.abs(X)
        self.x1 = self.absX.sum(axis=1)
        self.xx = np.einsum("jd,jd->j", X, X)
        self.g_h, self.g_f, self.g_s = low.kink_gammas
        #: Entries sharing one switching surface (parallel inputs): ``cls[j]`` the class of
        #: entry j (-1: alone on its surface), ``sgn[j]`` = ±1 with x_j = sgn_j |x_j| u_c,
        #: ``classes[c]`` the entries and ``cdir[c]`` the unit normal u_c of class c.
        self.cls, self.sgn, self.classes, self.cdir = shared_surfaces(X)
        self.mask = self.pattern(y0)
        self.slide = np.zeros_like(self.mask)
        #: Incremented at every change of ``mask``/``slide`` (flows may cache layouts).
        self.version = 0
        self._refresh()
        funcs = low.kink_functions(self)
        self._frozen, self._jump = funcs[:2]
        #: ``y -> (out, rw, G)`` in one pass when the flow has it (else frozen and jump).
        self._frozen_jump = funcs[2] if len(funcs) > 2 else None
        _fp, _fm, dp, dm = low.branches
        self._dabs = (lambda h: np.abs(dp(h)), lambda h: np.abs(dm(h)))
        #: (|σ+'|, |σ−'|) when both branches are linear (the flow's ``branch_slopes``):
        #: the derivative bound of :meth:`velocities` is then a constant per side.
        slopes = getattr(low, "branch_slopes", None)
        self._abs_slopes = None if slopes is None else (abs(slopes[0]), abs(slopes[1]))
        #: Memos of the last states seen by :meth:`_evaluate` and :meth:`events`.
        self._memo_eval: list = []
        self._memo_events: list = []
        self._memo_unc: list = []
        #: Orthogonal projectors of sliding sets (:meth:`_projector`), by set.
        self._proj_cache: dict = {}

    def pattern(self, y):
        """(m, N) bool: h > 0."""
        return self.low.kink_weights(y) @ self.X.T > 0

    def _refresh(self):
        """Index the sliding set: units with one sliding entry (closed form) or more."""
        self.version += 1
        self.sliding = bool(self.slide.any())
        #: The values of the :func:`_per_pattern` methods for this pattern.
        self._derived: dict = {}

    @_per_pattern
    def _sliding_sets(self):
        """``(single, multi)`` of the current sliding set: ``single = (ks, ii, X_ii,
        |x_ii|^2)`` for the units with one sliding entry, ``multi`` a list of ``(k, idx,
        X_S, M^-1 or None, cond M)``, :math:`M = X_SX_S^\top`, for the others."""
        counts = self.slide.sum(axis=1)
        ks = np.flatnonzero(counts == 1)
        ii = np.argmax(self.slide[ks], axis=1)
        single = (ks, ii, self.X[ii], self.xx[ii])
        multi = []
        for k in np.flatnonzero(counts > 1):
            idx = np.flatnonzero(self.slide[k])
            Xs = self.X[idx]
            M = Xs @ Xs.T
            cond = np.linalg.cond(M)
            Minv = np.linalg.inv(M) if cond < _COND_FAST else None
            multi.append((k, idx, Xs, Minv, cond))
        return single, multi

    def _memo(self, store, y, compute, size=3, per_pattern=True):
        """``compute(y)`` once per (pattern version, state), or once per state when the
        value does not depend on the pattern (``per_pattern=False``): the location and
        the decisions at a kink look at the same states more than once."""
        current = self.version if per_pattern else None
        # the state's bytes as the key: one memcmp per entry (and a state that is not
        # finite finds its own value too: the computations are deterministic)
        key = np.ascontiguousarray(y, dtype=float).tobytes()
        for version, known, value in store:
            if version == current and known == key:
                return value
        value = compute(y)
        store.insert(0, (current, key, value))
        del store[size:]
        return value

    def _evaluate(self, y):
        """``(rw, G)``: the frozen rhs's unit part (sliding entries on the − branch, no
        Filippov term) and the jump coefficients at ``y`` (memoized; do not modify)."""
        def compute(y):
            if self._frozen_jump is not None:
                _out, rw, G = self._frozen_jump(y)
                return np.array(rw), np.asarray(G)
            _out, rw = self._frozen(y)
            return np.array(rw), np.asarray(self._jump(y))
        return self._memo(self._memo_eval, y, compute)

    def _uncertainty(self, y):
        """The flow's ``kink_uncertainty`` at ``y`` (memoized per state: it does not
        depend on the pattern; do not modify)."""
        return self._memo(self._memo_unc, y,
                          lambda y: self.low.kink_uncertainty(y, self.rtol, self.atol),
                          per_pattern=False)

    def _deriv_abs(self, on, h):
        r""":math:`|\sigma'(h)|` on the side ``on`` says (+ where True)."""
        if self._abs_slopes is not None:
            return np.where(on, *self._abs_slopes)
        dp_abs, dm_abs = self._dabs
        return np.where(on, dp_abs(h), dm_abs(h))

    # ---- the right-hand side ---------------------------------------------------------
    def rhs(self, t, y):
        r"""Frozen-pattern rhs plus Filippov's convex combination on the sliding set."""
        if not self.sliding:
            return self._frozen(y)[0]
        if self._frozen_jump is not None:
            out, rw, G = self._frozen_jump(y)
        else:
            out, rw = self._frozen(y)
            G = None
        self._correct(rw, self._jump(y) if G is None else G)
        return out

    @_per_pattern
    def _slide_layout(self):
        """Per sliding set: the sliding entries ``(kp, jp)`` (row-major) and the first and
        past-the-last positions of each unit's entries in them."""
        kp, jp = np.nonzero(self.slide)
        starts = np.flatnonzero(np.r_[True, kp[1:] != kp[:-1]]) if kp.size else kp
        ends = np.r_[starts[1:], kp.size]
        return kp, jp, starts, ends

    @_per_pattern
    def _projections(self):
        r"""Per sliding set: ``(rows, P, kp, jp, starts, conds)``, the units
        with sliding entries, their orthogonal projectors :math:`P_k = I -
        X_{S_k}^\top(X_{S_k}X_{S_k}^\top)^{-1}X_{S_k}` stacked (rows, d, d), the
        sliding entries ``(kp, jp)`` (row-major) with each unit's first position in
        ``starts``, and the condition numbers of :math:`X_{S_k}X_{S_k}^\top` (1 for one
        entry); ``None`` when one of them is not below :data:`_COND_FAST`."""
        kp, jp, starts, ends = self._slide_layout()
        d = self.X.shape[1]
        single = ends - starts == 1
        x = self.X[jp[starts[single]]]
        P = np.empty((starts.size, d, d))
        # one sliding entry: I - x x^T / |x|^2, all such units at once
        P[single] = np.eye(d) - x[:, :, None] * (x / self.xx[jp[starts[single]], None])[
            :, None, :]
        conds = np.ones(starts.size)
        for u in np.flatnonzero(~single):
            Pu, conds[u] = self._projector_cached(jp[starts[u]:ends[u]])
            if Pu is None:
                return None
            P[u] = Pu
        return kp[starts], P, kp, jp, starts, conds

    def _correct(self, rw, G):
        r"""Add :meth:`filippov`'s correction to ``rw`` in place (each sliding unit's from
        its own row; the multipliers are not kept).

        Where the multipliers are well determined (every :math:`g_{kj}\neq 0` and, for
        two sliding entries or more, :math:`X_SX_S^\top\,\mathrm{diag}(g_S)` well
        conditioned, as in :meth:`_multipliers`), the corrected velocity
        :math:`\dot w_k^- + \sum_{j\in S_k}\lambda_{kj}g_{kj}x_j`, which lies in
        :math:`\{x_j\cdot v = 0,\ j\in S_k\}` and differs from :math:`\dot w_k^-` by a
        vector of :math:`\mathrm{span}(x_j)_{j\in S_k}`, is the orthogonal projection
        :math:`P_k\dot w_k^-` (:meth:`_projections`): one batched product for all units
        instead of their multipliers one unit at a time."""
        if not self.sliding:
            return
        fast = self._projections()
        if fast is not None:
            rows, P, kp, jp, starts, conds = fast
            ag = np.abs(G[kp, jp])
            if conds.size == kp.size:  # one sliding entry per unit: g != 0 is enough
                ok = ag.min() > 0
            else:
                ok = bool(np.all(_well_determined(conds, np.minimum.reduceat(ag, starts),
                                                  np.maximum.reduceat(ag, starts))))
            if ok:
                rw[rows] = np.einsum("kij,kj->ki", P, rw[rows])
                return
        (ks, ii, Xi, xxi), multi = self._sliding_sets()
        if ks.size:
            lk, g = self._single_multipliers(rw, G, ks, ii, Xi, xxi)
            rw[ks] += (lk * g)[:, None] * Xi
        for k, idx, Xs, Minv, cond in multi:
            g = G[k, idx]
            rw[k] += (self._multipliers(rw[k], g, Xs, Minv, cond) * g) @ Xs

    @staticmethod
    def _single_multipliers(rw, G, ks, ii, Xi, xxi):
        r"""λ and the jump g of the units sliding on one entry each:
        :math:`\lambda = -x_j\cdot\dot w_k^-/(g_{kj}\|x_j\|^2)` (0 where g = 0)."""
        g = G[ks, ii]
        den = g * xxi
        num = -np.einsum("kd,kd->k", rw[ks], Xi)
        return np.divide(num, den, out=np.zeros_like(num), where=den != 0), g

    def filippov(self, y, rw, G=None):
        r"""Correction :math:`\sum_{j\in S_k}\lambda_{kj}g_{kj}x_j`, the λ and the jump g.

        :math:`\lambda` solves :math:`x_l\cdot\dot w_k = 0` for :math:`l \in S_k` (one
        sliding entry: :math:`\lambda = -x_j\cdot\dot w_k^-/(g_{kj}\|x_j\|^2)`), so h
        stays exactly 0. λ is not clipped: it leaves [0, 1] only while a one-sided
        velocity is inside its uncertainty (:meth:`velocities`; beyond it the exit test
        fires), and then the correction differs from the nearest Filippov vector by
        less than that uncertainty."""
        G = self._jump(y) if G is None else G
        corr = np.zeros(rw.shape)
        lam = np.zeros(self.slide.shape)
        (ks, ii, Xi, xxi), multi = self._sliding_sets()
        if ks.size:
            lk, g = self._single_multipliers(rw, G, ks, ii, Xi, xxi)
            lam[ks, ii] = lk
            corr[ks] = (lk * g)[:, None] * Xi
        for k, idx, Xs, Minv, cond in multi:
            lk = self._multipliers(rw[k], G[k, idx], Xs, Minv, cond)
            lam[k, idx] = lk
            corr[k] = (lk * G[k, idx]) @ Xs
        return corr, lam, G

    @staticmethod
    def _multipliers(u, g, Xs, Minv, cond):
        r"""λ of one unit's sliding entries: the least-squares solution of
        :math:`(X_SX_S^\top)\,\mathrm{diag}(g)\,\lambda = -X_Su`."""
        ag = np.abs(g)
        if Minv is not None and _well_determined(cond, ag.min(), ag.max()):
            # G_m = M diag(g) is well conditioned, so lstsq's solution is the inverse's
            return -(Minv @ (Xs @ u)) / g
        Gm = (Xs @ Xs.T) * g[None, :]
        return np.linalg.lstsq(Gm, -(Xs @ u), rcond=None)[0]

    # ---- normal velocities and their rounding errors ---------------------------------
    def velocities(self, y, rows, cols=None, bounds=True):
        r"""Normal velocities of :math:`h_{kj}` from its − and + side and bounds of their
        uncertainty, for the units ``rows`` and the entries ``cols`` (default all):
        ``(hm, hp, em, ep, dead)``, each (len(rows), len(cols)).

        :math:`\dot h^\mp_{kj} = x_j\cdot\dot w_k` with entry (k, j) put on the − / +
        branch and the rest of the pattern (sliding included) as it is. ``dead``: the
        unit's − side velocity :math:`\dot w_k^-` is exactly zero (no other entry on
        the + side under ReLU), so it cannot leave the − side by itself. With ρ_j the
        uncertainty of the residual at entry j and :math:`|c_{kj}|` the coefficient's
        size, :math:`\epsilon^-_{kj} = \sum_l |c_{kl}||\sigma'(h_{kl})|\rho_l\,|x_l|\cdot
        |x_j| + \gamma_h|\dot w_k|\cdot|x_j|` and :math:`\epsilon^+ = \epsilon^- +
        |c_{kj}||g_{kj}|\rho_j\|x_j\|^2`. ``bounds=False``: the velocities alone (em,
        ep and dead are None)."""
        low = self.low
        X = self.X
        cols = np.arange(X.shape[0]) if cols is None else np.asarray(cols, dtype=int)
        Xc, xx, absXc = X[cols], self.xx[cols], self.absX[cols]
        rw_all, G_all = self._evaluate(y)
        rows = np.asarray(rows, dtype=int)
        rw = rw_all[rows]  # sliding entries on the - side here
        G = G_all[rows]
        mask, slide = self.mask[rows], self.slide[rows]
        Gc, maskc = G[:, cols], mask[:, cols]
        hm = rw @ Xc.T - maskc * Gc * xx[None, :]
        hp = hm + Gc * xx[None, :]
        counts = slide.sum(axis=1)
        if counts.any():  # sliding entries among the rows
            where = np.full(X.shape[0], -1)
            where[cols] = np.arange(cols.size)
            # The other sliding entries of the unit keep x_l . w_k' = 0 on either side of
            # entry j: w_k' = Pi (u + s g_kj x_j), Pi the projection that re-solves their
            # lambdas, so that lambda_j = hm/(hm - hp) is the joint solution's.
            one = np.flatnonzero(counts == 1)
            if one.size:
                # One sliding entry s: Pi = I - x_s x_s^T/|x_s|^2 (pinv of g_s |x_s|^2, so
                # Pi = I when that is 0), and Pi = I for entry s itself; vectorized over units.
                s_ = np.argmax(slide[one], axis=1)
                xs, xxs = X[s_], self.xx[s_]
                ok = G[one, s_] * xxs != 0
                with np.errstate(divide="ignore", invalid="ignore"):
                    inv = np.where(ok, 1.0 / np.where(ok, xxs, 1.0), 0.0)
                rws = rw[one]
                v = rws - (inv * np.einsum("kd,kd->k", xs, rws))[:, None] * xs
                xsc = xs @ Xc.T
                rr = xx[None, :] - inv[:, None] * xsc * xsc
                hm[one] = v @ Xc.T - maskc[one] * Gc[one] * rr
                hp[one] = hm[one] + Gc[one] * rr
                p = where[s_]
                sel = p >= 0
                r1, p1, s1 = one[sel], p[sel], s_[sel]
                hm[r1, p1] = np.einsum("kd,kd->k", rws[sel], X[s1])
                hp[r1, p1] = hm[r1, p1] + G[r1, s1] * self.xx[s1]
            for r in np.flatnonzero(counts > 1):
                S = np.flatnonzero(slide[r])
                Pi = self._projector(S, G[r])
                q = Xc @ (Pi @ rw[r])
                rr = np.einsum("id,id->i", Xc @ Pi.T, Xc)
                hm[r] = q - maskc[r] * Gc[r] * rr
                hp[r] = hm[r] + Gc[r] * rr
                for j in S[where[S] >= 0]:
                    p = where[j]
                    Pi = self._projector(S[S != j], G[r])
                    hm[r, p] = X[j] @ (Pi @ rw[r])
                    hp[r, p] = hm[r, p] + G[r, j] * (X[j] @ (Pi @ X[j]))
        if not bounds:
            return hm, hp, None, None, None
        rho, c = self._uncertainty(y)
        c = np.broadcast_to(c[rows], (rows.size, X.shape[0]))
        W = low.kink_weights(y)
        h = W[rows] @ X.T if self._abs_slopes is None else None
        T = self._deriv_abs(mask | slide, h)
        em = ((c * T * rho[None, :]) @ self.absX) @ absXc.T \
            + self.g_h * (np.abs(rw) @ absXc.T)
        ep = em + c[:, cols] * np.abs(Gc) * (rho[cols] * xx)[None, :]
        on = mask | slide
        dead = ((on.sum(axis=1)[:, None] - on == 0) & low.flat_minus)[:, cols]
        return hm, hp, em, ep, dead

    def class_velocities(self, y, k, c):
        r"""One-sided normal velocities of the shared surface :math:`h_{kc} = w_k\cdot u_c`
        of class c (:func:`shared_surfaces`) for unit k, and bounds of their uncertainty:
        ``(hm, hp, em, ep, dead)`` (scalars).

        On the − side of the surface the class's entries with :math:`s_j = -1` are on and
        the others off; on the + side the reverse: :math:`\dot h^\mp_{kc} = u_c\cdot
        \Pi(\dot w_k^0 + \sum_{j\in C,\,s_j=\mp1} g_{kj}x_j)`, :math:`\dot w_k^0` the
        frozen rhs with the class off and Π re-solving the unit's other sliding entries
        (:meth:`_projector`). The bounds are :meth:`velocities`' with :math:`u_c` for
        :math:`x_j` and the class's jump terms on the side that has them. ``dead``: the −
        side velocity is exactly zero (ReLU, no entry of the unit on there)."""
        low = self.low
        X, u = self.X, self.cdir[c]
        idx = self.classes[c]
        sj = self.sgn[idx]
        rw_all, G_all = self._evaluate(y)
        rw = np.array(rw_all[k])
        G = G_all[k]
        Xi = X[idx]
        vm = rw + (G[idx] * (sj < 0)) @ Xi
        vp = rw + (G[idx] * (sj > 0)) @ Xi
        others = np.flatnonzero(self.slide[k] & (self.cls != c))
        Pi = self._projector(others, G)
        hm, hp = float(u @ (Pi @ vm)), float(u @ (Pi @ vp))
        rho, cc = self._uncertainty(y)
        cc = np.broadcast_to(cc, self.mask.shape)[k]
        dp_abs, dm_abs = self._dabs
        h = low.kink_weights(y)[k] @ X.T
        T = self._deriv_abs(self.mask[k] | self.slide[k], h)
        absu = np.abs(u)
        em = float((cc * T * rho) @ (self.absX @ absu) + self.g_h * (np.abs(rw) @ absu))
        jump = float(dp_abs(np.zeros(1))[0] + dm_abs(np.zeros(1))[0])
        jt = cc[idx] * jump * rho[idx] * np.sqrt(self.xx[idx])
        ep = em + float(jt[sj > 0].sum())
        em = em + float(jt[sj < 0].sum())
        on = self.mask[k] | self.slide[k]
        on[idx] = False
        dead = bool(low.flat_minus and not on.any() and not (sj < 0).any())
        return hm, hp, em, ep, dead

    def _decide_class(self, y, k, c, hc0):
        """Side (or sliding) of class c of unit k, by the rule of :meth:`update` applied to
        the shared surface (:meth:`class_velocities`); ``hc0`` its h at the event."""
        hm, hp, em, ep, dead = self.class_velocities(y, k, c)
        idx = self.classes[c]
        sj = self.sgn[idx]
        on = not dead and hm > em and hp > ep
        down = not dead and not on and hm < -em
        plus = on or (down and hp > ep and hc0 > 0)
        sliding = not dead and not on and not down
        self.mask[k, idx] = False if sliding else (sj > 0 if plus else sj < 0)
        self.slide[k, idx] = sliding

    def _class_exits(self, y, g):
        """Write the shared surfaces' exit margins into ``g`` ((m, N), in place): a sliding
        class leaves its surface as one (its entries' own velocities are 0 there)."""
        for c, idx in enumerate(self.classes):
            for k in np.flatnonzero(self.slide[:, idx].any(axis=1)):
                hm, hp, em, ep, _dead = self.class_velocities(y, k, c)
                g[k, idx] = self._stay(hm, hp, em, ep)
        return g

    def _projector(self, S, g):
        r""":math:`\Pi = I - X_S^\top\,\mathrm{diag}(g_S)\,A^+X_S`,
        :math:`A_{jl} = g_l\,x_j\cdot x_l`: maps a velocity v of :math:`w_k` to the one
        with the sliding entries S's :math:`\lambda` chosen so that :math:`x_j\cdot v = 0`
        (:math:`j\in S`). When A is well conditioned (:data:`_COND_FAST`, with the
        spread of :math:`|g_S|`) :math:`A^+ = A^{-1}` and Π is the orthogonal projector
        onto :math:`\{x_j\cdot v = 0\}`, which depends on S only and is cached."""
        d = self.X.shape[1]
        if not len(S):
            return np.eye(d)
        P, cond = self._projector_cached(S)
        gs = np.abs(g[S])
        if P is not None and _well_determined(cond, gs.min(), gs.max()):
            return P
        XS = self.X[S]
        A = (XS @ XS.T) * g[S][None, :]
        return np.eye(d) - XS.T @ (g[S][:, None] * np.linalg.pinv(A)) @ XS

    def _projector_cached(self, S):
        r"""``(P, cond)``: the orthogonal projector onto :math:`\{x_j\cdot v = 0,\ j\in
        S\}` (``None`` unless cond < :data:`_COND_FAST`) and the condition number of
        :math:`X_SX_S^\top`, cached by the set S."""
        key = tuple(int(j) for j in S)
        cached = self._proj_cache.get(key)
        if cached is None:
            XS = self.X[S]
            M = XS @ XS.T
            cond = float(np.linalg.cond(M))
            P = (np.eye(XS.shape[1]) - XS.T @ np.linalg.solve(M, XS)) \
                if cond < _COND_FAST else None
            if len(self._proj_cache) > 4096:
                self._proj_cache.clear()
            cached = self._proj_cache[key] = (P, cond)
        return cached

    def crossing_margin(self, y):
        r"""(m, N): :math:`\pm h_{kj} + \delta_{kj}` (+ on the + branch), negative once
        entry (k, j) crossed its kink; :math:`\delta_{kj} = \gamma_h\,|w_k|\cdot|x_j|`
        bounds the rounding error of :math:`h_{kj}`, so rounding alone never counts as a
        crossing. Sliding entries: +inf (their end is :meth:`exit_margin`'s business)."""
        return self._crossing(y)[0]

    def _crossing(self, y):
        r""":meth:`crossing_margin` and the sizes :math:`|w_k|\cdot|x_j|` it was made
        from."""
        W = self.low.kink_weights(y)
        size = np.abs(W) @ self.absX.T
        g = (W @ self.X.T) * self._signs()
        g += self.g_h * size
        if self.sliding:
            g[self.slide] = np.inf
        return g, size

    @_per_pattern
    def _signs(self):
        """(m, N): +1 on the + branch, -1 elsewhere."""
        return np.where(self.mask, 1.0, -1.0)

    @_per_pattern
    def _slide_info(self):
        r"""Per sliding set: the sliding entries ``(kp, jp)`` (row-major),
        :math:`q_p = \Pi_{S_k\setminus j}x_j` and :math:`r_p = x_j\cdot q_p` with the
        orthogonal projectors (:meth:`_projector`'s well-conditioned case), and per unit
        with two or more sliding entries the start of its pairs and the condition number
        of :math:`X_SX_S^\top` (``None`` for q when one is not well conditioned)."""
        kp, jp, starts, ends = self._slide_layout()
        X = self.X
        q = np.array(X[jp])
        multi, conds = [], []
        for a, b in zip(starts[ends - starts > 1], ends[ends - starts > 1]):
            S = jp[a:b]
            _P, cond = self._projector_cached(S)
            if not cond < _COND_FAST:
                return kp, jp, None, None, multi, np.array(conds)
            multi.append((a, b))
            conds.append(cond)
            for i in range(a, b):
                # a subset of a well-conditioned set is well conditioned (interlacing)
                Pr, _cond = self._projector_cached(S[S != jp[i]])
                if Pr is None:  # pragma: no cover  (but for rounding in cond)
                    return kp, jp, None, None, multi, np.array(conds)
                q[i] = Pr @ X[jp[i]]
        return kp, jp, q, np.einsum("pd,pd->p", X[jp], q), multi, np.array(conds)

    def sliding_stay(self, y, signs_only=False):
        r"""Margins of the sliding region of the decision rule (:meth:`_stay`, >= 0 where
        sliding holds) of every sliding entry, in :meth:`_slide_info`'s order: the
        velocities of :meth:`velocities` for the sliding entries alone,
        :math:`\dot h^-_{kj} = q_{kj}\cdot\dot w_k^-`, :math:`\dot h^+ = \dot h^- +
        g_{kj}r_{kj}`. ``None`` when a sliding set is not well conditioned (its
        multipliers' spread included; then :meth:`velocities` decides).

        ``signs_only``: only the signs of the margins are wanted. The margin
        :math:`\min(\dot h^- + \epsilon^-, \max(\epsilon^- - \dot h^-, \epsilon^+ -
        \dot h^+))` only grows with the bounds :math:`\epsilon^\mp \ge 0`, in floating
        point too (rounding is monotone), so when it is non-negative for every entry
        with the bounds set to 0 those margins are returned, with the same signs, and the
        uncertainty (:meth:`velocities`' bounds) is not computed."""
        kp, jp, q, r, multi, conds = self._slide_info()
        if q is None:
            return None
        rw_all, G_all = self._evaluate(y)
        g = G_all[kp, jp]
        if multi:
            ag = np.abs(g)
            for (a, b), cond in zip(multi, conds):
                if not _well_determined(cond, ag[a:b].min(), ag[a:b].max()):
                    return None
        rw = rw_all[kp]
        hm = np.einsum("pd,pd->p", rw, q)
        hp = hm + g * r
        if signs_only:
            plain = self._stay(hm, hp, 0.0, 0.0)
            if plain.min() >= 0:
                return plain
        rho, c = self._uncertainty(y)
        c = np.broadcast_to(c, self.mask.shape)
        on = self.mask | self.slide
        rows = np.unique(kp)
        W = self.low.kink_weights(y)
        h = W[rows] @ self.X.T if self._abs_slopes is None else None
        T = self._deriv_abs(on[rows], h)
        ctr = np.empty((self.mask.shape[0], self.X.shape[1]))
        ctr[rows] = (c[rows] * T * rho[None, :]) @ self.absX
        absx = self.absX[jp]
        em = np.einsum("pd,pd->p", ctr[kp] + self.g_h * np.abs(rw), absx)
        ep = em + c[kp, jp] * np.abs(g) * rho[jp] * self.xx[jp]
        return self._stay(hm, hp, em, ep)

    @staticmethod
    def _stay(hm, hp, em, ep):
        """Margin of the sliding region of the decision rule: >= 0 where sliding holds."""
        return np.minimum(hm + em, np.maximum(em - hm, ep - hp))

    def exit_margin(self, y):
        """(m, N): negative where a sliding entry must leave its surface, +inf elsewhere."""
        g = np.full(self.slide.shape, np.inf)
        if self.sliding:
            rows = np.flatnonzero(self.slide.any(axis=1))
            cols = np.flatnonzero(self.slide[rows].any(axis=0))
            hm, hp, em, ep, _dead = self.velocities(y, rows, cols)
            sub = g[rows]
            sub[:, cols] = np.where(self.slide[np.ix_(rows, cols)],
                                    self._stay(hm, hp, em, ep), np.inf)
            g[rows] = sub
            if self.classes:
                self._class_exits(y, g)
        return g

    def events(self, y):
        """(m, N) bool: entries whose side must change at ``y``: crossings past the
        rounding band whose velocity on the frozen side does not decidedly point back
        (else the crossing is integration error of h, not a kink), and sliding entries
        outside the sliding region of the decision rule (memoized per pattern and state:
        the location and the decision at a kink ask for the same states)."""
        return self._memo(self._memo_events, y, self._events).copy()

    def _events(self, y):
        margin, size = self._crossing(y)
        cross = margin < 0
        if not cross.any() and not self.sliding:
            return cross
        # Only a crossing by less than the integrator's tolerance on h can be integration
        # error; deeper ones are kinks whatever the velocities say.
        shallow = cross & (margin > -(self.atol * self.x1[None, :] + self.rtol * size))
        stay = self.sliding_stay(y, signs_only=True) \
            if self.sliding and not self.classes else None
        if stay is not None or not self.sliding:
            # the sliding entries (if any) from their own velocities, the shallow crossings
            # from theirs
            ev = cross.copy()
            if stay is not None:
                kp, jp = self._slide_info()[:2]
                ev[kp, jp] = stay < 0
            rows = np.flatnonzero(shallow.any(axis=1))
            if not rows.size:
                return ev
            cols = np.flatnonzero(shallow[rows].any(axis=0))
            ev[np.ix_(rows, cols)] &= ~self._points_back(y, rows, cols, shallow)
            return ev
        rows = np.flatnonzero(shallow.any(axis=1) | self.slide.any(axis=1))
        if not rows.size:
            return cross
        cols = np.flatnonzero(shallow[rows].any(axis=0) | self.slide[rows].any(axis=0))
        hm, hp, em, ep, _dead = self.velocities(y, rows, cols)
        ix = np.ix_(rows, cols)
        back = shallow[ix] & np.where(self.mask[ix], hp > ep, hm < -em)
        ev = cross.copy()
        ev[ix] = (cross[ix] & ~back) | (self.slide[ix] & (self._stay(hm, hp, em, ep) < 0))
        if self.classes and self.sliding:
            stay = self._class_exits(y, np.full(ev.shape, np.inf))
            grouped = self.slide & (self.cls >= 0)[None, :]
            ev[grouped] = stay[grouped] < 0
        return ev

    def _points_back(self, y, rows, cols, shallow):
        r"""(len(rows), len(cols)) bool: the ``shallow`` crossings whose velocity on the
        side they were on decidedly points back (:math:`\dot h^+ > \epsilon^+` on the +
        side, :math:`\dot h^- < -\epsilon^-` on the − side). Since the bounds are >= 0,
        that needs :math:`\dot h^+ > 0` (:math:`\dot h^- < 0`): the bounds (the
        uncertainty) are computed only when a velocity alone points back."""
        ix = np.ix_(rows, cols)
        on = self.mask[ix]
        hm, hp, _em, _ep, _dead = self.velocities(y, rows, cols, bounds=False)
        back = shallow[ix] & np.where(on, hp > 0, hm < 0)
        if back.any():
            hm, hp, em, ep, _dead = self.velocities(y, rows, cols)
            back = shallow[ix] & np.where(on, hp > ep, hm < -em)
        return back

    def changed(self, y) -> bool:
        return bool(self.events(y).any())

    def locate(self, dense, t_old, t_new, y_end=None):
        """First time in (t_old, t_new] where the pattern changes: the first root of the
        crossing margins of the entries that changed by the step's end, on the step's
        polynomial (:meth:`_polynomial_root`; Brent's method on their smallest margin when
        sliding exits are among them), a bracket of width 8ε max(1, |t|) around it checked
        on the margin itself (so the root is as accurate as the dense output), then
        bisection on :meth:`changed` if another entry changed earlier (two changes inside
        one step), from the nearest bracket found by stepping back from the root.
        ``y_end``: the accepted state at ``t_new``, whose events (already computed,
        memoized) give the candidates when the dense output agrees with them at
        ``t_new``."""
        cand = None if y_end is None else self.events(y_end)
        if cand is not None and not cand.any():
            cand = None
        gap = None if cand is None else self._gap(dense, cand)
        if gap is not None and not gap(t_new) < 0:
            cand = gap = None
        if cand is None:
            cand = self.events(dense(t_new))
            gap = self._gap(dense, cand)

        tol = 8 * _EPS * max(1.0, abs(t_new))
        lo, hi = t_old, t_new
        root = self._polynomial_root(dense, cand, tol)
        if root is None and gap(lo) > 0:
            # Brent stops within xtol + rtol |r| <= 3 tol / 4 of the root r; a bracket of
            # width tol around it, widened or moved back below if it missed
            root, converged = _brent(gap, lo, hi, xtol=tol / 4, rtol=4 * _EPS)
            if not converged:
                # Brent's interpolation steps can stall where the margin is flat at the
                # level of its round-off; bisection of the same bracket always ends.
                root = _bisect_sign_change(gap, lo, hi, tol / 4)
        elif root is not None and np.isnan(root):
            # no sign change seen on the grid (a tangency, or a crossing at the level of
            # the margin's round-off): bisection of the margin itself
            root = _bisect_sign_change(gap, lo, hi, tol / 4) if gap(lo) > 0 else None
        if root is not None:
            # 0.7 tol wide: its ends' rounding (half an ulp each, an ulp <= tol / 8) keeps
            # it within tol, so no bisection step (a pattern test) follows just for that
            lo, hi = max(lo, root - 0.35 * tol), min(hi, root + 0.35 * tol)
            while gap(hi) >= 0 and hi < t_new:
                lo, hi = hi, min(t_new, hi + 2 * (hi - lo) + tol)
            if self.changed(dense(lo)):
                # another change before: step back (x4 each time) to a time without one
                hi, back = lo, tol
                lo = max(t_old, hi - back)
                while lo > t_old and self.changed(dense(lo)):
                    hi, back = lo, 4 * back
                    lo = max(t_old, hi - back)
        while hi - lo > tol:
            mid = 0.5 * (lo + hi)
            if not self.changed(dense(mid)):
                lo = mid
            else:
                hi = mid
        return hi

    def _polynomial_root(self, dense, cand, tol):
        r"""The first time in the step where a crossing candidate's margin turns negative,
        from the step's own polynomial: on the dense output
        :math:`y(t_{old} + x h) = \sum_p C_p x^p` (``dense.power_coefficients()``) the
        margin :math:`s_{kj}\,w_k\cdot x_j + \gamma_h |w_k|\cdot|x_j|` of
        :meth:`crossing_margin` is a polynomial in x (``kink_weights`` is linear; |w_k|
        with the signs of :math:`w_k` at the step's end, exact while no weight changes
        sign inside the step, and only a round-off-sized term otherwise), so one product
        gives every candidate's coefficients and :func:`first_root` the first of their
        roots. The result is an estimate for :meth:`locate`'s exact tests (the margin on
        the dense output and :meth:`changed` decide the bracket, as for Brent's root).

        Returns ``None`` where it does not apply (sliding exits among the candidates,
        a dense output without power coefficients) or where the smallest margin is not
        positive at ``t_old`` (as ``gap(t_old) <= 0``: :meth:`locate` bisects on
        :meth:`changed`), NaN when no candidate's polynomial changes sign on the grid,
        else the time."""
        coefficients = getattr(dense, "power_coefficients", None)
        if coefficients is None or (self.sliding and bool((cand & self.slide).any())):
            return None
        kp, jp = np.nonzero(cand)
        C = coefficients()
        Wc = self.low.kink_weights(C)[:, kp]  # (powers, K, d), kink_weights is linear
        x = self.X[jp]
        sign = np.where(self.mask[kp, jp], 1.0, -1.0)
        W_end = Wc.sum(axis=0)  # the weights at x = 1
        # s x_j . w_k + g_h |x_j| . (sign(w_k) w_k), one contraction over d
        P = np.einsum("pkd,kd->kp", Wc, sign[:, None] * x
                      + self.g_h * np.sign(W_end) * self.absX[jp])
        # x = 0 exactly: the margin at y_old with its own |w_k|
        W0 = Wc[0]
        P[:, 0] = sign * np.einsum("kd,kd->k", W0, x) + self.g_h * np.einsum(
            "kd,kd->k", np.abs(W0), self.absX[jp])
        if not P[:, 0].min() > 0:
            return None
        h = dense.t - dense.t_old
        root = first_root(P, tol / (4 * abs(h)))
        return root if np.isnan(root) else float(dense.t_old + root * h)

    def _gap(self, dense, cand):
        """The smallest margin over the candidate entries ``cand`` at time t on ``dense``:
        crossing margins, and the exit margins of the sliding candidates (the velocities
        of their units only)."""
        crossing = cand & ~self.slide
        exits = cand & self.slide
        any_crossing, any_exit = bool(crossing.any()), bool(exits.any())
        full_exits = any_exit and bool(self.classes)
        if any_exit and not full_exits:
            erows = np.flatnonzero(exits.any(axis=1))
            ecols = np.flatnonzero(exits[erows].any(axis=0))
            esel = exits[np.ix_(erows, ecols)]
            kp, jp = self._slide_info()[:2]
            pick = exits[kp, jp]

        def gap(t):
            y = dense(t)
            g = np.inf
            if any_crossing:
                g = float(np.min(self.crossing_margin(y)[crossing]))
            if full_exits:
                g = min(g, float(np.min(self.exit_margin(y)[exits])))
            elif any_exit:
                stay = self.sliding_stay(y)
                if stay is not None:
                    g = min(g, float(np.min(stay[pick])))
                else:
                    hm, hp, em, ep, _dead = self.velocities(y, erows, ecols)
                    g = min(g, float(np.min(self._stay(hm, hp, em, ep)[esel])))
            return g

        return gap

    # ---- decisions at a kink -----------------------------------------------------------
    def at_boundary(self, y):
        """Entries within rounding of their kink (used at t = 0)."""
        W = self.low.kink_weights(y)
        h = W @ self.X.T
        return np.abs(h) <= self.g_h * (np.abs(W) @ self.absX.T)

    def update(self, y, involved=None):
        r"""Decide the side of every entry that crossed or left its sliding surface at
        ``y`` (or of ``involved``), each with the rest of its unit's pattern as it is,
        by the rule of :mod:`exactdyn.numeric.twolayer`'s docstring; then put the sliding
        and decided entries of each unit exactly on their surfaces (orthogonal projection
        of :math:`w_k` onto :math:`\{x_j\cdot w = 0\}`, a move of the size of the
        rounding error of h). Entries sharing a surface (:func:`shared_surfaces`) are
        involved, decided and put on it together (:meth:`_decide_class`). Returns the
        projected state."""
        if involved is None:
            involved = self.events(y)
        involved = np.array(involved, bool)
        for idx in self.classes:  # a shared surface changes as a whole
            involved[:, idx] = involved[:, idx].any(axis=1)[:, None]
        self.slide &= ~involved
        self.mask &= ~involved
        self._refresh()
        W0 = self.low.kink_weights(y)
        h0 = W0 @ self.X.T
        # Units are decided independently (at h = 0 both branches give sigma(0), so the
        # output does not depend on the choice); a unit's own entries one per round.
        todo = involved & (self.xx > 0)[None, :]  # x_j = 0: h_kj = 0 forever, stays off
        while todo.any():
            rows = np.flatnonzero(todo.any(axis=1))
            cols = np.argmax(todo[rows], axis=1)
            if self.classes:
                grouped = self.cls[cols] >= 0
                for k, j in zip(rows[grouped], cols[grouped]):
                    c = self.cls[j]
                    self._decide_class(y, k, c, float(W0[k] @ self.cdir[c]))
                    todo[k, self.classes[c]] = False
                    self._refresh()
                rows, cols = rows[~grouped], cols[~grouped]
                if not rows.size:
                    continue
            uniq, pos = (cols, np.zeros(1, int)) if cols.size == 1 else \
                np.unique(cols, return_inverse=True)
            hm, hp, em, ep, dead = (v[np.arange(rows.size), pos]
                                    for v in self.velocities(y, rows, uniq))
            on = ~dead & (hm > em) & (hp > ep)
            down = ~dead & ~on & (hm < -em)
            self.mask[rows, cols] = on | (down & (hp > ep) & (h0[rows, cols] > 0))
            self.slide[rows, cols] = ~dead & ~on & ~down
            todo[rows, cols] = False
            self._refresh()
        W = np.array(W0)
        pin = (self.slide | involved) & (self.xx > 0)[None, :]
        units = np.flatnonzero(pin.any(axis=1))
        if not self.classes and self.X.shape[1] > 1:
            # units pinned to one surface, all at once: lstsq's solution of the 1 x 1
            # system, |x_j|^2 > 0
            one = pin[units].sum(axis=1) == 1
            ks = units[one]
            jj = np.argmax(pin[ks], axis=1)
            x = self.X[jj]
            W[ks] -= x * (np.einsum("kd,kd->k", x, W[ks]) / self.xx[jj])[:, None]
            units = units[~one]
        for k in units:
            idx = np.flatnonzero(pin[k])
            if self.classes:  # one surface, one constraint: a representative per class
                c = self.cls[idx]
                _u, first = np.unique(np.where(c >= 0, c, -1 - idx), return_index=True)
                idx = idx[np.sort(first)]
            if idx.size and self.X.shape[1] == 1:
                # 1-D inputs: h = 0 means w_k = 0, exactly (the projection below leaves a
                # residual of either sign, which the crossing test would take for a kink)
                W[k] = 0.0
            elif idx.size == 1:  # lstsq's solution of the 1 x 1 system, |x_j|^2 > 0
                x = self.X[idx[0]]
                W[k] -= x * ((x @ W[k]) / self.xx[idx[0]])
            elif idx.size:
                Xi = self.X[idx]
                W[k] -= Xi.T @ np.linalg.lstsq(Xi @ Xi.T, Xi @ W[k], rcond=None)[0]
        return self.low.kink_replace(y, W)


def integrate(low: KinkFlow, y0, times, method="DOP853", rtol=1e-10, atol=1e-10,
              max_kinks=100_000, kinked=True, max_steps=None, progress=None):
    """States at ``times`` (rows) and statistics of an integration through kinks: the
    pattern frozen per segment, each change located on the step's dense output
    (:meth:`KinkState.locate`) and decided by :meth:`KinkState.update`, the integrator
    restarted there with the last accepted step size. More than ``max_kinks`` changes
    raise :class:`~exactdyn.IntegrationError`. ``stats``: ``nfev``, ``kinks``,
    ``sliding_at_end``, ``sliding_entries`` ((unit, entry) pairs), ``steps`` (accepted
    steps) and ``seconds`` (wall time of the integration; :meth:`exactdyn.Trajectory.equals`
    leaves it out). ``kinked=False``: a
    smooth activation, the same stepping on ``low.rhs`` without pattern tests. A rhs that is
    not finite where a segment starts, or more than ``max_steps`` accepted steps in all
    (default :data:`~exactdyn.numeric.stepping.DEFAULT_MAX_STEPS`), raise
    :class:`~exactdyn.IntegrationError` too (:mod:`exactdyn.numeric.stepping`).
    ``progress``: an :class:`exactdyn._progress.Progress` over the time span, moved to the
    time reached after each step, with the kinks met so far (it reads, never steers).
    A flow whose explicit steps are held by stability (:mod:`exactdyn.numeric.stepping`,
    after ``REST_MIN_STEPS`` steps) continues with Radau, kinks located the same way, and
    once settled with no activation left to change is held to the last time; ``stats``
    say so (``switched_to``, ``switched_at``, ``at_rest_from``)."""
    import time

    from . import stepping
    from .runge_kutta import EXPLICIT_METHODS, solver_class

    started = time.perf_counter()

    cls = EXPLICIT_METHODS[method]
    stepping.check_rtol(rtol, method)
    max_steps = stepping.check_max_steps(stepping.DEFAULT_MAX_STEPS if max_steps is None
                                         else max_steps)
    y0 = np.asarray(y0, float)
    ys = np.empty((len(times), low.size))
    T = float(times[-1])
    done = int(np.searchsorted(times, 0.0, side="right"))
    ys[:done] = y0
    t, y = 0.0, y0
    kinks = KinkState(low, y0, rtol, atol) if kinked else None
    if kinks is not None:
        y = kinks.update(y, kinks.at_boundary(y))
    fun = stepping.Guarded(kinks.rhs if kinks is not None else low.rhs,
                           stepping.EVALS_PER_STEP * max_steps)
    stats = {"nfev": 0, "kinks": 0}
    step = None  # after a kink, restart with the last accepted step size
    nsteps = 0
    # A flow whose explicit steps are held by stability (stepping's module docstring):
    # after REST_MIN_STEPS steps, the rest of the run (segments and kinks alike) goes with
    # Radau; once Radau's state is settled, and the displacement still to come changes no
    # activation, it is held to T.
    stiff_test = stepping.StiffnessTest(method)
    while t < T:
        first = None if step is None else min(step, T - t)
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                solver = cls(fun, t, y, T, rtol=rtol, atol=atol, first_step=first)
            except stepping._Exhausted:
                raise stepping.budget_error(max_steps, t, T) from None
        if not np.all(np.isfinite(solver.f)):
            raise stepping.nonfinite_initial(t)
        crossed = switch = at_rest = False
        with np.errstate(over="ignore", invalid="ignore"):
            while solver.status == "running":
                t_old = solver.t
                if nsteps >= max_steps:
                    raise stepping.budget_error(max_steps, float(t_old), T)
                nsteps += 1
                try:
                    solver.step()
                except stepping._Exhausted:
                    raise stepping.budget_error(max_steps, float(t_old), T) from None
                if solver.status == "failed":
                    raise IntegrationError(f"{method} failed: step size collapsed",
                                           t_reached=float(t_old))
                if not np.all(np.isfinite(solver.y)):
                    raise IntegrationError("the state stopped being finite",
                                           t_reached=float(t_old))
                t_new = solver.t
                step = t_new - t_old
                dense = None
                if kinks is not None and kinks.changed(solver.y):
                    dense = solver.dense_output()
                    t_new, crossed = kinks.locate(dense, t_old, t_new, solver.y), True
                upto = int(np.searchsorted(times, t_new, side="right"))
                if upto > done:
                    dense = dense or solver.dense_output()
                    ys[done:upto] = dense(times[done:upto]).T
                    done = upto
                if progress is not None:
                    progress.to(float(t_new))
                if crossed:
                    t, y = t_new, dense(t_new)
                    break
                if cls not in EXPLICIT_METHODS.values():  # Radau, after the switch
                    d = stepping.rest_displacement(solver, rtol, atol)
                    if d is not None and (kinks is None or not kinks.changed(solver.y + d)):
                        ys[done:] = solver.y
                        done = len(times)
                        stats["at_rest_from"] = float(solver.t)
                        at_rest = True
                        break
                elif (nsteps + stepping.STIFF_STEPS >= stepping.REST_MIN_STEPS
                        and solver.status == "running" and stiff_test.update(solver, step)
                        and nsteps >= stepping.REST_MIN_STEPS):
                    t, y, switch = float(solver.t), np.array(solver.y), True
                    break
        stats["nfev"] += solver.nfev
        if switch:
            cls = solver_class(stepping.REST_METHOD)  # imports scipy.integrate only now
            stats.update(switched_to=stepping.REST_METHOD, switched_at=t)
            continue
        if at_rest:
            if progress is not None:
                progress.to(T)
            break
        if not crossed:
            break
        stats["kinks"] += 1
        if progress is not None:
            progress.to(float(t), f"{stats['kinks']} kink" + "s" * (stats["kinks"] != 1))
        if stats["kinks"] > max_kinks:
            raise IntegrationError(f"more than max_kinks={max_kinks} activation-pattern "
                                   "changes", t_reached=t)
        y = kinks.update(y)
    if done < len(times):  # pragma: no cover  (solver stopped short of T)
        ys[done:] = solver.y
    if kinks is not None:
        stats["sliding_at_end"] = int(kinks.slide.sum())
        stats["sliding_entries"] = np.argwhere(kinks.slide).tolist()
    stats["steps"] = nsteps
    stats["seconds"] = time.perf_counter() - started
    return ys, stats
