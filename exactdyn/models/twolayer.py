r"""Two-layer networks with small initialization (MATH.md §4).

.. math::

    f(x) = \frac1\alpha\sum_{k=1}^m a_k\,\sigma(w_k\cdot x),\qquad
    L = \frac1{2n}\sum_{i=1}^n\big(f(x_i) - y_i\big)^2,

the bias folded into the input (:math:`x \mapsto (x, 1)`), :math:`a_k \sim N(0, \beta_1^2)`,
:math:`w_k \sim N(0, \beta_2^2 I)`. Luo, Xu, Ma, Zhang, "Phase diagram for two-layer ReLU
neural networks at infinite-width limit", JMLR 22 (2021) 71; Zhou et al., NeurIPS 2022;
Chen et al. (initial condensation); Boursier & Flammarion, "Early alignment in two-layer
networks training is a two-edged sword" (2024).
"""

from __future__ import annotations

import math
import os

import numpy as np

from .. import _validation as check
from .activations import activation as make_activation
from .base import FrozenAfterInit, KinkedPreactivation, ModelMixin

INITS = ("gaussian", "balanced", "dominated", "dominated_bf", "mirrored")

#: Built-in data sets: name -> (description, builder(n)).
DATASETS = {
    "1d-sine": ("n points x in [-1, 1] (evenly spaced), y = sin(pi x)",
                lambda n: (np.linspace(-1.0, 1.0, n)[:, None],
                           np.sin(np.pi * np.linspace(-1, 1, n)))),
    "1d-linear": ("n points x in [-1, 1] (evenly spaced), y = x/2 + 1/4",
                  lambda n: (np.linspace(-1.0, 1.0, n)[:, None],
                             np.linspace(-1, 1, n) / 2 + 0.25)),
    "1d-cubic": ("n points x in [-1, 1] (evenly spaced), y = x^3 - x/2 + 1/4",
                 lambda n: (np.linspace(-1.0, 1.0, n)[:, None],
                            np.linspace(-1, 1, n) ** 3 - np.linspace(-1, 1, n) / 2 + 0.25)),
}


def load_data(spec, n: int = 20):
    """``(X, y)`` from a built-in name (:data:`DATASETS`, ``n`` points) or an ``.npz`` file
    with arrays ``X`` and ``y``."""
    if isinstance(spec, str) and spec in DATASETS:
        n = check.positive_int("n", n)
        return DATASETS[spec][1](n)
    if isinstance(spec, (str, os.PathLike)) and str(spec).endswith(".npz"):
        if not os.path.exists(spec):
            raise ValueError(f"data file {str(spec)!r} does not exist")
        with np.load(spec) as f:
            if "X" not in f or "y" not in f:
                raise ValueError(f"data file {str(spec)!r} must hold arrays named X and y; "
                                 f"it holds {', '.join(f.files)}")
            return np.array(f["X"]), np.array(f["y"])
    raise ValueError(f"data must be one of {', '.join(DATASETS)} or a path to an .npz file "
                     f"with arrays X and y; got {check.show(spec)}")


def _data(X, y, bias):
    try:
        Xa = np.asarray(X, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"X must be an array of real numbers, got {check.show(X)}") from None
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    if Xa.ndim != 2 or Xa.shape[0] == 0 or Xa.shape[1] == 0:
        raise ValueError(f"X must be a non-empty (n, d) array, got shape {Xa.shape}")
    if not np.all(np.isfinite(Xa)):
        raise ValueError("X must be finite (it has NaN or infinite entries)")
    try:
        ya = np.asarray(y, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"y must be an array of real numbers, got {check.show(y)}") from None
    if ya.ndim != 1:
        raise ValueError(f"y must be a 1-D array of targets, got shape {ya.shape}")
    if not np.all(np.isfinite(ya)):
        raise ValueError("y must be finite (it has NaN or infinite entries)")
    if ya.shape[0] != Xa.shape[0]:
        raise ValueError(f"X and y must have the same number of samples; got X with "
                         f"{Xa.shape[0]} rows and y with {ya.shape[0]} entries")
    if not isinstance(bias, bool):
        raise ValueError(f"bias must be True or False, got {check.show(bias)}")
    if bias:
        Xa = np.hstack([Xa, np.ones((Xa.shape[0], 1))])
    return np.ascontiguousarray(Xa), ya


def _width_scales(width, alpha, beta1, beta2, gamma, gamma_prime):
    r"""(alpha, beta1, beta2) from explicit scales or from Luo et al.'s exponents.

    With ``gamma``, ``gamma_prime``: :math:`\beta_1\beta_2/\alpha = m^{-\gamma}`,
    :math:`\beta_1/\beta_2 = m^{-\gamma'}`, normalized by the given :math:`\alpha`
    (default 1): :math:`\beta_1 = \sqrt\alpha\,m^{-(\gamma+\gamma')/2}`,
    :math:`\beta_2 = \sqrt\alpha\,m^{-(\gamma-\gamma')/2}`.
    """
    alpha = check.positive("alpha", alpha)
    if (gamma is None) != (gamma_prime is None):
        raise ValueError("gamma and gamma_prime must be given together")
    if gamma is not None:
        if beta1 is not None or beta2 is not None:
            raise ValueError("give either beta1, beta2 or gamma, gamma_prime, not both")
        g = check.real("gamma", gamma)
        gp = check.real("gamma_prime", gamma_prime)
        m = float(width)
        root = math.sqrt(alpha)
        try:
            b1, b2 = root * m ** (-(g + gp) / 2), root * m ** (-(g - gp) / 2)
        except OverflowError:
            b1 = b2 = math.inf
        if not all(0 < b < math.inf for b in (b1, b2)):
            raise ValueError(f"gamma={gamma!r}, gamma_prime={gamma_prime!r} at width {width} "
                             f"give init scales beta1={b1!r}, beta2={b2!r}; both must be "
                             f"positive float64 numbers (the init would underflow to 0 or "
                             f"overflow)")
        return alpha, b1, b2
    beta1 = check.positive("beta1", 1.0 if beta1 is None else beta1)
    beta2 = check.positive("beta2", 1.0 if beta2 is None else beta2)
    return alpha, beta1, beta2


def initial_weights(scheme, width, d_in, beta1, beta2, seed):
    r"""``(a, W)`` for an init scheme.

    ``gaussian``: :math:`a_k \sim N(0,\beta_1^2)`, :math:`w_k \sim N(0,\beta_2^2 I)`.
    ``balanced``: :math:`w_k` Gaussian, :math:`a_k = \pm\|w_k\|` (random signs; β1 unused).
    ``dominated``: :math:`a_k = \pm(\|w_k\| + |g_k|)`, :math:`g_k \sim N(0,\beta_1^2)`, so
    :math:`|a_k| \ge \|w_k\|`. ``mirrored``: the first m/2 neurons Gaussian, the second
    half the same input weights with negated :math:`a`, so :math:`f \equiv 0` at t = 0
    (width must be even) [LX's code]. Boursier & Flammarion's balanced / dominated inits.

    ``dominated`` is ours: Gaussian input weights with the output weights pushed above
    their norms. ``dominated_bf`` is the distribution of Boursier & Flammarion's code
    (github.com/eboursier/early_alignment, ``early_alignment.py``, class ``Net``, whose
    docstring reads "dominated ensures |a_j| > ||w_j||"): every input weight (bias
    included) uniform on :math:`[-s, s]` and :math:`a_j = \pm\sqrt{2}\,s` with fair
    random signs, where their ``init_scale`` λ gives :math:`s = \lambda/\sqrt m`
    (``init_scale/np.sqrt(n_hidden)``). Here :math:`s` = ``beta2`` (pass
    ``beta2=lam/sqrt(m)``; β1 unused) and the factor is :math:`\sqrt{d_{in}}` (d_in
    counting the bias column), so :math:`|a_j| \ge \lVert w_j\rVert` always. Their code
    multiplies by √2 when the hidden layer has a bias (by 1 without); the two agree for
    their one-dimensional inputs with a bias (d_in = 2), the only case they run.
    """
    check.choice("init", scheme, INITS)
    rng = np.random.default_rng(seed)
    if scheme == "mirrored":
        if width % 2:
            raise ValueError(f"width must be even for init='mirrored', got {width}")
        half = width // 2
        a = rng.normal(0.0, beta1, half)
        W = rng.normal(0.0, beta2, (half, d_in))
        return np.concatenate([a, -a]), np.vstack([W, W])
    if scheme == "dominated_bf":
        W = rng.uniform(-beta2, beta2, (width, d_in))
        signs = 2.0 * rng.integers(0, 2, width) - 1.0
        return signs * math.sqrt(d_in) * beta2, W
    W = rng.normal(0.0, beta2, (width, d_in))
    if scheme == "gaussian":
        return rng.normal(0.0, beta1, width), W
    signs = rng.choice([-1.0, 1.0], width)
    norms = np.linalg.norm(W, axis=1)
    if scheme == "balanced":
        return signs * norms, W
    return signs * (norms + np.abs(rng.normal(0.0, beta1, width))), W


class TwoLayer(FrozenAfterInit, ModelMixin):
    r"""A two-layer network :math:`f(x) = \frac1\alpha\sum_k a_k\sigma(w_k\cdot x)` on data
    ``(X, y)``, trained by gradient flow on :math:`L = \frac1{2n}\sum_i (f(x_i)-y_i)^2`.

    Parameters
    ----------
    width : int
        Number of hidden neurons m.
    X : array_like, shape (n, d) or (n,), or str
        Inputs; or a built-in data set name (:data:`DATASETS`, with ``y=None`` and
        ``n`` points) or an ``.npz`` path.
    y : array_like, shape (n,)
        Targets.
    activation : str
        A name (``relu``, ``leaky_relu``, ``tanh``, ``sigmoid``, ``softplus``, ``silu``,
        ``gelu``, ``x_tanh``, ``x2_tanh``, ``linear``) or an expression in ``x`` over a
        whitelist (:func:`exactdyn.models.activations.parse_activation`).
    alpha : float
        Output scale α > 0.
    beta1, beta2 : float
        Init standard deviations of a and of w (> 0; default 1).
    gamma, gamma_prime : float
        Instead of ``beta1, beta2``: Luo et al.'s exponents,
        :math:`\beta_1\beta_2/\alpha = m^{-\gamma}`, :math:`\beta_1/\beta_2 = m^{-\gamma'}`
        (so :math:`\beta_1 = \sqrt\alpha m^{-(\gamma+\gamma')/2}`,
        :math:`\beta_2 = \sqrt\alpha m^{-(\gamma-\gamma')/2}`; prefactors 1).
    init : str
        ``gaussian``, ``balanced``, ``dominated``, ``dominated_bf`` (Boursier &
        Flammarion's code) or ``mirrored`` (:func:`initial_weights`).
    bias : bool
        Append a column of ones to X (the bias is the last input weight).
    seed : int
        Seed of the init.
    n : int
        Number of points of a built-in data set.
    """

    name = "two_layer"

    def __init__(self, width, X, y=None, activation="relu", alpha=1.0, beta1=None, beta2=None,
                 init="gaussian", bias=True, seed=0, gamma=None, gamma_prime=None, n=20):
        self.width = check.positive_int("width", width)
        if isinstance(X, (str, os.PathLike)):
            if y is not None:
                raise ValueError("y must be None when X names a data set")
            self.data_name = str(X)
            X, y = load_data(X, n)
        else:
            self.data_name = None
            if y is None:
                raise ValueError("y must be given with an array X")
        self.act = make_activation(activation)
        bias = check.boolean("bias", bias)
        self.X, self.y = _data(X, y, bias)
        self.bias = bias
        self.alpha, self.beta1, self.beta2 = _width_scales(self.width, alpha, beta1, beta2,
                                                           gamma, gamma_prime)
        self.init = check.choice("init", init, INITS)
        self.seed = check.seed("seed", seed)
        self.a0, self.W0 = initial_weights(init, self.width, self.X.shape[1], self.beta1,
                                           self.beta2, self.seed)
        self._freeze()

    @classmethod
    def from_init(cls, a, W, X, y, activation="relu", alpha=1.0, bias=True) -> TwoLayer:
        """A network with explicit initial weights ``a`` (m,) and ``W`` (m, d_in), where
        d_in = d + 1 with ``bias``."""
        self = cls.__new__(cls)
        self.act = make_activation(activation)
        bias = check.boolean("bias", bias)
        self.X, self.y = _data(X, y, bias)
        self.bias = bias
        self.alpha = check.positive("alpha", alpha)
        self.beta1 = self.beta2 = None
        self.init, self.seed, self.data_name = "explicit", None, None
        a = check.finite_vector("a", a)
        try:
            W = np.asarray(W, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"W must be an (m, d_in) array of real numbers, "
                             f"got {check.show(W)}") from None
        if W.shape != (a.size, self.X.shape[1]):
            raise ValueError(f"W must have shape (m, d_in) = ({a.size}, {self.X.shape[1]}) "
                             f"(d_in counts the bias column when bias=True); got {W.shape}")
        if not np.all(np.isfinite(W)):
            raise ValueError("W must be finite")
        self.width = a.size
        self.a0, self.W0 = a.copy(), W.copy()
        self._freeze()
        return self

    # ---- description -------------------------------------------------------------------
    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d_in(self) -> int:
        return self.X.shape[1]

    @property
    def activation(self) -> str:
        return self.act.name

    @property
    def multiplicity(self) -> int:
        return self.act.multiplicity

    @property
    def params(self) -> dict:
        return {"width": self.width, "n": self.n, "d_in": self.d_in,
                "activation": self.act.name, "alpha": self.alpha, "beta1": self.beta1,
                "beta2": self.beta2, "init": self.init, "bias": self.bias, "seed": self.seed,
                "data": self.data_name}

    def __repr__(self) -> str:
        return (f"TwoLayer(width={self.width}, n={self.n}, d_in={self.d_in}, "
                f"activation={self.act.name!r}, alpha={self.alpha!r}, beta1={self.beta1!r}, "
                f"beta2={self.beta2!r}, init={self.init!r})")

    def values(self) -> dict:
        """The output scale and the axis sizes (neurons, samples, input features)."""
        return {"alpha": self.alpha, "width": self.width, "n": self.n, "d_in": self.d_in}

    def with_init_scaled(self, factor: float) -> TwoLayer:
        """The same network (data, activation, α, bias) with its initial state times
        ``factor``, built with :meth:`from_init`."""
        factor = check.real("factor", factor)
        return self.with_init(factor * self.a0, factor * self.W0)

    def with_init(self, a, W) -> TwoLayer:
        """The same network (data, activation, α, bias) from the initial weights ``a`` (m,)
        and ``W`` (m, d_in), any width m, built with :meth:`from_init`."""
        X = self.X[:, :-1] if self.bias else self.X
        return type(self).from_init(a, W, X, self.y, activation=self.act, alpha=self.alpha,
                                    bias=self.bias)

    def initial_state(self) -> dict:
        return {"a": self.a0.copy(), "W": self.W0.copy()}

    def target_scale(self) -> float:
        return float(np.sqrt(np.mean(self.y**2)))

    def kinked_preactivation(self) -> KinkedPreactivation:
        r""":math:`h_{ki} = w_k\cdot x_i`: the neurons are the units, the data points (bias
        column included) the entries, one position each."""
        return KinkedPreactivation(
            activation=self.act, weights="W", weights_matrix=self.W0.shape, units_axis=0,
            readout="a", readout_matrix=self.a0.shape, inputs=self.X[:, None, :],
            targets=self.y, alpha=self.alpha, preactivation_axes=("unit", "sample"))

    def derive_flow(self):
        """The symbolic flow, one derivation for every activation
        (:func:`exactdyn.symbolic.twolayer.derive_two_layer_flow`)."""
        # imported here: building a network needs no sympy, deriving its flow does
        from ..symbolic.twolayer import derive_two_layer_flow

        return derive_two_layer_flow()

    def conservation_proven(self) -> bool:
        """:math:`a_k^2 - \\|w_k\\|^2` conserved, proven from the derived flow (sympy)."""
        return _proof(self.act.expr)


_PROOFS: dict = {}


def _proof(expr) -> bool:
    import sympy as sp

    from ..symbolic.twolayer import prove_balance
    from .activations import X as XSYM

    key = sp.srepr(expr)
    if key not in _PROOFS:
        _PROOFS[key] = prove_balance(expr, XSYM)
    return _PROOFS[key]


__all__ = ["DATASETS", "INITS", "TwoLayer", "initial_weights", "load_data"]
