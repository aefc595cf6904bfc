r"""Two-layer linear networks with vector data [SMG, T, B], and Kunin et al.'s single
neuron [K] (MATH.md §2).

.. math:: f(x) = W_2 W_1 x,\qquad W_1\in\mathbb R^{h\times n_{in}},\;
          W_2\in\mathbb R^{n_{out}\times h},

trained by gradient flow with layer rates :math:`\eta_1, \eta_2` on the squared loss,
whose expectation over the data depends on the parameters only through the moments
:math:`\Sigma_{xx} = \mathbb E[xx^\top]` (default :math:`I`, whitened inputs) and
:math:`\Sigma_{yx} = \mathbb E[yx^\top]`:

.. math:: L = \tfrac12\operatorname{tr}(W\Sigma_{xx}W^\top) - \operatorname{tr}(W\Sigma_{yx}^\top)
          + \text{const},\qquad W = W_2W_1.

The observable ``"loss"`` is this loss minus its infimum over all linear maps,
:math:`\tfrac12\operatorname{tr}((W - W^*)\Sigma_{xx}(W - W^*)^\top)` with
:math:`W^* = \Sigma_{yx}\Sigma_{xx}^{-1}`; for whitened inputs it is
:math:`\tfrac12\lVert W_2W_1 - \Sigma_{yx}\rVert_F^2`.

References
----------
[SMG] A. M. Saxe, J. L. McClelland, S. Ganguli, "Exact solutions to the nonlinear
dynamics of learning in deep linear neural networks", arXiv:1312.6120 (ICLR 2014).
[T] S. Tarmoun, G. França, B. D. Haeffele, R. Vidal, "Understanding the dynamics of
gradient flow in overparameterized linear models", ICML 2021.
[B] L. Braun, C. Dominé, J. Fitzgerald, A. Saxe, "Exact learning dynamics of deep linear
networks with prior knowledge", NeurIPS 2022 (after K. Fukumizu 1998).
[K] D. Kunin, A. Raventós, C. Dominé, F. Chen, D. Klindt, A. Saxe, S. Ganguli, "Get rich
quick: exact solutions reveal how unbalanced initializations promote rapid feature
learning", arXiv:2406.06158.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from .. import _validation as check
from .base import ModelMixin

if TYPE_CHECKING:
    from ..symbolic.matrix_flow import MatrixNetwork

# sympy and the symbolic layer are imported where the symbolic network or its symbols are
# built: building a model (a sweep, a closed form) does not import sympy.

CITATION = ("A. M. Saxe, J. L. McClelland, S. Ganguli, Exact solutions to the nonlinear "
            "dynamics of learning in deep linear neural networks, arXiv:1312.6120; "
            "S. Tarmoun et al., ICML 2021; L. Braun et al., NeurIPS 2022; D. Kunin et al., "
            "Get rich quick, arXiv:2406.06158.")


# ---- input checks ---------------------------------------------------------------------
_matrix = check.finite_matrix


def _spd(name, value, n):
    arr = _matrix(name, value, (n, n))
    if not np.allclose(arr, arr.T, rtol=1e-12, atol=1e-14 * max(1.0, np.abs(arr).max())):
        raise ValueError(f"{name} must be symmetric (a second-moment matrix)")
    arr = np.array((arr + arr.T) / 2)
    try:
        np.linalg.cholesky(arr)
    except np.linalg.LinAlgError:
        raise ValueError(f"{name} must be positive definite; its smallest eigenvalue is "
                         f"{np.linalg.eigvalsh(arr).min():.3g}") from None
    arr.setflags(write=False)
    return arr


def _rng_init(rng, shape, scale):
    return rng.normal(0.0, 1.0, shape) * scale


class _InputMoments(ModelMixin):
    """``sxx`` and ``whitened`` of a model with input dimension ``in_dim`` and
    ``sigma_xx`` (``None`` meaning whitened inputs)."""

    @property
    def sxx(self) -> np.ndarray:
        """:math:`\\Sigma_{xx}` as an array (the identity when whitened)."""
        return np.eye(self.in_dim) if self.sigma_xx is None else np.asarray(self.sigma_xx)

    @property
    def whitened(self) -> bool:
        return self.sigma_xx is None or bool(np.array_equal(self.sigma_xx, np.eye(self.in_dim)))


@dataclass(frozen=True)
class LinearNet(_InputMoments):
    r"""Hyperparameters and initial state of :math:`f(x) = W_2W_1x` (MATH.md §2).

    Parameters
    ----------
    in_dim, hidden, out_dim : int
        :math:`n_{in}`, hidden width :math:`h`, :math:`n_{out}` (each >= 1).
    sigma_yx : array_like, shape (out_dim, in_dim)
        :math:`\Sigma_{yx} = \mathbb E[yx^\top]`. Default: the identity-like teacher
        with singular values 1 (``np.eye(out_dim, in_dim)``).
    sigma_xx : array_like, shape (in_dim, in_dim), optional
        :math:`\Sigma_{xx} = \mathbb E[xx^\top]`, symmetric positive definite; ``None``
        means whitened inputs (:math:`I`).
    eta1, eta2 : float
        Learning rates of :math:`W_1` and :math:`W_2` (> 0).
    scale1, scale2 : float
        Init standard deviations (>= 0): entries of :math:`W_1` are
        :math:`N(0, \text{scale1}^2)`, of :math:`W_2` :math:`N(0, \text{scale2}^2)`.
    seed : int or None
        Seed of ``numpy.random.default_rng``; ``W1`` is drawn first, then ``W2``.

    Notes
    -----
    The gradient flow (derived from the loss by :mod:`exactdyn.symbolic.matrix_flow`):

    .. math::
        \dot W_1 = -\eta_1 W_2^\top(W_2W_1\Sigma_{xx} - \Sigma_{yx}),\qquad
        \dot W_2 = -\eta_2 (W_2W_1\Sigma_{xx} - \Sigma_{yx})W_1^\top,

    conserving :math:`C = W_1W_1^\top/\eta_1 - W_2^\top W_2/\eta_2`. Special inits:
    :meth:`decoupled`, :meth:`zero_balanced`, :meth:`lambda_balanced`, and
    :meth:`from_init` for explicit matrices.
    """

    in_dim: int = 3
    hidden: int = 3
    out_dim: int = 3
    sigma_yx: object = None
    sigma_xx: object = None
    eta1: float = 1.0
    eta2: float = 1.0
    scale1: float = 0.1
    scale2: float = 0.1
    seed: int | None = 0
    _init: tuple | None = field(default=None, repr=False, compare=False)
    #: How the init was built ("random", "explicit", "decoupled", "zero_balanced",
    #: "lambda_balanced") and its parameters, for the closed forms.
    init_kind: tuple = field(default=("random",), repr=False, compare=False)

    name = "linear"
    state_names = ("W1", "W2")

    def __post_init__(self):
        set_ = object.__setattr__
        for n in ("in_dim", "hidden", "out_dim"):
            set_(self, n, check.positive_int(n, getattr(self, n)))
        set_(self, "eta1", check.positive("eta1", self.eta1))
        set_(self, "eta2", check.positive("eta2", self.eta2))
        set_(self, "scale1", check.nonnegative("scale1", self.scale1))
        set_(self, "scale2", check.nonnegative("scale2", self.scale2))
        set_(self, "seed", check.seed("seed", self.seed))
        syx = np.eye(self.out_dim, self.in_dim) if self.sigma_yx is None else self.sigma_yx
        set_(self, "sigma_yx", _matrix("sigma_yx", syx, (self.out_dim, self.in_dim)))
        if self.sigma_xx is not None:
            set_(self, "sigma_xx", _spd("sigma_xx", self.sigma_xx, self.in_dim))
        if self._init is not None:
            W1, W2 = self._init
            W1 = _matrix("W1", W1, (self.hidden, self.in_dim))
            W2 = _matrix("W2", W2, (self.out_dim, self.hidden))
            set_(self, "_init", (W1, W2))

    # ---- constructors -------------------------------------------------------------------
    @classmethod
    def from_init(cls, W1, W2, sigma_yx, sigma_xx=None, eta1=1.0, eta2=1.0, _kind=None):
        """A model with explicit initial weights ``W1`` (hidden × in), ``W2`` (out × hidden)."""
        W1 = _matrix("W1", W1)
        W2 = _matrix("W2", W2)
        if W2.shape[1] != W1.shape[0]:
            raise ValueError(f"W2 must have shape (out_dim, hidden) with hidden = W1.shape[0] "
                             f"= {W1.shape[0]}; got W2 of shape {W2.shape}")
        syx = _matrix("sigma_yx", sigma_yx)
        if syx.shape != (W2.shape[0], W1.shape[1]):
            raise ValueError(f"sigma_yx must have shape (out_dim, in_dim) = "
                             f"{(W2.shape[0], W1.shape[1])}, got {syx.shape}")
        return cls(in_dim=W1.shape[1], hidden=W1.shape[0], out_dim=W2.shape[0], sigma_yx=syx,
                   sigma_xx=sigma_xx, eta1=eta1, eta2=eta2, scale1=0.0, scale2=0.0, seed=None,
                   _init=(np.array(W1), np.array(W2)),
                   init_kind=("explicit",) if _kind is None else _kind)

    @classmethod
    def from_data(cls, X, Y, hidden, **kwargs):
        r"""A model trained on samples: rows of ``X`` (n × in) and ``Y`` (n × out).

        :math:`\Sigma_{xx} = X^\top X/n` (must be positive definite: n >= in_dim and full
        column rank) and :math:`\Sigma_{yx} = Y^\top X/n`; other arguments as for the
        constructor (``eta1``, ``eta2``, ``scale1``, ``scale2``, ``seed``).
        """
        X = _matrix("X", X)
        Y = _matrix("Y", Y)
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"X and Y must have the same number of rows (samples), got "
                             f"{X.shape[0]} and {Y.shape[0]}")
        n = X.shape[0]
        return cls(X.shape[1], hidden, Y.shape[1], sigma_yx=Y.T @ X / n, sigma_xx=X.T @ X / n,
                   **kwargs)

    @classmethod
    def decoupled(cls, sigma_yx, hidden=None, strengths=1e-3, b_strengths=None, eta1=1.0,
                  eta2=1.0, seed=0, frame=None):
        r"""SVD-aligned init: :math:`W_1 = R\,\mathrm{diag}(b)V^\top`,
        :math:`W_2 = U\,\mathrm{diag}(a)R^\top`.

        With :math:`\Sigma_{yx} = USV^\top` (whitened inputs) and :math:`R` a random
        orthogonal :math:`h\times r` frame (``seed``), each mode :math:`\alpha` is the
        width-1 case of MATH.md §1 with teacher :math:`s_\alpha` [SMG]:
        :math:`W_2W_1 = U\,\mathrm{diag}(a_\alpha b_\alpha)V^\top` for all :math:`t`.

        Parameters
        ----------
        strengths : float or array_like
            Per-mode :math:`a_\alpha` (the ``W2`` side), one per singular value
            (:math:`r = \min(n_{in}, n_{out}, h)` modes are used).
        b_strengths : float or array_like, optional
            Per-mode :math:`b_\alpha` (the ``W1`` side); default: balanced,
            :math:`b_\alpha = \sqrt{\eta_1/\eta_2}\,a_\alpha` (so :math:`C = 0`).
        frame : array_like, shape (hidden, r), optional
            The hidden frame :math:`R` (orthonormal columns); default random (``seed``).
            An exactly representable frame (e.g. ``np.eye(hidden, r)``) with a diagonal
            teacher makes the float64 init exactly decoupled, which high-precision
            comparisons need.
        """
        syx = _matrix("sigma_yx", sigma_yx)
        out_dim, in_dim = syx.shape
        hidden = min(out_dim, in_dim) if hidden is None else check.positive_int("hidden", hidden)
        r = min(out_dim, in_dim, hidden)
        U, s, Vt = np.linalg.svd(syx)
        a = _per_mode("strengths", strengths, r)
        b = np.sqrt(check.positive("eta1", eta1) / check.positive("eta2", eta2)) * a \
            if b_strengths is None else _per_mode("b_strengths", b_strengths, r)
        if frame is None:
            R = _orthonormal_frame(hidden, r, seed)
        else:
            R = _matrix("frame", frame, (hidden, r))
            if not np.allclose(R.T @ R, np.eye(r), atol=1e-12):
                raise ValueError("frame must have orthonormal columns (frame^T frame = I)")
        W1 = R @ (b[:, None] * Vt[:r])
        W2 = (U[:, :r] * a[None, :]) @ R.T
        return cls.from_init(W1, W2, syx, None, eta1, eta2,
                             _kind=("decoupled", U[:, :r], s[:r], Vt[:r], a, b, R))

    @classmethod
    def zero_balanced(cls, sigma_yx, hidden=None, scale=1e-2, eta1=1.0, eta2=1.0, seed=0):
        r"""Random init with :math:`W_1W_1^\top/\eta_1 = W_2^\top W_2/\eta_2` [B, T].

        :meth:`lambda_balanced` with :math:`\lambda = 0`: the rescaled layers
        :math:`B_1 = (\eta_2/\eta_1)^{1/4}W_1`, :math:`B_2 = (\eta_1/\eta_2)^{1/4}W_2` share
        their hidden singular frame and values (random, ``seed``); at most
        :math:`\min(h, n_{in}, n_{out})` of them are nonzero.
        """
        return cls.lambda_balanced(sigma_yx, 0.0, hidden=hidden, scale=scale, eta1=eta1,
                                   eta2=eta2, seed=seed)

    @classmethod
    def lambda_balanced(cls, sigma_yx, lam, hidden=None, scale=1e-2, eta1=1.0, eta2=1.0,
                        seed=0):
        r"""Random init with
        :math:`\sqrt{\eta_1\eta_2}\,(W_2^\top W_2/\eta_2 - W_1W_1^\top/\eta_1) = \lambda I` [T].

        Equivalently the conserved matrix is :math:`C = -\lambda I/\sqrt{\eta_1\eta_2}`.
        With :math:`B_1 = (\eta_2/\eta_1)^{1/4}W_1`, :math:`B_2 = (\eta_1/\eta_2)^{1/4}W_2`
        the condition reads :math:`B_2^\top B_2 - B_1B_1^\top = \lambda I_h`.

        The construction draws hidden eigenvalues :math:`c_i \ge \max(0, -\lambda)`
        (``scale`` times half-normal, ``seed``) and sets
        :math:`B_1 = O\,\mathrm{diag}(\sqrt{c})\,P_1^\top`,
        :math:`B_2 = P_2\,\mathrm{diag}(\sqrt{c + \lambda})\,O^\top` with random
        orthonormal frames (zero eigenvalues dropped).

        Raises
        ------
        ValueError
            When the constraint cannot be met: :math:`B_2^\top B_2 = B_1B_1^\top +
            \lambda I` has rank :math:`\le n_{out}` and :math:`B_1B_1^\top` rank
            :math:`\le n_{in}`; so :math:`\lambda > 0` needs :math:`h \le n_{out}`,
            :math:`\lambda < 0` needs :math:`h \le n_{in}`.
        """
        syx = _matrix("sigma_yx", sigma_yx)
        out_dim, in_dim = syx.shape
        lam = check.real("lam", lam)
        hidden = min(out_dim, in_dim) if hidden is None else check.positive_int("hidden", hidden)
        scale = check.positive("scale", scale)
        eta1, eta2 = check.positive("eta1", eta1), check.positive("eta2", eta2)
        if lam > 0 and hidden > out_dim:
            raise ValueError(f"lam = {lam} > 0 needs hidden <= out_dim (W2^T W2 = W1 W1^T + "
                             f"lam I must have full rank hidden = {hidden}, but rank W2 <= "
                             f"out_dim = {out_dim})")
        if lam < 0 and hidden > in_dim:
            raise ValueError(f"lam = {lam} < 0 needs hidden <= in_dim (W1 W1^T = W2^T W2 - "
                             f"lam I must have full rank hidden = {hidden}, but rank W1 <= "
                             f"in_dim = {in_dim})")
        rng = np.random.default_rng(seed)
        c = np.zeros(hidden)
        if lam >= 0:
            k = min(hidden, in_dim) if lam > 0 else min(hidden, in_dim, out_dim)
            c[:k] = scale * np.abs(rng.normal(size=k))
        else:
            k = min(hidden, out_dim)
            c[:] = -lam
            c[:k] += scale * np.abs(rng.normal(size=k))
        c2 = np.maximum(c + lam, 0.0)  # exact zeros where c = -lam
        c2[c + lam <= 0] = 0.0
        O = _orthonormal_frame(hidden, hidden, rng)
        i1, i2 = np.flatnonzero(c > 0), np.flatnonzero(c2 > 0)
        P1 = _orthonormal_frame(in_dim, i1.size, rng)
        P2 = _orthonormal_frame(out_dim, i2.size, rng)
        B1 = (O[:, i1] * np.sqrt(c[i1])[None, :]) @ P1.T
        B2 = P2 @ (np.sqrt(c2[i2])[:, None] * O[:, i2].T)
        W1 = (eta1 / eta2) ** 0.25 * B1
        W2 = (eta2 / eta1) ** 0.25 * B2
        kind = "zero_balanced" if lam == 0 else "lambda_balanced"
        return cls.from_init(W1, W2, syx, None, eta1, eta2, _kind=(kind, lam))

    # ---- state ----------------------------------------------------------------------------
    @property
    def explicit_init(self) -> bool:
        return self._init is not None

    def with_init_scaled(self, factor: float) -> LinearNet:
        """The same data and rates with the initial weights times ``factor`` (an explicit
        init, built with :meth:`from_init`)."""
        factor = check.real("factor", factor)
        init = self.initial_state()
        return LinearNet.from_init(factor * init["W1"], factor * init["W2"], self.sigma_yx,
                                   self.sigma_xx, self.eta1, self.eta2)

    @property
    def shapes(self) -> dict:
        return {"W1": (self.hidden, self.in_dim), "W2": (self.out_dim, self.hidden)}

    def initial_state(self) -> dict:
        """``{"W1": ..., "W2": ...}`` as float64 arrays (fresh copies)."""
        if self._init is not None:
            return {"W1": np.array(self._init[0]), "W2": np.array(self._init[1])}
        rng = np.random.default_rng(self.seed)
        W1 = _rng_init(rng, (self.hidden, self.in_dim), self.scale1)
        W2 = _rng_init(rng, (self.out_dim, self.hidden), self.scale2)
        return {"W1": W1, "W2": W2}

    def w_star(self) -> np.ndarray:
        r""":math:`W^* = \Sigma_{yx}\Sigma_{xx}^{-1}` (by a solve)."""
        return np.linalg.solve(self.sxx, np.asarray(self.sigma_yx).T).T

    def conserved(self, state: dict) -> np.ndarray:
        r"""The conserved matrix :math:`W_1W_1^\top/\eta_1 - W_2^\top W_2/\eta_2` (batched)."""
        W1, W2 = np.asarray(state["W1"]), np.asarray(state["W2"])
        return W1 @ np.swapaxes(W1, -1, -2) / self.eta1 - np.swapaxes(W2, -1, -2) @ W2 / self.eta2

    @property
    def params(self) -> dict:
        out = {"in_dim": self.in_dim, "hidden": self.hidden, "out_dim": self.out_dim,
               "sigma_yx": np.asarray(self.sigma_yx).tolist(),
               "sigma_xx": None if self.sigma_xx is None else np.asarray(self.sigma_xx).tolist(),
               "eta1": self.eta1, "eta2": self.eta2, "init": self.init_kind[0]}
        if self.explicit_init:
            out["W1"] = np.asarray(self._init[0]).tolist()
            out["W2"] = np.asarray(self._init[1]).tolist()
        else:
            out.update(scale1=self.scale1, scale2=self.scale2, seed=self.seed)
        return out

    def target_scale(self) -> float:
        """Typical entry size at the target: sqrt(||W*||_F / h)/dims."""
        ws = np.linalg.norm(self.w_star())
        return float(np.sqrt(ws / max(self.hidden, 1) / max(self.in_dim, self.out_dim)))

    def named_symbol_values(self) -> dict:
        """Hyperparameter values by the names of their symbols (no sympy needed)."""
        return {"Sigma_xx": self.sxx, "Sigma_yx": np.asarray(self.sigma_yx),
                "W_star": self.w_star(), "eta1": self.eta1, "eta2": self.eta2}

    def named_dims(self) -> dict:
        """The sizes by the names of their symbols (no sympy needed)."""
        return {"n_in": self.in_dim, "n_h": self.hidden, "n_out": self.out_dim}

    def symbol_values(self) -> dict:
        return _by_symbol(self.named_symbol_values())

    def dims(self) -> dict:
        return _by_symbol(self.named_dims())

    def symbolic_network(self) -> MatrixNetwork:
        return symbolic_network()


def _per_mode(name, value, r):
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.size == 1:
        arr = np.full(r, float(arr[0]))
    if arr.shape != (r,):
        raise ValueError(f"{name} must be a number or {r} numbers (one per mode), "
                         f"got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _orthonormal_frame(n, k, seed_or_rng):
    """An n × k matrix with orthonormal columns, Haar-random (``seed``)."""
    rng = seed_or_rng if isinstance(seed_or_rng, np.random.Generator) \
        else np.random.default_rng(seed_or_rng)
    if k == 0:
        return np.zeros((n, 0))
    q, r = np.linalg.qr(rng.normal(size=(n, k)))
    return q * np.sign(np.diag(r))[None, :]


def _by_symbol(named: dict) -> dict:
    """``named`` (symbol name -> value) keyed by the symbols of :func:`_hyper`."""
    by_name = {str(sym): sym for sym in _hyper().values()}
    return {by_name[name]: value for name, value in named.items()}


@cache
def _hyper() -> dict:
    """The hyperparameter and size symbols of :func:`symbolic_network` (``symbol_values``
    and ``dims`` use them without building the network), built on first use."""
    import sympy as sp

    n_in, n_h, n_out = sp.symbols("n_in n_h n_out", integer=True, positive=True)
    eta1, eta2 = sp.symbols("eta1 eta2", positive=True)
    return {"sigma_xx": sp.MatrixSymbol("Sigma_xx", n_in, n_in),
            "sigma_yx": sp.MatrixSymbol("Sigma_yx", n_out, n_in),
            "w_star": sp.MatrixSymbol("W_star", n_out, n_in), "eta1": eta1, "eta2": eta2,
            "n_in": n_in, "n_h": n_h, "n_out": n_out}


@cache
def symbolic_network() -> MatrixNetwork:
    r"""The symbolic two-layer linear network, in matrix form (sizes symbolic)."""
    import sympy as sp

    from ..symbolic.flow import DerivationStep
    from ..symbolic.matrix_flow import MatrixNetwork, is_zero_matrix, matrix_gradient

    hyper = _hyper()
    n_in, n_h, n_out = hyper["n_in"], hyper["n_h"], hyper["n_out"]
    W1 = sp.MatrixSymbol("W1", n_h, n_in)
    W2 = sp.MatrixSymbol("W2", n_out, n_h)
    sxx, syx, wstar = hyper["sigma_xx"], hyper["sigma_yx"], hyper["w_star"]
    eta1, eta2 = hyper["eta1"], hyper["eta2"]
    x = sp.MatrixSymbol("x", n_in, 1)
    W = W2 * W1
    loss = sp.Trace(W * sxx * W.T) / 2 - sp.Trace(W * syx.T)
    # Loss minus its infimum: equal to ``loss`` up to a constant when W* Sigma_xx = Sigma_yx.
    excess = sp.Trace((W - wstar) * sxx * (W - wstar).T) / 2
    same = all(is_zero_matrix(
        matrix_gradient(excess, X, (sxx,)).xreplace({wstar: syx * sp.Inverse(sxx)}).doit()
        - matrix_gradient(loss, X, (sxx,))) for X in (W1, W2))
    steps = (
        DerivationStep("Network", sp.Eq(sp.Symbol("f(x)"), W * x, evaluate=False),
                       "Two linear layers, W1 (hidden x in), W2 (out x hidden)."),
        DerivationStep("Expected loss", sp.Eq(sp.Symbol("L"), loss, evaluate=False),
                       "E[x x^T] = Sigma_xx, E[y x^T] = Sigma_yx; E|y|^2/2 does not depend on "
                       "the parameters and is dropped."),
        DerivationStep("Excess loss", sp.Eq(sp.Symbol("L - L_*"), excess, evaluate=False),
                       "With W* = Sigma_yx Sigma_xx^{-1} the two losses differ by a constant: "
                       "their gradients in W1 and W2 agree.", proven=same),
    )
    observables = {"end_to_end": W, "loss": excess}
    return MatrixNetwork(
        name="linear", params=(W1, W2), rates={W1: eta1, W2: eta2},
        hyper={"sigma_xx": sxx, "sigma_yx": syx, "w_star": wstar, "eta1": eta1,
               "eta2": eta2, "n_in": n_in, "n_h": n_h, "n_out": n_out},
        forward=W * x, loss=loss, loss_steps=steps, symmetric=(sxx,),
        conserved={"C": W1 * W1.T / eta1 - W2.T * W2 / eta2},
        observables=observables, citation=CITATION)


def _psd(name, value, n):
    arr = _matrix(name, value, (n, n))
    if not np.allclose(arr, arr.T, rtol=1e-12, atol=1e-14 * max(1.0, np.abs(arr).max())):
        raise ValueError(f"{name} must be symmetric (a second-moment matrix)")
    arr = np.array((arr + arr.T) / 2)
    ev = np.linalg.eigvalsh(arr)
    if ev.min() < -1e-12 * max(1.0, ev.max()) or ev.max() <= 0:
        raise ValueError(f"{name} must be positive semi-definite and nonzero; its eigenvalues "
                         f"range over [{ev.min():.3g}, {ev.max():.3g}]")
    arr.setflags(write=False)
    return arr


def _balanced_a0(delta, product, eta_a, eta_w):
    r"""Root :math:`a_0 > 0` of :math:`\eta_w a^4 - \delta a^2 - \eta_a\mu_0^2 = 0`,
    computed without cancellation for either sign of :math:`\delta`."""
    root = np.hypot(delta, 2.0 * np.sqrt(eta_a * eta_w) * product)
    a2 = (delta + root) / (2 * eta_w) if delta >= 0 else 2 * eta_a * product**2 / (root - delta)
    return float(np.sqrt(a2))


@dataclass(frozen=True)
class SingleNeuron(_InputMoments):
    r"""Kunin et al.'s single neuron :math:`f(x) = a\,w^\top x` [K] (MATH.md §2).

    The two-layer linear network with hidden width 1 and one output: ``W1`` is
    :math:`w^\top` (1 × ``in_dim``), ``W2`` is :math:`a` (1 × 1), rates
    :math:`\eta_w = \eta_1`, :math:`\eta_a = \eta_2`. The conserved imbalance

    .. math:: \delta = \eta_w a^2 - \eta_a\lVert w\rVert^2

    is the hyperparameter: :math:`\delta \to +\infty` lazy, :math:`\delta\to-\infty`
    rescaling, :math:`\delta\approx 0` rich.

    Parameters
    ----------
    in_dim : int
        Input dimension :math:`n \ge 1`.
    delta : float
        The imbalance :math:`\delta` (any real).
    beta : array_like, shape (in_dim,), optional
        Teacher :math:`\beta^*` (data :math:`y = \beta^{*\top}x`, so
        :math:`\Sigma_{yx} = \beta^{*\top}\Sigma_{xx}`); default :math:`e_1`.
    sigma_xx : array_like, optional
        :math:`\Sigma_{xx}`, symmetric positive semi-definite (low rank allowed: the
        implicit-bias setting); default :math:`I`.
    eta_a, eta_w : float
        Learning rates (> 0).
    product : float
        Initial magnitude :math:`\mu_0 = a_0\lVert w_0\rVert > 0`; with :math:`\delta` it
        fixes :math:`a_0 > 0` and :math:`\lVert w_0\rVert`.
    seed : int or None
        Seed of the random direction of :math:`w_0`.
    """

    in_dim: int = 2
    delta: float = 0.0
    beta: object = None
    sigma_xx: object = None
    eta_a: float = 1.0
    eta_w: float = 1.0
    product: float = 1e-2
    seed: int | None = 0
    _init: tuple | None = field(default=None, repr=False, compare=False)

    name = "single_neuron"
    state_names = ("W1", "W2")
    extra_observable_names = ("a", "w", "nu", "mu", "phi")

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "in_dim", check.positive_int("in_dim", self.in_dim))
        set_(self, "eta_a", check.positive("eta_a", self.eta_a))
        set_(self, "eta_w", check.positive("eta_w", self.eta_w))
        set_(self, "product", check.positive("product", self.product))
        set_(self, "seed", check.seed("seed", self.seed))
        beta = np.eye(self.in_dim)[0] if self.beta is None else self.beta
        beta = check.finite_vector("beta", beta)
        if beta.size != self.in_dim:
            raise ValueError(f"beta must have in_dim = {self.in_dim} entries, got {beta.size}")
        beta.setflags(write=False)
        set_(self, "beta", beta)
        if self.sigma_xx is not None:
            set_(self, "sigma_xx", _psd("sigma_xx", self.sigma_xx, self.in_dim))
        if self._init is not None:
            a0, w0 = self._init
            a0 = check.real("a0", a0)
            w0 = check.finite_vector("w0", w0)
            if w0.size != self.in_dim:
                raise ValueError(f"w0 must have in_dim = {self.in_dim} entries, got {w0.size}")
            w0.setflags(write=False)
            set_(self, "_init", (a0, w0))
            set_(self, "delta", float(self.eta_w * a0**2 - self.eta_a * w0 @ w0))
        else:
            set_(self, "delta", check.real("delta", self.delta))

    @classmethod
    def from_init(cls, a0, w0, beta=None, sigma_xx=None, eta_a=1.0, eta_w=1.0):
        """Explicit init :math:`a_0`, :math:`w_0` (then :math:`\\delta` follows from them)."""
        w0 = check.finite_vector("w0", w0)
        return cls(in_dim=w0.size, delta=0.0, beta=beta, sigma_xx=sigma_xx, eta_a=eta_a,
                   eta_w=eta_w, seed=None, _init=(a0, np.array(w0)))

    def init_aw(self):
        """``(a0, w0)``."""
        if self._init is not None:
            return self._init[0], np.array(self._init[1])
        rng = np.random.default_rng(self.seed)
        d = rng.normal(size=self.in_dim)
        d /= np.linalg.norm(d)
        a0 = _balanced_a0(self.delta, self.product, self.eta_a, self.eta_w)
        return a0, d * (self.product / a0)

    def with_init_scaled(self, factor: float) -> SingleNeuron:
        """The same data and rates with :math:`a_0, w_0` times ``factor`` (an explicit init,
        built with :meth:`from_init`; :math:`\\delta` scales by the square of ``factor``)."""
        factor = check.real("factor", factor)
        a0, w0 = self.init_aw()
        return SingleNeuron.from_init(factor * a0, factor * w0, self.beta, self.sigma_xx,
                                      self.eta_a, self.eta_w)

    @property
    def shapes(self) -> dict:
        return {"W1": (1, self.in_dim), "W2": (1, 1)}

    def initial_state(self) -> dict:
        a0, w0 = self.init_aw()
        return {"W1": w0[None, :].astype(float), "W2": np.array([[a0]], dtype=float)}

    @property
    def sigma_yx(self) -> np.ndarray:
        return (self.sxx @ self.beta)[None, :]

    def w_star(self) -> np.ndarray:
        r""":math:`\beta_{OLS}^\top = (\Sigma_{xx}^+\Sigma_{xx}\beta^*)^\top`, the
        minimum-norm interpolator (= :math:`\beta^{*\top}` for full-rank data)."""
        return (np.linalg.pinv(self.sxx, hermitian=True) @ (self.sxx @ self.beta))[None, :]

    eta1 = property(lambda self: self.eta_w)
    eta2 = property(lambda self: self.eta_a)
    hidden = 1
    out_dim = 1

    def conserved(self, state: dict) -> np.ndarray:
        W1, W2 = np.asarray(state["W1"]), np.asarray(state["W2"])
        return W1 @ np.swapaxes(W1, -1, -2) / self.eta_w - np.swapaxes(W2, -1, -2) @ W2 / self.eta_a

    @property
    def params(self) -> dict:
        out = {"in_dim": self.in_dim, "delta": self.delta, "beta": self.beta.tolist(),
               "sigma_xx": None if self.sigma_xx is None else np.asarray(self.sigma_xx).tolist(),
               "eta_a": self.eta_a, "eta_w": self.eta_w}
        if self._init is not None:
            out.update(a0=self._init[0], w0=self._init[1].tolist())
        else:
            out.update(product=self.product, seed=self.seed)
        return out

    def target_scale(self) -> float:
        return float(np.sqrt(np.linalg.norm(self.w_star())))

    def named_symbol_values(self) -> dict:
        """Hyperparameter values by the names of their symbols (no sympy needed)."""
        return {"Sigma_xx": self.sxx, "Sigma_yx": self.sigma_yx, "W_star": self.w_star(),
                "eta1": self.eta_w, "eta2": self.eta_a}

    def named_dims(self) -> dict:
        """The sizes by the names of their symbols (no sympy needed)."""
        return {"n_in": self.in_dim, "n_h": 1, "n_out": 1}

    def symbol_values(self) -> dict:
        return _by_symbol(self.named_symbol_values())

    def dims(self) -> dict:
        return _by_symbol(self.named_dims())

    def symbolic_network(self) -> MatrixNetwork:
        return symbolic_network()

    def extra_observables(self, states: dict, obs: dict) -> dict:
        r""":math:`a`, :math:`w`, :math:`\nu = w\cdot\beta^*/a`, :math:`\mu = a\lVert w\rVert`,
        :math:`\phi = \cos\angle(w, \beta^*)` (NaN where undefined)."""
        W1, W2 = np.asarray(states["W1"]), np.asarray(states["W2"])
        a = W2[..., 0, 0]
        w = W1[..., 0, :]
        beta = self.beta.astype(object) if a.dtype == object else self.beta
        wb = (w * beta).sum(axis=-1)
        nw = np.sqrt((w * w).sum(axis=-1).astype(float)) if a.dtype != object else \
            _mp_sqrt((w * w).sum(axis=-1), a.shape)
        nb = float(np.linalg.norm(self.beta))
        return {"a": a.copy(), "w": w.copy(), "nu": _safe_div(wb, a), "mu": a * nw,
                "phi": _safe_div(wb, nw * nb)}


def _mp_sqrt(x, shape):
    import mpmath  # object arrays (mpf entries) only: a float64 run never imports it

    return np.array([mpmath.sqrt(v) for v in np.atleast_1d(x)], dtype=object).reshape(shape)


def _safe_div(x, y):
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype != object and y.dtype != object:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(y != 0, x / np.where(y != 0, y, 1), np.nan)
    import mpmath  # object arrays (mpf entries) only

    out = np.empty(np.broadcast(x, y).shape, dtype=object)
    for i in np.ndindex(out.shape):
        out[i] = x[i] / y[i] if y[i] != 0 else mpmath.nan
    return out
