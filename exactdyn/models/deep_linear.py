r"""Deep linear networks [JG, SMG], MATH.md §3.

.. math:: f(x) = A x,\qquad A = W_L\cdots W_1,\qquad
          L = \tfrac12\,\mathbb E\lVert Ax - y\rVert^2 + \text{const},

with :math:`W_1 \in \mathbb R^{w\times n_{in}}`, :math:`W_\ell \in \mathbb R^{w\times w}`
and :math:`W_L \in \mathbb R^{n_{out}\times w}`; random init with i.i.d. entries
:math:`N(0, \sigma^2)`, :math:`\sigma^2 = w^{-\gamma}`. Data enter through
:math:`\Sigma_{yx} = \mathbb E[yx^\top]` and :math:`\Sigma_{xx} = \mathbb E[xx^\top]`
(whitened, :math:`I`, by default).

References: A. Jacot et al., arXiv:2106.15933 (saddle-to-saddle dynamics, the
:math:`\gamma` parametrization); A. Saxe et al., arXiv:1312.6120 (decoupled inits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import _validation as check
from .base import ModelMixin

__all__ = ["DeepLinear", "teacher_matrix", "CITATION"]  # noqa: F822 (CITATION: __getattr__)


def __getattr__(name: str):
    # CITATION lives with the symbolic flow (which imports sympy): read it from there on
    # first use, so that building a model does not import sympy.
    if name == "CITATION":
        from ..symbolic.deep_linear import CITATION

        return CITATION
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_matrix = check.finite_matrix


def _positive_definite(name, m) -> np.ndarray:
    if m.shape[0] != m.shape[1]:
        raise ValueError(f"{name} must be square, got shape {m.shape}")
    if not np.allclose(m, m.T, rtol=1e-12, atol=1e-14 * np.abs(m).max()):
        raise ValueError(f"{name} must be symmetric (a second-moment matrix)")
    try:
        np.linalg.cholesky(m)
    except np.linalg.LinAlgError:
        raise ValueError(f"{name} must be positive definite; its smallest eigenvalue is "
                         f"{np.linalg.eigvalsh(m).min():.3g}") from None
    return m


def teacher_matrix(svals, out_dim: int, in_dim: int) -> np.ndarray:
    r"""The rectangular diagonal :math:`\Sigma_{yx}` with the given singular values.

    ``svals`` (non-negative, at most ``min(out_dim, in_dim)`` of them) fill the diagonal.
    """
    out_dim = check.positive_int("out_dim", out_dim)
    in_dim = check.positive_int("in_dim", in_dim)
    s = np.atleast_1d(np.asarray(svals, dtype=float))
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError(f"teacher_svals must be finite non-negative numbers, "
                         f"got {check.show(svals)}")
    if s.size > min(out_dim, in_dim):
        raise ValueError(f"teacher_svals: at most min(out_dim, in_dim) = {min(out_dim, in_dim)}"
                         f" values, got {s.size}")
    m = np.zeros((out_dim, in_dim))
    m[np.arange(s.size), np.arange(s.size)] = s
    return m


@dataclass(frozen=True)
class DeepLinear(ModelMixin):
    r"""Hyperparameters and initial state of a deep linear network (MATH.md §3).

    Parameters
    ----------
    depth : int
        Number of weight matrices :math:`L \ge 2`.
    width : int
        Hidden width :math:`w \ge 1`.
    in_dim, out_dim : int
        Input and output dimensions (>= 1).
    gamma : float
        Init exponent: entries :math:`N(0, \sigma^2)` with :math:`\sigma^2 = w^{-\gamma}`
        [JG]. :math:`\gamma < 1`: NTK regime; :math:`\gamma > 1`: saddle-to-saddle.
    sigma : float, optional
        The init standard deviation directly (>= 0; overrides ``gamma``).
    sigma_yx : array_like, shape (out_dim, in_dim)
        :math:`\Sigma_{yx} = \mathbb E[y x^\top]` (required).
    sigma_xx : array_like, shape (in_dim, in_dim), optional
        :math:`\Sigma_{xx} = \mathbb E[x x^\top]`, symmetric positive definite (default
        :math:`I`).
    seed : int or None
        Seed of ``numpy.random.default_rng``; the layers are drawn in order W1, ..., WL.

    Notes
    -----
    :meth:`from_init` takes explicit weights; :meth:`decoupled` builds the SVD-aligned,
    balanced init whose modes follow the scalar chain
    :math:`\dot a = a^{L-1}(s - a^L)` [SMG].
    """

    depth: int = 3
    width: int = 16
    in_dim: int = 3
    out_dim: int = 3
    gamma: float = 1.0
    sigma: float | None = None
    sigma_yx: object = None
    sigma_xx: object = None
    seed: int | None = 0
    _init: tuple | None = field(default=None, repr=False, compare=False)

    state_names = property(lambda self: tuple(f"W{l + 1}" for l in range(self.depth)))

    def __post_init__(self):
        set_ = object.__setattr__
        depth = check.positive_int("depth", self.depth)
        if depth < 2:
            raise ValueError(f"depth must be an integer >= 2 (number of weight matrices), "
                             f"got {check.show(self.depth)}")
        set_(self, "depth", depth)
        set_(self, "width", check.positive_int("width", self.width))
        set_(self, "in_dim", check.positive_int("in_dim", self.in_dim))
        set_(self, "out_dim", check.positive_int("out_dim", self.out_dim))
        set_(self, "gamma", check.real("gamma", self.gamma))
        if self.sigma is not None:
            set_(self, "sigma", check.nonnegative("sigma", self.sigma))
        elif self._init is None:
            try:
                std = self.init_std
            except OverflowError:
                std = math.inf
            if not (std > 0 and math.isfinite(std)):
                raise ValueError(f"gamma={self.gamma!r} at width {self.width} gives the init "
                                 f"standard deviation width**(-gamma/2) = {std!r}, not a "
                                 f"positive float64 number (the init would be 0 or inf); use a "
                                 f"gamma of smaller magnitude or give sigma")
        if self.sigma_yx is None:
            raise ValueError("sigma_yx is required: the (out_dim x in_dim) matrix E[y x^T] "
                             "(see teacher_matrix for one from singular values)")
        syx = _matrix("sigma_yx", self.sigma_yx)
        if syx.shape != (self.out_dim, self.in_dim):
            raise ValueError(f"sigma_yx must have shape (out_dim, in_dim) = "
                             f"({self.out_dim}, {self.in_dim}), got {syx.shape}")
        set_(self, "sigma_yx", syx)
        if self.sigma_xx is not None:
            sxx = _positive_definite("sigma_xx", _matrix("sigma_xx", self.sigma_xx))
            if sxx.shape != (self.in_dim, self.in_dim):
                raise ValueError(f"sigma_xx must have shape (in_dim, in_dim) = "
                                 f"({self.in_dim}, {self.in_dim}), got {sxx.shape}")
            set_(self, "sigma_xx", sxx)
        set_(self, "seed", check.seed("seed", self.seed))
        if self._init is not None:
            weights = tuple(_matrix(f"weights[{l}] (W{l + 1})", w, s) for l, (w, s) in
                            enumerate(zip(self._init, self.layer_shapes())))
            set_(self, "_init", weights)

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def from_init(cls, weights, sigma_yx, sigma_xx=None) -> DeepLinear:
        """A model with explicit weights ``[W1, ..., WL]`` (W1: width x in, WL: out x width)."""
        if isinstance(weights, np.ndarray) or not hasattr(weights, "__len__"):
            raise ValueError("weights must be a list [W1, ..., WL] of 2-D matrices")
        mats = [_matrix(f"weights[{l}] (W{l + 1})", w) for l, w in enumerate(weights)]
        if len(mats) < 2:
            raise ValueError(f"weights must hold at least 2 matrices (depth >= 2), got "
                             f"{len(mats)}")
        for l in range(1, len(mats)):
            if mats[l].shape[1] != mats[l - 1].shape[0]:
                raise ValueError(f"weights: W{l + 1} has {mats[l].shape[1]} columns but W{l} "
                                 f"has {mats[l - 1].shape[0]} rows (shape mismatch)")
        widths = {m.shape[0] for m in mats[:-1]}
        if len(widths) != 1:
            raise ValueError(f"weights: all hidden layers must share one width, got {widths}")
        return cls(depth=len(mats), width=mats[0].shape[0], in_dim=mats[0].shape[1],
                   out_dim=mats[-1].shape[0], sigma=0.0, sigma_yx=sigma_yx,
                   sigma_xx=sigma_xx, seed=None, _init=tuple(mats))

    @classmethod
    def decoupled(cls, depth: int, width: int, sigma_yx, mode_init=1e-3,
                  sigma_xx=None) -> DeepLinear:
        r"""The balanced SVD-aligned init [SMG]: every mode is a scalar chain.

        With :math:`\Sigma_{yx} = USV^\top` and :math:`r = \min(n_{out}, n_{in}, w)`,
        :math:`W_1 = R\,\mathrm{diag}(a)V_r^\top`, :math:`W_\ell = R\,\mathrm{diag}(a)R^\top`,
        :math:`W_L = U_r\,\mathrm{diag}(a)R^\top` (:math:`R` the first :math:`r` coordinate
        vectors of the hidden space), so :math:`A = U_r\,\mathrm{diag}(a^L)V_r^\top` and
        each mode obeys :math:`\dot a = a^{L-1}(s - a^L)`.

        ``mode_init``: the per-layer scale :math:`a_\alpha \ge 0`, a number or ``r`` numbers.
        """
        syx = _matrix("sigma_yx", sigma_yx)
        depth = check.positive_int("depth", depth)
        if depth < 2:  # depth 1 built a depth-2 chain (W1 and WL) before
            raise ValueError(f"depth must be an integer >= 2 (number of weight matrices), "
                             f"got {depth!r}")
        width = check.positive_int("width", width)
        out_dim, in_dim = syx.shape
        r = min(out_dim, in_dim, width)
        a = np.broadcast_to(np.asarray(mode_init, dtype=float), (r,)) \
            if np.ndim(mode_init) == 0 else np.asarray(mode_init, dtype=float)
        if a.shape != (r,) or not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ValueError(f"mode_init must be one non-negative number or {r} of them "
                             f"(min(out_dim, in_dim, width)), got {check.show(mode_init)}")
        U, _, Vt = np.linalg.svd(syx)
        R = np.eye(width)[:, :r]
        D = np.diag(a)
        weights = [R @ D @ Vt[:r]] + [R @ D @ R.T for _ in range(depth - 2)] \
            + [U[:, :r] @ D @ R.T]
        return cls.from_init(weights, syx, sigma_xx)

    # ---- what the pipeline needs -------------------------------------------------------
    name = property(lambda self: f"deep_linear_L{self.depth}")

    @property
    def flow_key(self) -> str:
        return self.name

    @property
    def explicit_init(self) -> bool:
        return self._init is not None

    @property
    def init_std(self) -> float:
        r""":math:`\sigma` of the random init (``sigma`` or :math:`w^{-\gamma/2}`)."""
        if self.sigma is not None:
            return float(self.sigma)
        return float(self.width ** (-self.gamma / 2))

    def with_init_scaled(self, factor: float) -> DeepLinear:
        """The same data with every initial weight matrix times ``factor`` (an explicit init,
        built with :meth:`from_init`)."""
        factor = check.real("factor", factor)
        return DeepLinear.from_init([factor * w for w in self.initial_state().values()],
                                    self.sigma_yx, self.sigma_xx)

    def layer_shapes(self) -> list:
        dims = [self.in_dim] + [self.width] * (self.depth - 1) + [self.out_dim]
        return [(dims[l + 1], dims[l]) for l in range(self.depth)]

    def initial_state(self) -> dict:
        """``{"W1": ..., ..., "WL": ...}`` as float64 arrays (fresh copies)."""
        if self._init is not None:
            return {n: w.copy() for n, w in zip(self.state_names, self._init)}
        rng = np.random.default_rng(self.seed)
        s = self.init_std
        return {n: rng.normal(0.0, 1.0, shape) * s
                for n, shape in zip(self.state_names, self.layer_shapes())}

    def data_matrices(self):
        """``(Sigma_yx, Sigma_xx)`` as float64 arrays (identity when whitened)."""
        sxx = np.eye(self.in_dim) if self.sigma_xx is None else np.asarray(self.sigma_xx)
        return np.asarray(self.sigma_yx), sxx

    def teacher_map(self) -> np.ndarray:
        r""":math:`T = \Sigma_{yx}\Sigma_{xx}^{-1}`, the least-squares end-to-end map."""
        syx, sxx = self.data_matrices()
        return np.linalg.solve(sxx, syx.T).T

    def teacher_singular_values(self) -> np.ndarray:
        r"""Singular values :math:`s_1 \ge s_2 \ge \dots` of :math:`\Sigma_{yx}` (whitened)."""
        return np.linalg.svd(np.asarray(self.sigma_yx), compute_uv=False)

    def target_scale(self) -> float:
        r"""Typical entry size of a weight at the target, :math:`\|T\|_F^{1/L}/\sqrt{w}`."""
        t = float(np.linalg.norm(self.teacher_map()))
        return t ** (1.0 / self.depth) / np.sqrt(self.width) if t > 0 else 0.0

    @property
    def params(self) -> dict:
        out = {"depth": self.depth, "width": self.width, "in_dim": self.in_dim,
               "out_dim": self.out_dim, "sigma_yx": np.asarray(self.sigma_yx).tolist(),
               "sigma_xx": None if self.sigma_xx is None else np.asarray(self.sigma_xx).tolist()}
        if self.explicit_init:
            out["weights"] = [w.tolist() for w in self._init]
        else:
            out.update(gamma=self.gamma, sigma=self.init_std, seed=self.seed)
        return out

    def derive_flow(self):
        """The symbolic matrix-form flow (derived once per depth)."""
        from ..symbolic.deep_linear import derive_deep_linear

        return derive_deep_linear(self.depth)
