r"""Lowered gradient flow of :class:`~exactdyn.TwoLayerCNN`.

The right-hand side and the observables are generated from the per-kernel, per-patch
derivation of :mod:`exactdyn.symbolic.cnn` by the indexed lowerer of
:mod:`exactdyn.numeric.indexed`, with the CNN's axes (sample, position, patch entry,
channel) and one rule for reductions: a sum over several indices whose factors split
into one factor and a product of the others that share no free axis becomes one
matrix product over the flattened summed axes (:func:`contract`, BLAS, no copies). So

- :math:`h_{ik\beta} = \sum_l X_{ikl}W_{l\beta}` is one
  (nP × D)(D × M) product on the patch array extracted once with a strided view
  (:func:`exactdyn.models.cnn.extract_patches`);
- :math:`f_i = \sum_{k\beta}\sigma(h_{ik\beta})a_{k\beta}` contracts (position, channel);
- :math:`\dot W_{l\beta} = -\frac1{\alpha n}\sum_{i,k}X_{ikl}\,e_i a_{k\beta}
  \sigma'(h_{ik\beta})` contracts (sample, position) in one product, the sums over samples
  and positions merged symbolically first (:func:`exactdyn.symbolic.cnn.merge_sums`).

Equal subexpressions are generated once (h, σ(h), e). No Python loop over positions,
kernels or samples remains.
"""

from __future__ import annotations

import numpy as np

from ..trajectory import Trajectory
from .indexed import _Lowerer, lower_indexed

_LETTER = {"sample": "i", "position": "k", "patch": "l", "channel": "b"}
_SOURCES: dict = {}


class CNNLowerer(_Lowerer):
    """The indexed lowerer with the CNN's axis order and matrix-product reductions."""

    from ..symbolic.cnn import KIND_ORDER as order

    def reduce(self, s):
        import sympy as sp

        summed = [self.kinds[lim[0]] for lim in s.limits]
        if len(set(summed)) != len(summed):
            raise NotImplementedError(f"two summation indices of one kind in {s}")
        scalars, arrays = [], []
        for f in sp.Mul.make_args(s.function):
            code, labels = self.lower(f)
            (arrays if labels else scalars).append((code, labels))
        summed = self.canon(summed)
        every = self.canon(sum((lab for _c, lab in arrays), ()))
        if not set(summed) <= set(every):
            raise NotImplementedError(f"summand of {s} does not depend on every index")
        out = tuple(k for k in every if k not in summed)
        code = self._matmul(arrays, summed, out) if len(arrays) > 1 else None
        if code is None and len(arrays) == 1:
            (ca, la), = arrays
            axes = tuple(la.index(k) for k in summed)
            code = f"np.sum({ca}, axis={axes if len(axes) > 1 else axes[0]})"
        elif code is None:
            spec = ",".join("".join(_LETTER[k] for k in lab) for _c, lab in arrays)
            spec += "->" + "".join(_LETTER[k] for k in out)
            code = f"np.einsum({spec!r}, {', '.join(c for c, _l in arrays)}, optimize=True)"
        name, labels = self.emit(code, out)
        if scalars:
            return self.emit("(" + " * ".join([c for c, _l in scalars] + [name]) + ")", labels)
        return name, labels

    def _matmul(self, arrays, summed, out):
        """``_contract(A, B, axes_a, axes_b)`` when one factor's free axes are disjoint from the
        others' and every factor side carries all summed axes; None otherwise."""
        for pick in range(len(arrays)):
            rest = [arrays[q] for q in range(len(arrays)) if q != pick]
            rest_labels = self.canon(sum((lab for _c, lab in rest), ()))
            pc, pl = arrays[pick]
            if not (set(summed) <= set(pl) and set(summed) <= set(rest_labels)):
                continue
            if set(pl) & set(rest_labels) != set(summed):
                continue
            if len(rest) > 1:
                prod = self.emit("(" + " * ".join(self.align(c, lab, rest_labels)
                                                  for c, lab in rest) + ")", rest_labels)
            else:
                prod = rest[0]
            # Prefer the operand order whose result is already in canonical order.
            options = []
            for (c1, l1), (c2, l2) in (((pc, pl), prod), (prod, (pc, pl))):
                got = tuple(k for k in l1 if k not in summed) + \
                    tuple(k for k in l2 if k not in summed)
                ax1 = tuple(l1.index(k) for k in summed)
                ax2 = tuple(l2.index(k) for k in summed)
                options.append((got != out, c1, c2, ax1, ax2, got))
            options.sort(key=lambda o: o[0])
            _bad, c1, c2, ax1, ax2, got = options[0]
            code = f"_contract({c1}, {c2}, {ax1}, {ax2})"
            if got != out:
                code = f"np.transpose({code}, {tuple(got.index(k) for k in out)})"
            return code
        return None


def contract(A, B, axes_a, axes_b):
    r""":math:`\sum` over ``axes_a`` of A and ``axes_b`` of B, as one matrix product.

    Like :func:`numpy.tensordot` (result axes: A's free axes, then B's), but a block of
    summed axes at either end of an operand is flattened in place and transposed as a
    view, so the patch array and the n × P × M intermediates are never copied (tensordot
    copies an operand whose summed axes lead)."""
    ka, kb = tuple(axes_a), tuple(axes_b)
    fa = [i for i in range(A.ndim) if i not in ka]
    fb = [i for i in range(B.ndim) if i not in kb]
    size = 1
    for i in ka:
        size *= A.shape[i]
    if ka == tuple(range(A.ndim - len(ka), A.ndim)):
        A2 = A.reshape(-1, size)
    elif ka == tuple(range(len(ka))):
        A2 = A.reshape(size, -1).T
    else:
        A2 = A.transpose(fa + list(ka)).reshape(-1, size)
    if kb == tuple(range(len(kb))):
        B2 = B.reshape(size, -1)
    elif kb == tuple(range(B.ndim - len(kb), B.ndim)):
        B2 = B.reshape(-1, size).T
    else:
        B2 = B.transpose(list(kb) + fb).reshape(size, -1)
    return (A2 @ B2).reshape(tuple(A.shape[i] for i in fa) + tuple(B.shape[i] for i in fb))


def sources():
    """Generated sources of the rhs and the observables (derived once per process)."""
    if not _SOURCES:
        import sympy as sp

        from ..symbolic import cnn as sc

        flow = sc.derive_cnn_flow()
        arrays = (sc.A, sc.W, sc.XS, sc.YS)
        funcs = {sc.SIGMA: "_sigma", sc.DSIGMA: "_dsigma"}
        _SOURCES["rhs"] = lower_indexed([sc.merge_sums(flow.rhs[sc.A]),
                                         sc.merge_sums(flow.rhs[sc.W])], arrays,
                                        sc.INDEX_KINDS, funcs, "rhs", lowerer=CNNLowerer)
        # Per-(sample, position, channel) coefficient G_ikb of the kernel's flow,
        # dW_b/dt = sum_ik G_ikb X_ik (the derived summand divided by X[i, k, r]).
        rw = sc.merge_sums(flow.rhs[sc.W])
        (sw,) = [f for f in sp.Mul.make_args(rw) if isinstance(f, sp.Sum)]
        coef = (rw / sw) * sw.function / sc.XS[sc.I, sc.K, sc.R]
        _SOURCES["coef"] = lower_indexed([coef], arrays, sc.INDEX_KINDS, funcs, "coef",
                                         lowerer=CNNLowerer)
        _SOURCES["obs"] = lower_indexed([flow.observables["output"], flow.observables["loss"]],
                                        arrays, sc.INDEX_KINDS, funcs, "observables",
                                        lowerer=CNNLowerer)
    return _SOURCES


class LoweredCNN:
    """Numeric callables for one :class:`~exactdyn.TwoLayerCNN` instance.

    The flat state is ``concatenate([W.ravel(), a.ravel()])`` with W of shape
    s × s × C × M (its D × M reshape is the lowered kernel matrix) and a of shape
    H' × W' × M (its P × M reshape the lowered readout).
    """

    def __init__(self, model):
        self.model = model
        src = sources()
        self.sources = {k: v.source for k, v in src.items()}
        sig, dsig = model.act.numeric()
        self.kinks = model.act.piecewise
        self.mask = None
        if self.kinks:  # σ from its analytic branches: where(h > 0, σ+, σ−), σ'(0) = σ'−
            sig, dsig = self._setup_kinks(model)
        ns = {"_sigma": sig, "_dsigma": dsig, "_contract": contract}
        self._rhs = src["rhs"].function(ns)
        self._obs = src["obs"].function(ns)
        self.D, self.P, self.M = model.patch_dim, model.positions, model.channels
        self.w_shape = model.W0.shape
        self.a_shape = model.a0.shape
        self.nw = self.D * self.M
        self.size = self.nw + self.P * self.M

    def _setup_kinks(self, model):
        """Frozen-pattern right-hand side: σ = σ+ where ``self.mask`` (h > 0 at the last
        restart), σ− elsewhere, with the analytic branches of the activation. Returns the
        unfrozen (σ, σ') built from the same branches."""
        import scipy.special
        import sympy as sp

        from ..models.activations import X
        from .twolayer import _branches

        plus, minus = _branches(model.act)
        mods = [{"erf": scipy.special.erf}, "numpy"]
        # σ = σ− + 1{h > 0}(σ+ − σ−), simplified in sympy (ReLU: pos*x, σ': pos), so the
        # pattern enters as one multiplication instead of numpy.where (6× slower here).
        pos = sp.Symbol("pos")
        dplus, dminus = sp.diff(plus, X), sp.diff(minus, X)
        fs = sp.lambdify((X, pos), sp.simplify(minus + pos * (plus - minus)), modules=mods)
        fd = sp.lambdify((X, pos), sp.simplify(dminus + pos * (dplus - dminus)), modules=mods)
        dp, dm = (sp.lambdify(X, e, modules=mods) for e in (dplus, dminus))

        def branchwise(f, which):
            def g(h):
                mask = (h > 0) if which is None else which()
                return np.broadcast_to(np.asarray(f(h, mask), float), h.shape)
            return g

        frozen = {"_sigma": branchwise(fs, lambda: self.mask),
                  "_dsigma": branchwise(fd, lambda: self.mask), "_contract": contract}
        self._rhs_frozen = sources()["rhs"].function(frozen)
        sig, dsig = branchwise(fs, None), branchwise(fd, None)

        # The jump of the kernel's flow across the kink: G with sigma' -> sigma'_+ - sigma'_-.
        jump = {"_sigma": sig, "_dsigma": lambda h: np.asarray(dp(h) - dm(h), float)
                * np.ones_like(h), "_contract": contract}
        self._coef_jump = sources()["coef"].function(jump)
        self.slide = None
        return sig, dsig

    def pack(self, state) -> np.ndarray:
        """Flat vector from ``{"W": ..., "a": ...}``."""
        return np.concatenate([np.ravel(state["W"]), np.ravel(state["a"])])

    def unpack(self, y) -> dict:
        """``{"W": (..., s, s, C, M), "a": (..., H', W', M)}`` from flat states."""
        y = np.asarray(y)
        lead = y.shape[:-1]
        return {"W": y[..., :self.nw].reshape(lead + self.w_shape),
                "a": y[..., self.nw:].reshape(lead + self.a_shape)}

    def rhs(self, t, y):
        r"""The lowered right-hand side :math:`(\dot W, \dot a)`, flat."""
        m = self.model
        W = y[:self.nw].reshape(self.D, self.M)
        a = y[self.nw:].reshape(self.P, self.M)
        ra, rw = self._rhs(a, W, m.patches, m.y, m.alpha, m.n)
        out = np.empty(self.size)
        out[:self.nw] = np.ravel(rw)
        out[self.nw:] = np.ravel(ra)
        return out

    def rhs_frozen(self, t, y):
        """The rhs with the activation pattern frozen at ``self.mask``."""
        m = self.model
        W = y[:self.nw].reshape(self.D, self.M)
        a = y[self.nw:].reshape(self.P, self.M)
        ra, rw = self._rhs_frozen(a, W, m.patches, m.y, m.alpha, m.n)
        rw = np.array(np.broadcast_to(rw, (self.D, self.M)))
        if self.slide is not None and self.slide.any():
            rw += self._sliding(a, W, rw)[0]
        out = np.empty(self.size)
        out[:self.nw] = rw.ravel()
        out[self.nw:] = np.ravel(np.broadcast_to(ra, (self.P, self.M)))
        return out

    def preactivations(self, y):
        """:math:`h_{ik\beta}`, n × P × M, at one flat state."""
        return contract(self.model.patches, y[:self.nw].reshape(self.D, self.M), (2,), (0,))

    def pattern(self, y):
        return self.preactivations(y) > 0

    def _sliding(self, a, W, rw):
        r"""Filippov's convex combination on sliding entries :math:`h_{ik\beta} = 0`.

        :math:`\dot W_\beta = \dot W_\beta^- + \sum_{(i,k)\in S_\beta}\lambda_{ik}
        J_{ik\beta}X_{ik}`, :math:`J` the jump of the kernel's flow coefficient across the
        kink (generated from the derivation), λ solving :math:`X_{jl}\cdot\dot W_\beta = 0`
        on :math:`S_\beta`; λ ∈ [0, 1] while the sliding lasts. Returns (correction, λ).
        """
        m = self.model
        J = np.broadcast_to(self._coef_jump(a, W, m.patches, m.y, m.alpha, m.n)[0],
                            self.slide.shape)
        corr = np.zeros_like(W)
        lam = np.zeros(self.slide.shape)
        for b in np.flatnonzero(self.slide.any(axis=(0, 1))):  # channels that slide
            ii, kk = np.nonzero(self.slide[:, :, b])
            Xs = m.patches[ii, kk]
            G = (Xs @ Xs.T) * J[ii, kk, b][None, :]
            sol = np.linalg.lstsq(G, -(Xs @ rw[:, b]), rcond=None)[0]
            lam[ii, kk, b] = sol
            corr[:, b] = (sol * J[ii, kk, b]) @ Xs
        return corr, lam

    def _split(self, y):
        return (y[self.nw:].reshape(self.P, self.M), y[:self.nw].reshape(self.D, self.M))

    def _frozen_w(self, a, W):
        m = self.model
        _ra, rw = self._rhs_frozen(a, W, m.patches, m.y, m.alpha, m.n)
        return np.array(np.broadcast_to(rw, (self.D, self.M)))

    def lambdas(self, y):
        a, W = self._split(y)
        return self._sliding(a, W, self._frozen_w(a, W))[1]

    def _changed(self, y):
        """Did a non-sliding entry change sign, or a sliding entry's λ leave [0, 1]?"""
        if np.any((self.pattern(y) != self.mask) & ~self.slide):
            return True
        if self.slide.any():
            lam = self.lambdas(y)[self.slide]
            return bool(np.any((lam < 0) | (lam > 1)))
        return False

    def _locate(self, dense, t_old, t_new):
        """First time in (t_old, t_new] where the pattern changes: Brent's method on the
        signed margin of the entries changed at the step's end (and min(λ, 1 − λ) of
        sliding entries), then bisection on :meth:`_changed` if something changed
        earlier; bracket width <= 8 eps max(1, t)."""
        from scipy.optimize import brentq

        moved = (self.pattern(dense(t_new)) != self.mask) & ~self.slide
        idx = np.nonzero(moved)
        signs = np.where(self.mask[idx], 1.0, -1.0)
        sliding = bool(self.slide.any())
        tol = 8 * np.finfo(float).eps * max(1.0, abs(t_new))

        def gap(t):
            y = dense(t)
            g = float(np.min(signs * self.preactivations(y)[idx])) if signs.size else np.inf
            if sliding:
                lam = self.lambdas(y)[self.slide]
                g = min(g, float(np.min(np.minimum(lam, 1 - lam))))
            return g

        lo, hi = t_old, t_new
        if gap(lo) > 0 and gap(hi) <= 0:
            root = brentq(gap, lo, hi, xtol=tol)
            lo, hi = max(lo, root - tol), min(hi, root + tol)
            while not self._changed(dense(hi)) and hi < t_new:
                lo, hi = hi, min(t_new, hi + 2 * (hi - lo) + tol)
            if self._changed(dense(lo)):
                lo = t_old
        while hi - lo > tol:
            mid = 0.5 * (lo + hi)
            if self._changed(dense(mid)):
                hi = mid
            else:
                lo = mid
        return hi

    def _update_pattern(self, y):
        """New mask and sliding set after a located change at state ``y``: an entry
        whose h the flow pushes back to 0 from both sides starts sliding."""
        a, W = self._split(y)
        m = self.model
        new = self.pattern(y)
        if self.slide.any():
            lam = self.lambdas(y)
            leave = self.slide & ((lam < 0) | (lam > 1))
            self.mask = np.where(leave, lam > 1, self.mask)
            self.slide = self.slide & ~leave
        moved = (new != self.mask) & ~self.slide
        J = np.broadcast_to(self._coef_jump(a, W, m.patches, m.y, m.alpha, m.n)[0], new.shape)
        for i, k, b in np.argwhere(moved):
            # Velocities of h_ikb from the inactive (-) and the active (+) side.
            self.mask[i, k, b] = False
            rw = self._frozen_w(a, W)
            if self.slide.any():
                rw += self._sliding(a, W, rw)[0]
            x = m.patches[i, k]
            hm = float(x @ rw[:, b])
            hp = hm + float(J[i, k, b]) * float(x @ x)
            if hm > 0 > hp:
                self.slide[i, k, b] = True
            else:
                self.mask[i, k, b] = bool(new[i, k, b])

    def integrate_kinks(self, times, method, rtol, atol, max_kinks):
        """Integrate through activation-pattern changes (frozen pattern per segment,
        restart at each located change, Filippov sliding). Returns (states, stats)."""
        from scipy.integrate import DOP853, RK23, RK45

        from ..errors import IntegrationError

        cls = {"DOP853": DOP853, "RK45": RK45, "RK23": RK23}[method]
        y = self.pack(self.model.initial_state())
        ys = np.empty((len(times), self.size))
        T = float(times[-1])
        done = int(np.searchsorted(times, 0.0, side="right"))
        ys[:done] = y
        t, stats = 0.0, {"nfev": 0, "kinks": 0}
        self.mask = self.pattern(y)
        self.slide = np.zeros_like(self.mask)
        try:
            while t < T:
                solver = cls(self.rhs_frozen, t, y, T, rtol=rtol, atol=atol)
                crossed = False
                with np.errstate(over="ignore", invalid="ignore"):
                    while solver.status == "running":
                        t_old = solver.t
                        solver.step()
                        if solver.status == "failed":
                            raise IntegrationError(f"{method} failed: step size collapsed",
                                                   t_reached=float(t_old))
                        if not np.all(np.isfinite(solver.y)):
                            raise IntegrationError("the state stopped being finite",
                                                   t_reached=float(t_old))
                        dense = solver.dense_output()
                        t_new = solver.t
                        if self._changed(solver.y):
                            t_new, crossed = self._locate(dense, t_old, t_new), True
                        upto = int(np.searchsorted(times, t_new, side="right"))
                        if upto > done:
                            ys[done:upto] = dense(times[done:upto]).T
                            done = upto
                        if crossed:
                            t, y = t_new, dense(t_new)
                            break
                stats["nfev"] += solver.nfev
                if not crossed:
                    break
                stats["kinks"] += 1
                if stats["kinks"] > max_kinks:
                    raise IntegrationError(f"more than max_kinks={max_kinks} activation-"
                                           "pattern changes", t_reached=t)
                self._update_pattern(y)
            stats["sliding_at_end"] = int(self.slide.sum())
        finally:
            self.mask = self.slide = None
        if done < len(times):  # pragma: no cover  (solver stopped short of T)
            ys[done:] = solver.y
        return ys, stats

    def observe(self, W, a):
        """(output (n,), loss) at one state."""
        m = self.model
        out, loss = self._obs(np.reshape(a, (self.P, self.M)), np.reshape(W, (self.D, self.M)),
                              m.patches, m.y, m.alpha, m.n)
        return np.broadcast_to(out, (m.n,)).copy(), float(loss)

    def observables(self, state) -> dict:
        """Observables along states (time first): ``loss`` (T,), ``output`` (T × n),
        ``balance`` (T × M) :math:`= \\sum_{uv}a_{uv\\beta}^2 - \\|W_{\\cdot\\beta}\\|^2`
        (conserved for 1-homogeneous σ), ``kernel_norm`` (T × M)."""
        W, a = np.asarray(state["W"]), np.asarray(state["a"])
        outs, losses = [], []
        for Wt, at in zip(W, a):
            o, lo = self.observe(Wt, at)
            outs.append(o)
            losses.append(lo)
        T = W.shape[0]
        wn2 = np.sum(W.reshape(T, self.D, self.M) ** 2, axis=1)
        an2 = np.sum(a.reshape(T, self.P, self.M) ** 2, axis=1)
        return {"loss": np.array(losses), "output": np.array(outs), "balance": an2 - wn2,
                "kernel_norm": np.sqrt(wn2)}


def lowered_cnn(model) -> LoweredCNN:
    cached = getattr(model, "_lowered", None)
    if cached is None:
        cached = LoweredCNN(model)
        model._lowered = cached
    return cached


def trajectory_from_states(model, times, W, a, meta) -> Trajectory:
    """A :class:`Trajectory` with state W, a and the observables of
    :meth:`LoweredCNN.observables`."""
    low = lowered_cnn(model)
    state = {"W": np.asarray(W, float), "a": np.asarray(a, float)}
    with np.errstate(over="ignore", invalid="ignore"):
        obs = low.observables(state)
    meta = {"model": model.name, "params": model.params, **meta}
    return Trajectory(np.asarray(times, float).copy(), state, obs, meta)


def solve_cnn(model, times, method=None, rtol=None, atol=None,
              max_kinks=20_000) -> Trajectory:
    """``solve(model, t)`` for a two-layer CNN: the lowered rhs through ``solve_ivp``.

    Activations with a kink at 0 (ReLU, leaky ReLU, ``abs(x)``): within a segment the
    activation pattern :math:`h_{ik\beta} > 0` is frozen (σ'(0) from the side the
    pattern says), so the rhs is analytic; after each accepted step a pattern change is
    located on the step's dense output (Brent's method on the margin, then bisection)
    and the integrator restarts there (``meta["kinks"]`` counts restarts), as for
    :class:`~exactdyn.TwoLayer`. A preactivation that both sides push back to 0 slides
    along the kink (Filippov's convex combination, :meth:`LoweredCNN._sliding`); more
    than ``max_kinks`` restarts raise :class:`~exactdyn.IntegrationError`.
    """
    from .. import _validation as check
    from ..solve import FLOAT_METHODS, default_atol, integrate_float

    method = "DOP853" if method is None else method
    check.choice("method", method, ("DOP853", "RK45", "RK23") if model.act.piecewise
                 else FLOAT_METHODS)
    rtol = 1e-10 if rtol is None else rtol
    low = lowered_cnn(model)
    y0 = low.pack(model.initial_state())
    if atol is None:
        atol = default_atol(model, y0, rtol)
    if low.kinks:
        ys, stats = low.integrate_kinks(times, method, rtol, atol, max_kinks)
        stats["kink_scheme"] = "frozen pattern + Brent/bisection on dense output"
    else:
        ys, stats = integrate_float(low.rhs, None, y0, times, method, rtol, atol)
    st = low.unpack(ys)
    return trajectory_from_states(model, times, st["W"], st["a"],
                                  {"method": method, "rtol": rtol, "atol": atol,
                                   "precision": None, **stats})
