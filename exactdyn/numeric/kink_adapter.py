r"""The one adapter between a network's kinked preactivations and :mod:`exactdyn.numeric.kinks`.

The kink scheme (:class:`~exactdyn.numeric.kinks.KinkState`,
:func:`~exactdyn.numeric.kinks.integrate`) works on *units* k with weights
:math:`w_k \in \mathbb R^d` and *entries* j with inputs :math:`x_j`,
:math:`h_{kj} = w_k\cdot x_j`, and a flow linear in σ'
(:class:`~exactdyn.numeric.kinks.KinkFlow`). :class:`KinkAdapter` builds every hook it
needs from what the network declares (:class:`exactdyn.models.base.KinkedPreactivation`:
its activation, which state array holds the input weights and in which layout, the readout,
the inputs — data points or patches — and the axis order of :math:`h` in the generated
code) and from the lowered flow's generated sources (``rhs``, ``coef``, optionally
``rhs_jump``). No family writes kink code of its own: the two-layer network (one position
per sample) and the CNN (patches as positions) are two declarations.

With the network of the declaration,
:math:`f_i = \frac1\alpha\sum_{k\beta}a_{k\beta}\sigma(h_{ik\beta})`,
:math:`e_i = f_i - y_i`, the weights' flow is

.. math::

    \dot w_\beta = \sum_{i,k} c_{\beta,(i,k)}\,\sigma'(h_{ik\beta})\,x_{ik},\qquad
    c_{\beta,(i,k)} = -\frac{a_{k\beta}\,e_i}{\alpha n},

so the jump across a kink is :math:`g_{\beta,(i,k)} = c_{\beta,(i,k)}(\sigma_+'(0) -
\sigma_-'(0))`: the derived coefficient (the family's ``coef`` source, the summand of
:math:`\dot w` divided by the input) with σ' replaced by the jump. The uncertainty of
:math:`e_i` is bounded from Higham's :math:`\gamma_k` (*Accuracy and Stability of Numerical
Algorithms*, 2nd ed., 2002, §3.1) and the integrator's tolerance
(:meth:`KinkAdapter.kink_uncertainty`); the decision rule and Filippov's sliding
(*Differential Equations with Discontinuous Righthand Sides*, 1988, §2.4) are in
:mod:`exactdyn.numeric.kinks`.
"""

from __future__ import annotations

import numpy as np

from .kinks import gamma

#: The axes of h in the adapter's own layout: units first, then (sample, position) entries.
_FULL_AXES = ("unit", "sample", "position")


class KinkAdapter:
    """The :class:`~exactdyn.numeric.kinks.KinkFlow` hooks of a lowered flow, built from
    its network's :class:`~exactdyn.models.base.KinkedPreactivation`.

    Parameters
    ----------
    flow : LayerLoweredFlow
        The lowered flow: its packed layout (``slices``, ``size``), its ``rhs``, and
        ``generated(role, namespace)`` / ``arguments(y)`` / ``write(out, parts)`` to run
        its generated sources with another σ.
    declared : KinkedPreactivation
        What the network declares.

    Attributes
    ----------
    kink_inputs : ndarray
        The entries' inputs, (samples · positions) × d.
    kink_gammas : tuple
        Higham's :math:`(\\gamma_d, \\gamma_{PM+d}, \\gamma_{nP+d})` for h, the output and
        the flow's sum over entries.
    branches : tuple
        (σ+, σ−, σ+', σ−') as float64 callables.
    flat_minus : bool
        σ−' ≡ 0 (ReLU): a unit with no entry on the + side cannot move.
    branch_slopes : tuple or None
        ``(c+, c-)`` when σ± = c± x
        (:meth:`exactdyn.models.activations.Activation.kink_branches`).
    """

    def __init__(self, flow, declared):
        self.flow = flow
        self.size = flow.size
        self.rhs = flow.rhs
        #: the weights part of a packed vector (batched too) as units × d (a view)
        self.unit_rows = flow.unit_rows
        self.declared = declared
        inputs = np.asarray(declared.inputs, float)
        self.n, self.P, self.D = inputs.shape
        self.M = int(declared.weights_matrix[declared.units_axis])
        self._wslice = flow.slices[declared.weights]
        self._rslice = flow.slices[declared.readout]
        self.kink_inputs = inputs.reshape(self.n * self.P, self.D)
        n, P, M, D = self.n, self.P, self.M, self.D
        self.kink_gammas = (gamma(D), gamma(P * M + D), gamma(n * P + D))
        self._abs_inputs = np.abs(inputs)
        self._targets = np.asarray(declared.targets, float)
        self._alpha = float(declared.alpha)
        # float64 branches from the activation (a named one's from its table, no sympy)
        self.branches, self.flat_minus, self.branch_slopes = \
            declared.activation.kink_branches()
        # h in the generated code: its axes, and the permutation from the adapter's
        # (unit, sample, position) layout to them (a one-position network's h has no
        # position axis: it is appended as the last, of length 1)
        axes = tuple(declared.preactivation_axes)
        if "position" not in axes:
            if P != 1:
                raise ValueError(f"preactivation_axes {axes} has no position axis but the "
                                 f"inputs have {P} positions")
        sizes = {"unit": M, "sample": n, "position": P}
        self._h_axes = axes
        self._h_shape = tuple(sizes[a] for a in axes)
        with_pos = axes if "position" in axes else axes + ("position",)
        self._to_h = tuple(_FULL_AXES.index(a) for a in with_pos)
        self._from_h = tuple(with_pos.index(a) for a in _FULL_AXES)
        #: the generated h is already (unit, entries): masks and jumps need no copy
        self._same_layout = self._to_h == (0, 1, 2)

    # ---- layouts --------------------------------------------------------------------
    def _mask_as_h(self, mask):
        """A (units, entries) array in the generated code's layout of h."""
        if self._same_layout:
            return mask
        full = mask.reshape(self.M, self.n, self.P).transpose(self._to_h)
        return np.ascontiguousarray(full).reshape(self._h_shape)

    def _h_as_units(self, g):
        """An array in h's layout (or broadcastable to it) as (units, entries)."""
        if np.shape(g) != self._h_shape:
            g = np.broadcast_to(g, self._h_shape)
        if self._same_layout:
            return g
        with_pos = g.reshape(tuple(self._h_shape) + (() if "position" in self._h_axes
                                                      else (1,)))
        return with_pos.transpose(self._from_h).reshape(self.M, self.n * self.P)

    # ---- the KinkFlow hooks -----------------------------------------------------------
    def kink_weights(self, y):
        """The unit weights of a packed state, units × d (a view); of stacked states
        (..., size), (..., units, d)."""
        return self.unit_rows(y)

    def kink_replace(self, y, W):
        """``y`` with its unit weights replaced by ``W`` (units × d); a new array."""
        out = np.array(y, float)
        W = np.asarray(W)
        out[self._wslice] = (W if self.declared.units_axis == 0 else W.T).ravel()
        return out

    def _pattern_activation(self, state):
        """``(sigma, dsigma, djump)`` for the generated code with the pattern
        ``state.mask`` frozen (σ± where it says ±; sliding entries on the − branch), and
        σ' replaced by the jump σ+' − σ−' for the jump coefficients."""
        cache = {"version": None, "value": None}
        if self.branch_slopes is not None:
            # σ± = c± h: σ is s h and σ' is s, s = c± per entry, built once per pattern
            # (state.version) instead of evaluating both branches every call
            cp, cm = self.branch_slopes
            jump_slope = np.full(self._h_shape, cp - cm)

            def slope():
                if cache["version"] != state.version:
                    cache["value"] = np.where(self._mask_as_h(state.mask), cp, cm)
                    cache["version"] = state.version
                return cache["value"]

            return (lambda h: h * slope(), lambda h: slope(),  # noqa: E731
                    lambda h: jump_slope)
        fp, fm, dp, dm = self.branches

        def on():
            if cache["version"] != state.version:
                cache["value"] = self._mask_as_h(state.mask)
                cache["version"] = state.version
            return cache["value"]

        return (lambda h: np.where(on(), fp(h), fm(h)),
                lambda h: np.where(on(), dp(h), dm(h)),
                lambda h: dp(h) - dm(h))

    def kink_functions(self, state):
        r"""``(frozen, jump[, frozen_jump])`` for :class:`~exactdyn.numeric.kinks.KinkState`:
        the rhs with σ = σ± where ``state.mask`` says ± (and a writable units × d view of
        its weights part), the jump coefficients :math:`g_{kj}` (units × entries), and both
        from one pass when the flow has the ``rhs_jump`` source."""
        flow = self.flow
        sig, dsig, djump = self._pattern_activation(state)
        coef = flow.generated("coef", {"_sigma": sig, "_dsigma": djump})
        if "rhs_out" in flow.source_roles:
            # written into a new result, the temporaries in buffers of this pattern's own
            # (a KinkState, hence these functions, serves one integration in one thread)
            rhs_out = flow.generated("rhs_out", {"_sigma": sig, "_dsigma": dsig})
            buffers: dict = {}

            def frozen(y):
                out = np.empty(self.size)
                rhs_out(*flow.arguments(y), flow.result_views(out), buffers)
                return out, self.unit_rows(out)
        else:
            rhs = flow.generated("rhs", {"_sigma": sig, "_dsigma": dsig})

            def frozen(y):
                out = np.empty(self.size)
                flow.write(out, rhs(*flow.arguments(y)))
                return out, self.unit_rows(out)

        def jump(y):
            return self._h_as_units(coef(*flow.arguments(y))[0])

        if "rhs_jump" not in flow.source_roles:
            return frozen, jump
        both = flow.generated("rhs_jump", {"_sigma": sig, "_dsigma": dsig, "_jsigma": djump})
        nstate = len(flow.state_names)

        def frozen_jump(y):
            parts = both(*flow.arguments(y))
            out = np.empty(self.size)
            flow.write(out, parts[:nstate])
            return out, self.unit_rows(out), self._h_as_units(parts[nstate])

        return frozen, jump, frozen_jump

    def kink_uncertainty(self, y, rtol, atol):
        r"""``(rho, c)``: ρ (entries,) bounds the uncertainty of :math:`e_i = f_i - y_i`
        seen by entry (i, k) — rounding :math:`\gamma_f S_i` with
        :math:`S_i = |y_i| + \sum_{k\beta}|a_{k\beta}|\,|w_\beta|\cdot|x_{ik}|/\alpha`, plus
        :math:`\gamma_s|e_i|`, plus the integrator's tolerance on the state carried through
        f (σ 1-Lipschitz) — and :math:`c_{\beta,(i,k)} = |a_{k\beta}|/(\alpha n)`,
        units × entries, or units × 1 with one position."""
        flow = self.flow
        n, P, M = self.n, self.P, self.M
        e = flow.output(y) - self._targets
        alpha = self._alpha
        absW = np.abs(self.unit_rows(y))  # M × D
        absa = np.abs(np.asarray(y)[self._rslice]).reshape(P, M)
        _g_h, g_f, g_s = self.kink_gammas
        if P == 1:  # one position: the products with the n × d data directly
            absX = self._abs_inputs[:, 0, :]
            a1 = absa[0]
            aWX = (a1 @ absW) @ absX.T
            S = np.abs(self._targets) + aWX / alpha
            tol = (atol * (absW.sum(axis=0) @ absX.T + absX.sum(axis=1) * a1.sum())
                   + 2 * rtol * aWX) / alpha
            rho = g_f * S + g_s * np.abs(e) + tol
            return rho, (a1 / (alpha * n))[:, None]
        absX = self._abs_inputs  # n × P × D
        AW = (absX.reshape(n * P, self.D) @ absW.T).reshape(n, P, M)  # |x_ik|·|w_β|
        aWX = np.einsum("ikb,kb->i", AW, absa)
        S = np.abs(self._targets) + aWX / alpha
        tol = (atol * (AW.sum(axis=(1, 2)) + absX.sum(axis=2) @ absa.sum(axis=1))
               + 2 * rtol * aWX) / alpha
        rho = g_f * S + g_s * np.abs(e) + tol
        c = np.tile(absa.T, (1, n)) / (alpha * n)
        return np.repeat(rho, P), c

    def entry_labels(self, pairs) -> list:
        """(unit, entry) pairs as the network names them: ``[unit, sample]`` when its
        preactivations have no position axis, ``[sample, position, unit]`` otherwise."""
        if "position" not in self._h_axes:
            return [[int(k), int(j)] for k, j in pairs]
        return [[int(j) // self.P, int(j) % self.P, int(k)] for k, j in pairs]
