r"""The one-hidden-layer linear network with one-dimensional data [XZ].

.. math:: f(x) = \kappa\,(u\cdot w)\,x, \qquad u, w \in \mathbb R^d,

trained by gradient flow on :math:`L = \tfrac12\,\mathbb E[(f(x) - y)^2]` with rates
:math:`\eta_u, \eta_w`. The data enter only through :math:`\Sigma_{xx} = \mathbb E[x^2]` and
the teacher slope :math:`c = \mathbb E[xy]/\Sigma_{xx}`.

Reference: Y. Xu and L. Ziyin, "When does feature learning happen? Perspective from an
analytically solvable model", arXiv:2401.07085 (ICLR 2025 as "Three mechanisms of
feature learning in a linear network").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import TYPE_CHECKING

import numpy as np

from .. import _validation as check
from .base import ModelMixin

if TYPE_CHECKING:
    from ..symbolic.flow import SymbolicNetwork

# sympy and the symbolic layer are imported inside the functions that build the symbolic
# network: solving with a lowering read from the on-disk cache needs neither (a new
# process then starts without importing sympy).

CITATION = ("Y. Xu and L. Ziyin, When does feature learning happen? Perspective from an "
            "analytically solvable model, arXiv:2401.07085 (ICLR 2025).")


@dataclass(frozen=True)
class Linear1D(ModelMixin):
    r"""Hyperparameters and initial state of the 1-D linear network (MATH.md §1).

    Parameters
    ----------
    width : int
        Hidden width :math:`d \ge 1`.
    kappa : float
        Output scale :math:`\kappa \ne 0`.
    eta_u, eta_w : float
        Learning rates of the readout :math:`u` and the input layer :math:`w` (> 0).
    sigma_u, sigma_w : float
        Init standard deviations (>= 0): :math:`u_i \sim N(0,\sigma_u^2)`,
        :math:`w_i \sim N(0, \sigma_w^2)`, i.i.d.
    teacher : float
        Teacher slope :math:`c = \mathbb E[xy]/\Sigma_{xx}`.
    x_var : float
        Input second moment :math:`\Sigma_{xx} = \mathbb E[x^2] > 0`.
    seed : int or None
        Seed of ``numpy.random.default_rng`` for the random init.

    Notes
    -----
    Use :meth:`from_init` for an explicit initial state. The random init draws ``u``
    first, then ``w``, from one generator: same seed, same numbers.
    """

    width: int = 64
    kappa: float = 1.0
    eta_u: float = 1.0
    eta_w: float = 1.0
    sigma_u: float = 1.0
    sigma_w: float = 1.0
    teacher: float = 1.0
    x_var: float = 1.0
    seed: int | None = 0
    _init: tuple | None = field(default=None, repr=False, compare=False)

    name = "linear1d"
    state_names = ("u", "w")

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "width", check.positive_int("width", self.width))
        set_(self, "kappa", check.nonzero("kappa", self.kappa))
        set_(self, "eta_u", check.positive("eta_u", self.eta_u))
        set_(self, "eta_w", check.positive("eta_w", self.eta_w))
        set_(self, "sigma_u", check.nonnegative("sigma_u", self.sigma_u))
        set_(self, "sigma_w", check.nonnegative("sigma_w", self.sigma_w))
        set_(self, "teacher", check.real("teacher", self.teacher))
        set_(self, "x_var", check.positive("x_var", self.x_var))
        set_(self, "seed", check.seed("seed", self.seed))
        if self._init is not None:
            u0, w0 = self._init
            u0 = check.finite_vector("u0", u0)
            w0 = check.finite_vector("w0", w0)
            if u0.shape != w0.shape:
                raise ValueError(
                    f"u0 and w0 must have the same length, got {u0.size} and {w0.size}")
            if u0.size != self.width:
                raise ValueError(f"width must equal len(u0) = {u0.size}, got {self.width}")
            u0.setflags(write=False)
            w0.setflags(write=False)
            set_(self, "_init", (u0, w0))

    @classmethod
    def from_init(cls, u0, w0, kappa=1.0, eta_u=1.0, eta_w=1.0, teacher=1.0, x_var=1.0):
        """A model with the explicit initial state ``u0``, ``w0`` (any width, 1 included)."""
        u0 = check.finite_vector("u0", u0)
        w0 = check.finite_vector("w0", w0)
        return cls(width=u0.size, kappa=kappa, eta_u=eta_u, eta_w=eta_w, sigma_u=0.0,
                   sigma_w=0.0, teacher=teacher, x_var=x_var, seed=None,
                   _init=(np.array(u0), np.array(w0)))

    def with_init_scaled(self, factor: float) -> Linear1D:
        """The same hyperparameters with the initial state times ``factor`` (an explicit
        init, built with :meth:`from_init`)."""
        factor = check.real("factor", factor)
        init = self.initial_state()
        return Linear1D.from_init(factor * init["u"], factor * init["w"], kappa=self.kappa,
                                  eta_u=self.eta_u, eta_w=self.eta_w, teacher=self.teacher,
                                  x_var=self.x_var)

    @property
    def explicit_init(self) -> bool:
        return self._init is not None

    def initial_state(self, copy: bool = True) -> dict:
        """``{"u": u0, "w": w0}`` as float64 arrays: fresh copies, or with ``copy=False``
        the model's own read-only arrays (no copy at width 10⁶)."""
        if self._init is not None:
            u0, w0 = self._init
        else:
            draw = _gaussian_init if self.seed is not None else _gaussian_init.__wrapped__
            u0, w0 = draw(self.seed, self.width, self.sigma_u, self.sigma_w)
        if copy:
            return {"u": u0.copy(), "w": w0.copy()}
        return {"u": u0, "w": w0}

    @property
    def params(self) -> dict:
        """Hyperparameters as a plain dict (JSON-ready)."""
        out = {"width": self.width, "kappa": self.kappa, "eta_u": self.eta_u,
               "eta_w": self.eta_w, "teacher": self.teacher, "x_var": self.x_var}
        if self.explicit_init:
            init = self.initial_state()
            out["u0"] = init["u"].tolist()
            out["w0"] = init["w"].tolist()
        else:
            out.update(sigma_u=self.sigma_u, sigma_w=self.sigma_w, seed=self.seed)
        return out

    def target_scale(self) -> float:
        r"""Typical entry size at the target, :math:`\sqrt{|p^*|/d}` with
        :math:`p^* = c/\kappa`."""
        return float(np.sqrt(abs(self.teacher / self.kappa) / self.width))

    def symbol_values(self) -> dict:
        """Numeric values of the symbolic network's hyperparameter symbols (without building
        the network: a lowering read from the disk cache needs no derivation)."""
        h = _hyper()
        return {h[field]: getattr(self, field) for field in _HYPER_NAMES}

    def named_symbol_values(self) -> dict:
        """:meth:`symbol_values` keyed by the symbols' names (what generated sources take),
        without importing sympy."""
        return {name: getattr(self, field) for field, name in _HYPER_NAMES.items()}

    def symbolic_network(self) -> SymbolicNetwork:
        return symbolic_network()


def _expectation(expr, data_symbols, moments):
    """E over the data of a polynomial in the data symbols, from its moments."""
    import sympy as sp

    from ..symbolic.sums import normalize

    total = sp.S.Zero
    for term in sp.Add.make_args(sp.expand(normalize(expr))):
        data_part = sp.Mul(*[f for f in sp.Mul.make_args(term) if f.has(*data_symbols)])
        if data_part not in moments:
            raise ValueError(f"no moment given for {data_part}")
        total += (term / data_part) * moments[data_part]
    return total


#: Field of :class:`Linear1D` -> name of its hyperparameter symbol in
#: :func:`symbolic_network` (the names generated sources take; see :func:`_hyper`).
_HYPER_NAMES = {"kappa": "kappa", "eta_u": "eta_u", "eta_w": "eta_w", "teacher": "c",
                "x_var": "Sigma_xx"}


@cache
def _hyper() -> dict:
    """The hyperparameter symbols of :func:`symbolic_network`, by field (built on first use,
    so that building a model does not import sympy)."""
    import sympy as sp

    return {"kappa": sp.Symbol("kappa", nonzero=True, real=True),
            "eta_u": sp.Symbol("eta_u", positive=True),
            "eta_w": sp.Symbol("eta_w", positive=True),
            "teacher": sp.Symbol("c", real=True), "x_var": sp.Symbol("Sigma_xx", positive=True)}


@cache
def symbolic_network() -> SymbolicNetwork:
    r"""The symbolic network of :class:`Linear1D`, width-generic.

    Per-sample loss :math:`\tfrac12(\kappa x\sum_i u_iw_i - y)^2`; its expectation over the
    data uses :math:`\mathbb E[x^2] = \Sigma_{xx}`, :math:`\mathbb E[xy] = c\,\Sigma_{xx}`.
    """
    import sympy as sp

    from ..symbolic.flow import DerivationStep, SymbolicNetwork, Symmetry
    from ..symbolic.linear1d import reduce_linear1d
    from ..symbolic.sums import NEURON_INDEX, SUM_INDEX, collapse_deltas, neuron_sum, normalize

    hyper = _hyper()
    i, j = SUM_INDEX, NEURON_INDEX
    u, w = sp.IndexedBase("u"), sp.IndexedBase("w")
    kappa, eta_u, eta_w = hyper["kappa"], hyper["eta_u"], hyper["eta_w"]
    c, sxx = hyper["teacher"], hyper["x_var"]
    x, y, eyy = sp.Symbol("x", real=True), sp.Symbol("y", real=True), sp.Symbol("E_yy")
    p = neuron_sum(u[i] * w[i])
    forward = kappa * p * x
    per_sample = (forward - y) ** 2 / 2
    moments = {x**2: sxx, x * y: c * sxx, y**2: eyy, sp.S.One: sp.S.One}
    expected = _expectation(per_sample, (x, y), moments)
    loss = sxx * (kappa * p - c) ** 2 / 2
    constant = sp.simplify(expected - loss)
    assert not constant.has(u) and not constant.has(w), constant
    steps = (
        DerivationStep("Network", sp.Eq(sp.Symbol("f(x)"), forward, evaluate=False),
                       "One hidden linear layer with d neurons and output scale kappa."),
        DerivationStep("Per-sample loss", sp.Eq(sp.Symbol("\\ell(x, y)"), per_sample,
                                                evaluate=False), "Squared error."),
        DerivationStep("Expected loss", sp.Eq(sp.Symbol("L"), loss + constant, evaluate=False),
                       "E[x^2] = Sigma_xx, E[xy] = c Sigma_xx, E[y^2] = E_yy; the last term "
                       "does not depend on the parameters and is dropped.", proven=True),
    )
    a_, b_ = sp.symbols("a b", integer=True)
    pair = {u: sp.KroneckerDelta(j, a_) * u[b_] + sp.KroneckerDelta(j, b_) * u[a_],
            w: -(sp.KroneckerDelta(j, a_) * w[b_] + sp.KroneckerDelta(j, b_) * w[a_])}
    symmetries = (
        Symmetry("C_ab", "L depends on (u, w) only through p = u.w, which is invariant under "
                 "(u, w) -> (G u, G^{-T} w); the symmetric generator G = 1 + s(e_a e_b^T + "
                 "e_b e_a^T) gives the entry C_ab of C = u u^T/eta_u - w w^T/eta_w.",
                 pair, u[a_] * u[b_] / eta_u - w[a_] * w[b_] / eta_w),
        Symmetry("Q_1", "The rescaling (u, w) -> (e^s u, e^{-s} w) (G = e^s 1) gives "
                 "Q_1 = tr C = |u|^2/eta_u - |w|^2/eta_w.",
                 {u: u[j], w: -w[j]},
                 neuron_sum(u[i] ** 2) / eta_u - neuron_sum(w[i] ** 2) / eta_w),
    )
    # Rate-weighted NTK on the data, E_x[sum_l eta_l |d f(x)/d theta_l|^2].
    ntk = _expectation(sum(
        rate * neuron_sum(collapse_deltas(sp.diff(forward, b[j])).xreplace({j: i}) ** 2)
        for b, rate in ((u, eta_u), (w, eta_w))), (x, y), moments)
    ntk = normalize(sp.expand(ntk))
    observables = {
        "end_to_end": kappa * p,
        "loss": loss,
        "ntk": ntk,
        "norm_u": sp.sqrt(neuron_sum(u[i] ** 2)),
        "norm_w": sp.sqrt(neuron_sum(w[i] ** 2)),
        "alignment": p / sp.sqrt(neuron_sum(u[i] ** 2) * neuron_sum(w[i] ** 2)),
    }
    return SymbolicNetwork(
        name="linear1d", params=(u, w), rates={u: eta_u, w: eta_w},
        hyper={"kappa": kappa, "eta_u": eta_u, "eta_w": eta_w, "teacher": c, "x_var": sxx,
               "x": x},
        forward=forward, loss=loss, loss_steps=steps, symmetries=symmetries,
        observables=observables, citation=CITATION, reduce=reduce_linear1d)


@lru_cache(maxsize=2)
def _gaussian_init(seed, width: int, sigma_u: float, sigma_w: float) -> tuple:
    """The seeded Gaussian init, drawn once per process for the last two models asked
    (drawing 2·10⁶ normals takes longer than the whole closed form at width 10⁶); read-only,
    callers copy."""
    rng = np.random.default_rng(seed)
    u0 = rng.normal(0.0, 1.0, width) * sigma_u
    w0 = rng.normal(0.0, 1.0, width) * sigma_w
    u0.flags.writeable = w0.flags.writeable = False
    return u0, w0
