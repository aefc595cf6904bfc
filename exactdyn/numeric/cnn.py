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

**Kinks** (ReLU, leaky ReLU, ``abs``) are integrated by :mod:`exactdyn.numeric.kinks`,
the scheme of the two-layer network (frozen pattern per segment, located changes,
Filippov sliding held exactly at h = 0, on/off/sliding decided from the one-sided
velocities and their uncertainty; :mod:`exactdyn.numeric.twolayer`): the kernel β is the
unit with weights :math:`W_{\cdot\beta}`, the (sample, position) pairs (i, k) are the
entries with inputs :math:`X_{ik}`, and this module supplies the frozen rhs, the jump
coefficients :math:`G_{ik\beta}` with σ' replaced by σ+' − σ−', and the uncertainty of
the residuals (:meth:`LoweredCNN.kink_functions`, :meth:`LoweredCNN.kink_uncertainty`).
A CNN whose kernel covers the whole image (one position) is the two-layer network without
bias on the flattened images, and gives its trajectory.
"""

from __future__ import annotations

import numpy as np

from .. import diskcache
from ..trajectory import Trajectory
from . import stored
from .indexed import _Lowerer, lower_indexed
from .registry import cached_lowering

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
    """Generated sources of the rhs and the observables (derived once, then read from the
    on-disk cache by later processes)."""
    if not _SOURCES:  # on disk between processes (exactdyn.diskcache)
        _SOURCES.update(diskcache.cached("cnn", "exactdyn.numeric.cnn.sources",
                                          _derive_sources, stored.encode_mapping,
                                          stored.decode_mapping))
    return _SOURCES


def _derive_sources() -> dict:
    """The family's flow derived (sympy) and printed."""
    import sympy as sp

    from ..symbolic import cnn as sc

    flow = sc.derive_cnn_flow()
    arrays = (sc.A, sc.W, sc.XS, sc.YS)
    out: dict = {}
    funcs = {sc.SIGMA: "_sigma", sc.DSIGMA: "_dsigma"}
    out["rhs"] = lower_indexed([sc.merge_sums(flow.rhs[sc.A]),
                                sc.merge_sums(flow.rhs[sc.W])], arrays,
                               sc.INDEX_KINDS, funcs, "rhs", lowerer=CNNLowerer)
    # Per-(sample, position, channel) coefficient G_ikb of the kernel's flow,
    # dW_b/dt = sum_ik G_ikb X_ik (the derived summand divided by X[i, k, r]).
    rw = sc.merge_sums(flow.rhs[sc.W])
    (sw,) = [f for f in sp.Mul.make_args(rw) if isinstance(f, sp.Sum)]
    coef = (rw / sw) * sw.function / sc.XS[sc.I, sc.K, sc.R]
    out["coef"] = lower_indexed([coef], arrays, sc.INDEX_KINDS, funcs, "coef",
                                lowerer=CNNLowerer)
    out["obs"] = lower_indexed([flow.observables["output"], flow.observables["loss"]],
                               arrays, sc.INDEX_KINDS, funcs, "observables",
                               lowerer=CNNLowerer)
    return out


_JVP: dict = {}


def jvp_source():
    """Generated source of :math:`f'(\\theta)v`, ``jvp(a, W, X, y, fa, fW, alpha, n)``
    (X the patches), from :func:`exactdyn.symbolic.cnn.derive_cnn_modified` (used by
    :func:`exactdyn.descent.modified_rhs`). Derived on first use, once per process."""
    if not _JVP:
        from ..symbolic import cnn as sc
        from ..symbolic.twolayer import D2SIGMA, FA, FW

        mod = sc.derive_cnn_modified()
        _JVP["jvp"] = lower_indexed([mod.correction[sc.A], mod.correction[sc.W]],
                                    (sc.A, sc.W, sc.XS, sc.YS, FA, FW), sc.INDEX_KINDS,
                                    {sc.SIGMA: "_sigma", sc.DSIGMA: "_dsigma",
                                     D2SIGMA: "_d2sigma"}, "jvp", lowerer=CNNLowerer)
    return _JVP["jvp"]


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
        """Branch functions of a kinked activation. σ = σ− + pos·(σ+ − σ−), simplified in
        sympy (ReLU: pos*x, σ': pos), so a frozen pattern enters as one multiplication
        instead of numpy.where (6× slower here). Returns the unfrozen (σ, σ') (pos = h > 0)
        built from the same branches."""
        import scipy.special
        import sympy as sp

        from ..models.activations import X
        from .twolayer import _branches, _elementwise, _linear_slopes

        plus, minus = _branches(model.act)
        mods = [{"erf": scipy.special.erf}, "numpy"]
        pos = sp.Symbol("pos")
        dplus, dminus = sp.diff(plus, X), sp.diff(minus, X)
        self._fs = sp.lambdify((X, pos), sp.simplify(minus + pos * (plus - minus)), modules=mods)
        self._fd = sp.lambdify((X, pos), sp.simplify(dminus + pos * (dplus - dminus)),
                               modules=mods)
        #: (σ+, σ−, σ+', σ−') as float64 callables.
        self.branches = tuple(_elementwise(sp.lambdify(X, e, modules=mods)) for e in
                              (plus, minus, dplus, dminus))
        #: sigma'_- == 0 (ReLU): a kernel with no entry on the + side cannot move.
        self.flat_minus = bool(dminus == 0)
        #: (c+, c-) when σ± = c± x, else None (:func:`exactdyn.numeric.twolayer._linear_slopes`).
        self.branch_slopes = _linear_slopes(plus, minus)
        return self._branchwise(self._fs, None), self._branchwise(self._fd, None)

    @staticmethod
    def _branchwise(f, which):
        def g(h):
            mask = (h > 0) if which is None else which()
            return np.broadcast_to(np.asarray(f(h, mask), float), h.shape)
        return g

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

    def preactivations(self, y):
        """:math:`h_{ik\beta}`, n × P × M, at one flat state."""
        return contract(self.model.patches, y[:self.nw].reshape(self.D, self.M), (2,), (0,))

    def pattern(self, y):
        return self.preactivations(y) > 0

    # ---- integration through kinks (exactdyn.numeric.kinks) ---------------------------
    # Units are the kernels β (weights W[:, β]), entries the (sample, position) pairs
    # (i, k), flattened as i P + k, with inputs the patches X_ik.
    @property
    def kink_inputs(self):
        """Entry inputs of the kink machinery: the patches, (n P) × D."""
        return self.model.patches.reshape(-1, self.D)

    @property
    def kink_gammas(self):
        from .kinks import gamma

        n, P, M, D = self.model.n, self.P, self.M, self.D
        return gamma(D), gamma(P * M + D), gamma(n * P + D)

    def kink_weights(self, y):
        """The kernels as rows, M × D (a view)."""
        return y[..., :self.nw].reshape(y.shape[:-1] + (self.D, self.M)).swapaxes(-1, -2)

    def kink_replace(self, y, W):
        out = np.array(y, float)
        out[:self.nw] = np.asarray(W).T.ravel()
        return out

    def kink_functions(self, state):
        r"""``(frozen, jump)`` for :class:`~exactdyn.numeric.kinks.KinkState`: the rhs
        with σ = σ± where ``state.mask`` (M × nP) says ±, and the jump coefficients
        :math:`g_{\beta,(i,k)}` (the kernel flow's coefficient :math:`G_{ik\beta}` with
        σ' replaced by σ+' − σ−'), M × nP."""
        m = self.model
        n, P, M, D, nw = m.n, self.P, self.M, self.D, self.nw
        src = sources()
        cache = {"version": None, "mask": None}

        def pattern():
            # the mask in the rhs's n × P × M layout, copied once per pattern change
            if cache["version"] != state.version:
                cache["mask"] = np.ascontiguousarray(state.mask.T).reshape(n, P, M)
                cache["version"] = state.version
            return cache["mask"]

        rhs = src["rhs"].function({"_sigma": self._branchwise(self._fs, pattern),
                                   "_dsigma": self._branchwise(self._fd, pattern),
                                   "_contract": contract})
        _fp, _fm, dp, dm = self.branches
        sig = self._branchwise(self._fs, pattern)
        coef = src["coef"].function({"_sigma": sig, "_dsigma": lambda h: dp(h) - dm(h),
                                     "_contract": contract})
        args = (m.patches, m.y, m.alpha, m.n)

        def frozen(y):
            W = y[:nw].reshape(D, M)
            a = y[nw:].reshape(P, M)
            ra, rw = rhs(a, W, *args)
            out = np.empty(self.size)
            out[:nw].reshape(D, M)[...] = rw
            out[nw:].reshape(P, M)[...] = ra
            return out, out[:nw].reshape(D, M).T

        def jump(y):
            W = y[:nw].reshape(D, M)
            a = y[nw:].reshape(P, M)
            J = np.broadcast_to(coef(a, W, *args)[0], (n, P, M))
            return J.reshape(n * P, M).T

        return frozen, jump

    def kink_uncertainty(self, y, rtol, atol):
        r"""``(rho, c)`` per entry (i, k): ρ bounds the uncertainty of
        :math:`e_i = f_i - y_i` (rounding :math:`\gamma_f S_i`,
        :math:`S_i = |y_i| + \sum_{k\beta}|a_{k\beta}||W_\beta|\cdot|X_{ik}|/\alpha`, plus
        the integrator's tolerance on the state carried through f, σ 1-Lipschitz) and
        :math:`c_{\beta,(i,k)} = |a_{k\beta}|/(\alpha n)`."""
        m = self.model
        n, P, M, D, nw = m.n, self.P, self.M, self.D, self.nw
        W = y[:nw].reshape(D, M)
        a = y[nw:].reshape(P, M)
        out, _ = self.observe(W, a)
        e = out - m.y
        absX = np.abs(m.patches)  # n × P × D
        absa = np.abs(a)
        AW = contract(absX, np.abs(W), (2,), (0,))  # |X_ik| . |W_b|, n × P × M
        aWX = np.einsum("ikb,kb->i", AW, absa)
        S = np.abs(m.y) + aWX / m.alpha
        tol = (atol * (AW.sum(axis=(1, 2)) + absX.sum(axis=2) @ absa.sum(axis=1))
               + 2 * rtol * aWX) / m.alpha
        _g_h, g_f, g_s = self.kink_gammas
        rho = g_f * S + g_s * np.abs(e) + tol
        c = np.tile(absa.T, (1, n)) / (m.alpha * m.n)
        return np.repeat(rho, P), c

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
    """The lowered flow of ``model``, built once per model (:func:`.registry.cached_lowering`)."""
    return cached_lowering(model, LoweredCNN)


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
              max_kinks=20_000, max_steps=None, progress=None) -> Trajectory:
    """``solve(model, t)`` for a two-layer CNN: the lowered rhs through ``solve_ivp``.

    Activations with a kink at 0 (ReLU, leaky ReLU, ``abs(x)``): within a segment the
    activation pattern :math:`h_{ik\beta} > 0` is frozen (σ'(0) from the side the
    pattern says), so the rhs is analytic; after each accepted step a pattern change is
    located on the step's dense output (Brent's method on the margin, then bisection)
    and the integrator restarts there (``meta["kinks"]`` counts restarts), as for
    :class:`~exactdyn.TwoLayer`, by the same code (:mod:`exactdyn.numeric.kinks`, kernels
    as units, (sample, position) pairs as entries): each entry is on, off or sliding
    (Filippov's convex combination, held exactly at :math:`h_{ik\beta} = 0`), decided from
    the one-sided velocities and a bound of their uncertainty, as in
    :mod:`exactdyn.numeric.twolayer`'s docstring. More than ``max_kinks`` restarts raise
    :class:`~exactdyn.IntegrationError`, as do more than ``max_steps`` integrator steps
    (default :data:`exactdyn.numeric.stepping.DEFAULT_MAX_STEPS`). ``progress``: a
    :class:`exactdyn._progress.Progress` over the time span, or ``None``.
    ``meta["sliding_entries"]``: (sample, position, kernel) triples sliding at the end.
    """
    from .. import _validation as check
    from .integrate import FLOAT_METHODS, KINKED_RTOL, default_atol, integrate_float
    from .stepping import DEFAULT_MAX_STEPS

    max_kinks = check.nonnegative_int("max_kinks", max_kinks)
    method = "DOP853" if method is None else method
    check.choice("method", method, ("DOP853", "RK45", "RK23") if model.act.piecewise
                 else FLOAT_METHODS)
    rtol = KINKED_RTOL if rtol is None else rtol
    max_steps = DEFAULT_MAX_STEPS if max_steps is None else max_steps
    low = lowered_cnn(model)
    y0 = low.pack(model.initial_state())
    if atol is None:
        atol = default_atol(model, low, y0, rtol)
    if low.kinks:
        from .kinks import integrate

        ys, stats = integrate(low, y0, times, method, rtol, atol, max_kinks,
                              max_steps=max_steps, progress=progress)
        stats["kink_scheme"] = "frozen pattern, Brent on dense output, Filippov sliding"
        stats["max_kinks"] = max_kinks
        stats["sliding_entries"] = [[j // low.P, j % low.P, b]
                                    for b, j in stats["sliding_entries"]]
    else:
        ys, stats = integrate_float(low.rhs, None, y0, times, method, rtol, atol, max_steps,
                                    progress)
    st = low.unpack(ys)
    return trajectory_from_states(model, times, st["W"], st["a"],
                                  {"method": method, "rtol": rtol, "atol": atol,
                                   "precision": None, **stats})


def _register():
    from ..models.cnn import TwoLayerCNN
    from .registry import register_numeric

    register_numeric(TwoLayerCNN, lowered_cnn, solve_cnn, 20_000, "TwoLayerCNN")


_register()
