r"""Two-layer convolutional networks with small initialization (MATH.md §5).

.. math::

    x^{[1]}_{u,v,\beta} = \sum_{p,q,c} W_{p,q,c,\beta}\,x_{u+p,\,v+q,\,c},\qquad
    f(x) = \frac1\alpha\sum_{u,v,\beta} a_{u,v,\beta}\,\sigma\big(x^{[1]}_{u,v,\beta}\big),
    \qquad L = \frac1{2n}\sum_{i=1}^n\big(f(x_i) - y_i\big)^2,

with M kernels :math:`W_{\cdot,\cdot,\cdot,\beta}` of size :math:`s\times s\times C`,
stride 1, ``valid`` or ``same`` (zero) padding, and one readout weight per output
position and channel. MATH.md's form is :math:`\alpha = 1` (the default). Zhou, Zhou,
Li, Xu, "Understanding the initial condensation of convolutional neural networks"
(arXiv:2305.09947).
"""

from __future__ import annotations

import numpy as np

from .. import _validation as check
from .activations import activation as make_activation
from .base import FrozenAfterInit, KinkedPreactivation, ModelMixin

INITS = ("gaussian", "balanced", "mirrored")
PADDINGS = ("valid", "same")


def _images(images, channels_first: bool) -> np.ndarray:
    """Images as a finite float64 array N × H × W × C (channels last)."""
    if not isinstance(channels_first, bool):
        raise ValueError(f"channels_first must be True or False, got {check.show(channels_first)}")
    try:
        arr = np.array(images, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("images must be an array of real numbers (N × H × W × C)") from None
    if arr.ndim == 3:  # one channel
        arr = arr[:, None] if channels_first else arr[..., None]
    if arr.ndim != 4:
        layout = "N × C × H × W" if channels_first else "N × H × W × C"
        raise ValueError(f"images must be a rank-4 array {layout} (or N × H × W for one "
                         f"channel); got rank {arr.ndim}, shape {arr.shape}")
    if channels_first:
        arr = arr.transpose(0, 2, 3, 1)
    if arr.size == 0:
        raise ValueError(f"images must not be empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("images must be finite (they have NaN or infinite entries)")
    return np.ascontiguousarray(arr)


def _labels(y, n: int) -> np.ndarray:
    try:
        ya = np.array(y, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"y must be a 1-D array of real targets, got {check.show(y)}") from None
    if ya.ndim != 1:
        raise ValueError(f"y must be a 1-D array of targets, got shape {ya.shape}")
    if ya.shape[0] != n:
        raise ValueError(f"y must have one target per image; got {ya.shape[0]} targets for "
                         f"{n} images")
    if not np.all(np.isfinite(ya)):
        raise ValueError("y must be finite (it has NaN or infinite entries)")
    return ya


def pad_images(images: np.ndarray, kernel_size: int, padding: str) -> np.ndarray:
    """Zero padding of N × H × W × C images: none (``valid``) or ``same`` (output size =
    input size at stride 1; ⌊(s−1)/2⌋ before, the rest after, as TensorFlow and PyTorch)."""
    if padding == "valid":
        return images
    before = (kernel_size - 1) // 2
    after = kernel_size - 1 - before
    return np.pad(images, ((0, 0), (before, after), (before, after), (0, 0)))


def extract_patches(images: np.ndarray, kernel_size: int, padding: str = "valid") -> np.ndarray:
    r"""Patches :math:`X_{ikl} = x_{i,\,u+p,\,v+q,\,c}`, shape n × P × D.

    Position :math:`k = uW' + v` (row-major over the H' × W' outputs), patch entry
    :math:`l = (pS + q)C + c` (row-major over s × s × C, the layout of a kernel
    ``W[p, q, c, beta]``). A strided view (:func:`numpy.lib.stride_tricks.sliding_window_view`),
    copied once into a contiguous array; no Python loop over positions.
    """
    s = kernel_size
    x = pad_images(images, s, padding)
    view = np.lib.stride_tricks.sliding_window_view(x, (s, s), axis=(1, 2))
    # view: n × H' × W' × C × s × s  ->  n × H' × W' × s × s × C
    n, hp, wp = view.shape[:3]
    return np.ascontiguousarray(view.transpose(0, 1, 2, 4, 5, 3)).reshape(n, hp * wp, -1)


def initial_weights(scheme, kernel_size, in_channels, channels, out_hw, scale, seed):
    r"""``(W, a)`` for an init scheme, W: s × s × C × M, a: H' × W' × M.

    ``gaussian``: every entry of W and a i.i.d. :math:`N(0, \text{scale}^2)`.
    ``balanced``: W Gaussian, each readout map :math:`a_{\cdot\beta}` a Gaussian
    direction rescaled to :math:`\|a_{\cdot\beta}\| = \|W_{\cdot\beta}\|` (zero
    per-channel balance, conserved for 1-homogeneous σ). ``mirrored``: channels
    :math:`M/2..M-1` copy the kernels of :math:`0..M/2-1` with negated readout, so
    :math:`f \equiv 0` at t = 0 (M even). The analogues of :class:`~exactdyn.TwoLayer`'s
    schemes.
    """
    check.choice("init", scheme, INITS)
    rng = np.random.default_rng(seed)
    s, C, M = kernel_size, in_channels, channels
    hp, wp = out_hw
    if scheme == "mirrored":
        if M % 2:
            raise ValueError(f"channels must be even for init='mirrored', got {M}")
        W = rng.normal(0.0, scale, (s, s, C, M // 2))
        a = rng.normal(0.0, scale, (hp, wp, M // 2))
        return np.concatenate([W, W], axis=3), np.concatenate([a, -a], axis=2)
    W = rng.normal(0.0, scale, (s, s, C, M))
    a = rng.normal(0.0, scale, (hp, wp, M))
    if scheme == "balanced":
        na = np.sqrt(np.sum(a**2, axis=(0, 1)))
        nw = np.sqrt(np.sum(W**2, axis=(0, 1, 2)))
        a = a * (nw / na)[None, None, :]
    return W, a


class TwoLayerCNN(FrozenAfterInit, ModelMixin):
    r"""A two-layer CNN :math:`f(x) = \frac1\alpha\sum_{u,v,\beta}a_{uv\beta}
    \sigma(\sum_{p,q,c}W_{pqc\beta}x_{u+p,v+q,c})` on images, trained by gradient flow on
    :math:`L = \frac1{2n}\sum_i(f(x_i)-y_i)^2` (MATH.md §5; Zhou, Zhou, Li, Xu,
    arXiv:2305.09947).

    Parameters
    ----------
    channels : int
        Number of kernels (output channels) M >= 1.
    kernel_size : int
        Kernel side s >= 1 (square kernels, stride 1); at most the image's height and width.
    images : array_like
        N × H × W × C (or N × C × H × W with ``channels_first``; N × H × W for one channel).
    y : array_like, shape (N,)
        Targets.
    activation : str
        A name of :data:`exactdyn.models.activations.NAMES` or a whitelisted expression in
        ``x``. For activations with a kink at 0 (relu, leaky_relu) :func:`exactdyn.solve`
        locates the activation-pattern changes (:func:`exactdyn.numeric.cnn.solve_cnn`).
    scale : float
        Init standard deviation of every weight (> 0).
    seed : int
        Seed of the init.
    channels_first : bool
        ``images`` are N × C × H × W.
    padding : str
        ``valid`` (H' = H − s + 1) or ``same`` (H' = H, zero padding).
    init : str
        ``gaussian``, ``balanced`` or ``mirrored`` (:func:`initial_weights`).
    alpha : float
        Output scale α > 0 (MATH.md: α = 1).
    """

    name = "cnn"
    #: CLI options that rebuild ``images`` and ``y`` (``exactdyn report cnn`` records them
    #: in a report's command); ``None`` for arrays given from Python.
    data_args = None

    def with_data_args(self, data_args) -> TwoLayerCNN:
        """A copy that records the command-line options that built its data (for a report's
        regeneration command); the model is otherwise the same object's state."""
        import copy

        twin = copy.copy(self)
        object.__setattr__(twin, "data_args", list(data_args))
        return twin

    def __init__(self, channels, kernel_size, images, y, activation="tanh", scale=1e-3,
                 seed=0, channels_first=False, padding="valid", init="gaussian", alpha=1.0):
        self._setup(kernel_size, images, y, activation, channels_first, padding, alpha)
        self.channels = check.positive_int("channels", channels)
        self.scale = check.positive("scale", scale)
        self.init = check.choice("init", init, INITS)
        self.seed = check.seed("seed", seed)
        self.W0, self.a0 = initial_weights(init, self.kernel_size, self.in_channels,
                                           self.channels, self.out_shape, self.scale, self.seed)
        self._freeze()

    @classmethod
    def from_init(cls, W, a, images, y, activation="tanh", channels_first=False,
                  padding="valid", alpha=1.0) -> TwoLayerCNN:
        """A CNN with explicit initial kernels ``W`` (s × s × C × M) and readout ``a``
        (H' × W' × M)."""
        try:
            W = np.array(W, dtype=float)
        except (TypeError, ValueError):
            raise ValueError("W must be an s × s × C × M array of real numbers") from None
        if W.ndim != 4 or W.shape[0] != W.shape[1] or W.size == 0:
            raise ValueError(f"W must be an s × s × C × M array (square kernels), got shape "
                             f"{W.shape}")
        self = cls.__new__(cls)
        self._setup(W.shape[0], images, y, activation, channels_first, padding, alpha)
        if W.shape[2] != self.in_channels:
            raise ValueError(f"W must have C = {self.in_channels} input channels (the images'), "
                             f"got shape {W.shape}")
        if not np.all(np.isfinite(W)):
            raise ValueError("W must be finite")
        try:
            a = np.array(a, dtype=float)
        except (TypeError, ValueError):
            raise ValueError("a must be an H' × W' × M array of real numbers") from None
        want = (*self.out_shape, W.shape[3])
        if a.shape != want:
            raise ValueError(f"a must have shape H' × W' × M = {want} (padding "
                             f"{self.padding!r}); got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError("a must be finite")
        self.channels = W.shape[3]
        self.scale, self.init, self.seed = None, "explicit", None
        self.W0, self.a0 = W, a
        self._freeze()
        return self

    def _setup(self, kernel_size, images, y, activation, channels_first, padding, alpha):
        self.kernel_size = check.positive_int("kernel_size", kernel_size)
        self.act = make_activation(activation)
        self.images = _images(images, channels_first)
        self.y = _labels(y, self.images.shape[0])
        self.padding = check.choice("padding", padding, PADDINGS)
        self.alpha = check.positive("alpha", alpha)
        _n, H, Wd, _C = self.images.shape
        if self.kernel_size > min(H, Wd):
            raise ValueError(f"kernel_size must be at most the image size {H} × {Wd}; got "
                             f"{self.kernel_size}")
        self.patches = extract_patches(self.images, self.kernel_size, self.padding)
        self.patches.setflags(write=False)

    # ---- description -------------------------------------------------------------------
    @property
    def n(self) -> int:
        return self.images.shape[0]

    @property
    def in_channels(self) -> int:
        return self.images.shape[3]

    @property
    def image_shape(self) -> tuple:
        return self.images.shape[1:3]

    @property
    def out_shape(self) -> tuple:
        """(H', W'): the output positions."""
        H, Wd = self.image_shape
        if self.padding == "same":
            return (H, Wd)
        return (H - self.kernel_size + 1, Wd - self.kernel_size + 1)

    @property
    def positions(self) -> int:
        """P = H'W'."""
        return self.out_shape[0] * self.out_shape[1]

    @property
    def patch_dim(self) -> int:
        """D = s²C."""
        return self.kernel_size**2 * self.in_channels

    @property
    def activation(self) -> str:
        return self.act.name

    @property
    def multiplicity(self) -> int:
        return self.act.multiplicity

    @property
    def params(self) -> dict:
        return {"channels": self.channels, "kernel_size": self.kernel_size, "n": self.n,
                "image_shape": list(self.image_shape), "in_channels": self.in_channels,
                "padding": self.padding, "activation": self.act.name, "alpha": self.alpha,
                "scale": self.scale, "init": self.init, "seed": self.seed}

    def __repr__(self) -> str:
        H, Wd = self.image_shape
        return (f"TwoLayerCNN(channels={self.channels}, kernel_size={self.kernel_size}, "
                f"images={self.n}×{H}×{Wd}×{self.in_channels}, "
                f"activation={self.act.name!r}, padding={self.padding!r}, "
                f"scale={self.scale!r}, init={self.init!r})")

    def values(self) -> dict:
        """The output scale and the axis sizes (kernels, kernel size, images)."""
        return {"alpha": self.alpha, "channels": self.channels,
                "kernel_size": self.kernel_size, "n": int(self.images.shape[0])}

    def with_init_scaled(self, factor: float) -> TwoLayerCNN:
        """The same network (images, activation, padding, α) with its initial state times
        ``factor``, built with :meth:`from_init`."""
        factor = check.real("factor", factor)
        return type(self).from_init(factor * self.W0, factor * self.a0, self.images, self.y,
                                    activation=self.act, padding=self.padding,
                                    alpha=self.alpha)

    def initial_state(self) -> dict:
        return {"W": self.W0.copy(), "a": self.a0.copy()}

    def target_scale(self) -> float:
        return float(np.sqrt(np.mean(self.y**2)))

    def kinked_preactivation(self) -> KinkedPreactivation:
        r""":math:`h_{ik\beta} = W_{\cdot\beta}\cdot X_{ik}`: the kernels β are the units
        (the columns of the D × M kernel matrix), the (sample, position) pairs the entries,
        with the patches as inputs."""
        return KinkedPreactivation(
            activation=self.act, weights="W", weights_matrix=(self.patch_dim, self.channels),
            units_axis=1, readout="a", readout_matrix=(self.positions, self.channels),
            inputs=self.patches, targets=self.y, alpha=self.alpha,
            preactivation_axes=("sample", "position", "unit"))

    def conservation_proven(self) -> bool:
        r""":math:`\sum_{uv}a_{uv\beta}^2 - \|W_{\cdot\beta}\|^2` conserved per channel,
        proven from the derived flow (sympy); True iff σ is positively 1-homogeneous."""
        import sympy as sp  # the proof only: building a network needs no sympy

        from ..symbolic.cnn import prove_channel_balance
        from .activations import X as XSYM

        key = sp.srepr(self.act.expr)
        if key not in _PROOFS:
            _PROOFS[key] = prove_channel_balance(self.act.expr, XSYM)
        return _PROOFS[key]

    # ---- numerics -----------------------------------------------------------------------
    def derive_flow(self):
        """The symbolic flow (:func:`exactdyn.symbolic.cnn.derive_cnn_flow`)."""
        from ..symbolic.cnn import derive_cnn_flow

        return derive_cnn_flow()



_PROOFS: dict = {}

__all__ = ["INITS", "PADDINGS", "TwoLayerCNN", "extract_patches", "initial_weights"]
