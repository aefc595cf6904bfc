r"""Small data sets with known answers for the two-layer network (MATH.md §4).

:func:`boursier_flammarion_data` is the failure case of early alignment of Boursier &
Flammarion, "Early alignment in two-layer networks training is a two-edged sword"
(arXiv:2401.10791, 2024), their Assumption 3 family: three points near
:math:`(-1, 1), (0, 1), (1, 1)` (input, bias) with labels :math:`\approx 1, \approx 0^+,
\approx 1`; its two-neuron exact fit (:func:`v_shape_weights`) is derived in its
docstring. :func:`boursier_flammarion_instance` is the paper's worked three-point instance
(their Section 5 and the ``3 points`` data of their code, github.com/eboursier/early_alignment).

Images for the two-layer CNN (MATH.md §5; Zhou, Zhou, Li, Xu, "Understanding the initial
condensation of convolutional neural networks", arXiv:2305.09947): :func:`digits` (the
8 × 8 handwritten digits bundled with scikit-learn, an optional extra), and the
constructed :func:`synthetic_images` (one clearly dominant singular value of the
label-weighted patch matrix Z) and :func:`tie_images` (an exact tie
:math:`s_1 = s_2`). All images are channels last, N × H × W × C, labels ±1.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _validation as check


def boursier_flammarion_data(eta: float = 0.1, eps: float = 0.0):
    r"""Three points where early alignment makes gradient flow stop at the linear fit.

    .. math::

        x = (-1,\ \varepsilon,\ 1),\qquad y = (1,\ \eta,\ 1),

    to be used with ``bias=True`` (:class:`~exactdyn.TwoLayer` appends the column of ones,
    so the inputs are :math:`\tilde x_i = (x_i, 1)`, near :math:`(-1,1), (0,1), (1,1)`).
    The middle input lies in the cone of the two others, and at small init the only
    extremal direction with a positive growth rate is
    :math:`D = \frac13\sum_i y_i\tilde x_i \propto (\varepsilon\eta, 2+\eta)`, which
    activates all three points: every neuron that survives the early phase is active on
    every point, the network is linear on the data and converges to the least-squares fit
    of y on :math:`[x, 1]` (for :math:`\varepsilon = 0`: :math:`f \equiv (2+\eta)/3`,
    loss :math:`(1-\eta)^2/9`), a spurious stationary point, while two ReLU neurons fit
    exactly (:func:`v_shape_weights`). Boursier & Flammarion (arXiv:2401.10791),
    Assumption 3: for some η > 0, :math:`x_1 \in (-1, -1+\eta] \times [1, 1+\eta]`,
    :math:`y_1 \in [1, 1+\eta]`; :math:`x_2 \in [-\eta, \eta] \times [1-\eta, 1+\eta]`,
    :math:`y_2 \in (0, \eta]`; :math:`x_3 \in [1-\eta, 1) \times [1, 1+\eta]`,
    :math:`y_3 \in [1, 1+\eta]` (their theorem takes η < 1/6). The points returned here
    (bias exactly 1, outer labels exactly 1, outer inputs at ∓1, the middle point moved by
    ε) lie on the closure of that family (the outer inputs are its open ends); this member
    is exactdyn's choice, kept because its least-squares fit and V have closed forms.

    Parameters
    ----------
    eta : float
        Middle label, 0 < η < 1.
    eps : float
        Position of the middle point, :math:`|\varepsilon| < 1/2`.

    Returns
    -------
    X : ndarray, shape (3, 1)
    y : ndarray, shape (3,)
    """
    eta = check.real("eta", eta)
    if not 0.0 < eta < 1.0:
        raise ValueError(f"eta must be in (0, 1), got {check.show(eta)}")
    eps = check.real("eps", eps)
    if not abs(eps) < 0.5:
        raise ValueError(f"eps must satisfy |eps| < 1/2, got {check.show(eps)}")
    return np.array([[-1.0], [eps], [1.0]]), np.array([1.0, eta, 1.0])


def boursier_flammarion_instance():
    r"""The worked three-point instance of Boursier & Flammarion (arXiv:2401.10791, §5).

    .. math::

        x = (-0.75,\ -0.5,\ 0.125),\qquad y = (1.1,\ 0.1,\ 0.8),

    to be used with ``bias=True``. All three inputs :math:`(x_i, 1)` are positively
    correlated, the labels are positive and the middle point lies below the least-squares
    line, so (as the paper shows numerically; it is not in their Assumption 3 family) a
    small balanced init aligns every neuron on the all-active direction and gradient flow
    ends on the least-squares fit with positive loss, while ReLU neurons with kinks
    between the points fit exactly. Taken from the ``3 points`` data of the authors' code
    (``early_alignment.py``, formerly ``no_convergence.py``,
    github.com/eboursier/early_alignment), which trains width
    20000 from a balanced init of scale λ/√m, λ = 1e-3.

    Returns
    -------
    X : ndarray, shape (3, 1)
    y : ndarray, shape (3,)
    """
    return np.array([[-0.75], [-0.5], [0.125]]), np.array([1.1, 0.1, 0.8])


def v_shape_weights(eta: float = 0.1, eps: float = 0.0):
    r"""Two ReLU neurons (with bias) that fit :func:`boursier_flammarion_data` exactly.

    .. math::

        f(x) = k_1\,\mathrm{relu}(c_1 - x) + k_2\,\mathrm{relu}(x - c_2),\qquad
        c_{1,2} = \varepsilon \pm \delta,

    with :math:`k_1 = 1/(1+\varepsilon+\delta)` (so :math:`f(-1) = 1`),
    :math:`k_2 = 1/(1-\varepsilon+\delta)` (:math:`f(1) = 1`), and δ the positive root of
    :math:`\delta(k_1+k_2) = \eta` (:math:`f(\varepsilon) = \eta`), i.e. of
    :math:`(2-\eta)\delta^2 + 2(1-\eta)\delta - \eta(1-\varepsilon^2) = 0`.
    The kinks must lie in (−1, 1) (:math:`\delta < 1 - |\varepsilon|`, true for
    η ≤ 1/2, |ε| ≤ 0.3), else ValueError.
    Returned balanced (:math:`a_k = \|w_k\|`), as ``(a, W)`` with ``W`` rows
    :math:`(w_k, b_k)` for :meth:`exactdyn.TwoLayer.from_init` (``alpha=1``).
    """
    eta = check.real("eta", eta)
    eps = check.real("eps", eps)
    boursier_flammarion_data(eta, eps)  # validates
    A, B, C = 2.0 - eta, 2.0 * (1.0 - eta), -eta * (1.0 - eps**2)
    delta = 2.0 * (-C) / (B + math.sqrt(B * B - 4.0 * A * C))  # stable positive root
    if delta >= 1.0 - abs(eps):
        raise ValueError(f"eta={eta!r}, eps={eps!r}: the V's kinks eps +- delta (delta = "
                         f"{delta:.3g}) leave (-1, 1), so this construction does not fit; "
                         "take eta smaller (the family's middle label is small)")
    k1, k2 = 1.0 / (1.0 + eps + delta), 1.0 / (1.0 - eps + delta)
    c1, c2 = eps + delta, eps - delta
    W = np.array([[-k1, k1 * c1], [k2, -k2 * c2]])
    s = np.sqrt(np.linalg.norm(W, axis=1))  # a_k = s_k, w_k / s_k: |a_k| = ||w_k / s_k||
    return s, W / s[:, None]


def least_squares_loss(X, y) -> float:
    r"""Loss :math:`\frac1{2n}\|y - [X, 1]\beta^*\|^2` of the least-squares affine fit."""
    X = np.asarray(X, dtype=float).reshape(len(y), -1)
    A = np.hstack([X, np.ones((X.shape[0], 1))])
    beta = np.linalg.lstsq(A, y, rcond=None)[0]
    r = y - A @ beta
    return float(r @ r / (2 * len(y)))




def _n_images(n, even: bool = False) -> int:
    n = check.positive_int("n", n)
    if n < 2 or (even and n % 2):
        raise ValueError(f"n must be an {'even ' if even else ''}integer >= 2 (both labels "
                         f"present{', in pairs' if even else ''}), got {check.show(n)}")
    return n


def digits(classes=(0, 1), n=None, seed=0, normalize: bool = True):
    r"""Two classes of scikit-learn's bundled 8 × 8 handwritten digits, labels ±1.

    The 1797 images of ``sklearn.datasets.load_digits`` (UCI optical digits, pixel values
    0…16) ship inside scikit-learn, so nothing is downloaded. Images of ``classes[0]``
    get :math:`y = +1`, those of ``classes[1]`` get :math:`y = -1`.

    Normalization (``normalize=True``): :math:`x \mapsto x/16 - \bar x` with
    :math:`\bar x` the per-pixel mean over the returned images. The scale 1/16 puts pixels
    in [0, 1], so the singular values :math:`s_i` of the label-weighted patch matrix
    :math:`Z = [z_{uv}]`, :math:`z_{uv} = \frac1n\sum_i y_i P_{uv}(x_i)` (MATH.md §5),
    and with them the condensation rate and the onset time
    :math:`\sim\log(1/\text{scale})/s_1`, are O(1). Centering makes
    :math:`z_{uv}` the covariance between the label and the patch, removing the term
    :math:`\bar y\,P_{uv}(\bar x)` along the mean image, which otherwise pulls the
    condensation direction :math:`u_1` towards the average brightness pattern whenever
    the two classes are not exactly balanced. Neither step changes the ratio
    :math:`s_1/s_2` that sets how cleanly the kernels condense more than marginally
    (0 vs 1, kernel size 3: 1.22 centered, 1.21 raw, measured with
    :func:`exactdyn.analysis.cnn_measures.label_weighted_patches`); the kernel size does (for
    0 vs 1, 2 × 2 kernels give 1.16 and 4 × 4 give 1.05, since the patch matrix of
    kernel size s is the transpose of that of size 9 − s on 8 × 8 images).
    ``normalize=False`` returns the raw pixel values 0…16 as floats.

    Which pair to show condensation on. The kernels' :math:`|\cos|` with :math:`u_1`
    approaches 1 like :math:`1 - O(e^{-2(s_1-s_2)t})` while the loss starts to drop at
    :math:`t \sim \log(1/\text{scale})/s_1`, so the ratio :math:`s_1/s_2` decides
    whether the kernels condense before the loss moves. Measured with the linearized
    flow of MATH.md §5 (matrix exponential, 16 kernels, init entries of standard
    deviation ε, stopped when the loss has dropped by 10%): 0 vs 1 with 3 × 3 kernels
    (:math:`s_1/s_2 = 1.22`) reaches min :math:`|\cos| = 0.71` at ε = 1e-10, while
    ``classes=(2, 7)`` with 2 × 2 kernels (:math:`s_1/s_2 = 1.97`, the largest ratio over
    all pairs for kernel sizes 2 and 3) reaches 0.9995 at ε = 1e-6 and above 0.9999 at
    ε = 1e-10.

    Parameters
    ----------
    classes : pair of distinct ints in 0…9
        (digit labelled +1, digit labelled −1).
    n : int, optional
        Number of images, at most the number available (about 360 for two digits); a
        seeded random subset, balanced (:math:`\lceil n/2\rceil` of ``classes[0]``), in the
        data set's order. All images of the two digits when omitted.
    seed : int
        Seed of the subset (unused when ``n`` is None).
    normalize : bool

    Returns
    -------
    images : ndarray, shape (N, 8, 8, 1), float64
    y : ndarray, shape (N,), entries ±1

    Raises
    ------
    ImportError
        scikit-learn is not installed (``pip install exactdyn[cnn]``).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError("digits() needs scikit-learn: pip install exactdyn[cnn]") from exc
    try:
        pair = tuple(classes)
    except TypeError:
        pair = ()
    if (len(pair) != 2 or any(isinstance(c, bool) or not isinstance(c, (int, np.integer))
                              or not 0 <= c <= 9 for c in pair) or pair[0] == pair[1]):
        raise ValueError(f"classes must be two distinct digits in 0..9, got {check.show(classes)}")
    seed = check.seed("seed", seed)
    data = load_digits()
    target = np.asarray(data.target)
    idx = [np.flatnonzero(target == c) for c in pair]
    if n is not None:
        n = _n_images(n)
        total = idx[0].size + idx[1].size
        if n > total:
            raise ValueError(f"n must be at most {total} (the images of digits {pair[0]} and "
                             f"{pair[1]}), got {check.show(n)}")
        rng = np.random.default_rng(seed)
        want = [(n + 1) // 2, n // 2]
        if want[0] > idx[0].size:
            want = [idx[0].size, n - idx[0].size]
        elif want[1] > idx[1].size:
            want = [n - idx[1].size, idx[1].size]
        idx = [np.sort(rng.choice(ix, k, replace=False)) for ix, k in zip(idx, want)]
    sel = np.sort(np.concatenate(idx))
    images = np.asarray(data.images, dtype=float)[sel][..., None]
    y = np.where(target[sel] == pair[0], 1.0, -1.0)
    if normalize:
        images = images / 16.0
        images = images - images.mean(axis=0)
    return images, y


def _image_shape(height, width, channels, kernel_size=None):
    height = check.positive_int("height", height)
    width = check.positive_int("width", width)
    channels = check.positive_int("channels", channels)
    if kernel_size is not None:
        kernel_size = check.positive_int("kernel_size", kernel_size)
        if kernel_size > min(height, width):
            raise ValueError(f"kernel_size must be at most min(height, width) = "
                             f"{min(height, width)}, got {check.show(kernel_size)}")
    return height, width, channels, kernel_size


def synthetic_images(n: int = 200, height: int = 8, width: int = 8, channels: int = 1,
                     seed=0, noise: float = 0.5, contrast: float = 0.5):
    r"""Striped images with one clearly dominant condensation direction.

    Image i (labels alternate, :math:`y_0 = +1`):

    .. math::

        x_i[r, c, \alpha] = \frac{A_i}{1+\alpha}\begin{cases}(-1)^r & y_i = +1\\
        \kappa\,(-1)^c & y_i = -1\end{cases} + \sigma\,\xi_i[r, c, \alpha],

    horizontal stripes for the positive class, vertical ones (contrast κ) for the
    negative class, amplitudes :math:`A_i \sim U[1/2, 3/2]`, Gaussian noise ξ of
    standard deviation σ. Every patch of a stripe image is ± the same stripe patch, so
    apart from the noise :math:`Z = \frac{\bar A}{2}\,(h\,a^\top - \kappa\,g\,b^\top)`
    with h, g the horizontal and vertical stripe patches and
    :math:`a_{uv} = (-1)^u`, :math:`b_{uv} = (-1)^v`: rank two,
    :math:`s_2/s_1 \approx \kappa`, and :math:`u_1 \approx h/\|h\|` (a horizontal
    stripe detector, weighted 1/(1+α) over channels). With the defaults
    :math:`s_1/s_2 \approx 2`, a clean condensation onto one direction
    (MATH.md §5; Zhou et al., arXiv:2305.09947).

    Parameters
    ----------
    n : int
        Number of images (>= 2), half of each label.
    height, width, channels : int
    seed : int
    noise : float
        σ >= 0.
    contrast : float
        κ in [0, 1]: amplitude of the negative class relative to the positive one.

    Returns
    -------
    images : ndarray, shape (n, height, width, channels)
    y : ndarray, shape (n,), entries ±1
    """
    n = _n_images(n)
    height, width, channels, _ = _image_shape(height, width, channels)
    seed = check.seed("seed", seed)
    noise = check.nonnegative("noise", noise)
    contrast = check.real("contrast", contrast)
    if not 0.0 <= contrast <= 1.0:
        raise ValueError(f"contrast must be in [0, 1], got {check.show(contrast)}")
    rng = np.random.default_rng(seed)
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    rows = np.broadcast_to((-1.0) ** np.arange(height)[:, None], (height, width))
    cols = np.broadcast_to(contrast * (-1.0) ** np.arange(width)[None, :], (height, width))
    amp = rng.uniform(0.5, 1.5, n)
    pattern = np.where(y[:, None, None] > 0, rows, cols) * amp[:, None, None]
    images = pattern[..., None] / (1.0 + np.arange(channels))
    return images + noise * rng.standard_normal(images.shape), y


def tie_images(n: int = 200, kernel_size: int = 3, height: int = 8, width: int = 8,
               seed=0, noise: float = 0.5):
    r"""Two-channel images whose label-weighted patch matrix has :math:`s_1 = s_2` exactly.

    Positive images (:math:`y = +1`) carry a horizontal bar of random amplitude
    :math:`U[1/2, 3/2]` at a random row of the top band (rows :math:`0 \ldots R-1`,
    :math:`R = \lfloor (H - s + 1)/2\rfloor`) of channel 0. Each negative image is its
    mirror image :math:`F x`: rows reversed and the two channels swapped (the bar in the
    bottom band of channel 1). Each pair (x, F x) gets the same noise field σξ (both
    channels, whole image).

    Why the tie is exact. Z is linear in the images, so the shared noise cancels:
    :math:`Z = \frac1n\sum_{\text{pairs}} [P(x) - P(Fx)] = Z_+ - Z_-`. The two bands are
    at least s − 1 rows apart, so no valid patch touches both: :math:`Z_+` and
    :math:`Z_-` have disjoint columns (positions), and their columns lie in the
    channel-0 and the channel-1 coordinates of the patch space respectively. Hence
    :math:`ZZ^\top = Z_+Z_+^\top \oplus Z_-Z_-^\top` (block diagonal over channels), and
    :math:`Z_- = (V\otimes S)\,Z_+\,\Pi` with V the row flip of a patch, S the channel
    swap and Π a permutation of positions, so the two blocks are orthogonally similar:
    every singular value of Z appears twice, :math:`s_1 = s_2` with top eigenspace
    spanned by :math:`u_1` (a channel-0 bar detector) and :math:`u_2 = (V\otimes S)u_1`.
    With the tie, the linearized kernels :math:`W_\beta(t)` of MATH.md §5 grow along
    :math:`c_{1\beta}u_1 + c_{2\beta}u_2` with init-dependent coefficients: they spread
    in the plane instead of condensing onto a line (Zhou et al., arXiv:2305.09947).
    The construction depends on the kernel size (valid padding); for another kernel
    size the tie is not guaranteed.

    Parameters
    ----------
    n : int
        Even number of images (pairs), >= 2.
    kernel_size : int
        s, with :math:`H - s + 1 \ge 2` so that each band has a row.
    height, width : int
    seed : int
    noise : float
        σ >= 0.

    Returns
    -------
    images : ndarray, shape (n, height, width, 2)
    y : ndarray, shape (n,), alternating +1, −1
    """
    n = _n_images(n, even=True)
    height, width, _, s = _image_shape(height, width, 2, kernel_size)
    seed = check.seed("seed", seed)
    noise = check.nonnegative("noise", noise)
    band = (height - s + 1) // 2
    if band < 1:
        raise ValueError(f"kernel_size must be at most height - 1 = {height - 1} for the "
                         f"tie construction (two bands s - 1 rows apart), got {check.show(s)}")
    rng = np.random.default_rng(seed)
    m = n // 2
    base = np.zeros((m, height, width, 2))
    base[np.arange(m), rng.integers(0, band, m), :, 0] = rng.uniform(0.5, 1.5, m)[:, None]
    shared = noise * rng.standard_normal((m, height, width, 2))
    images = np.empty((n, height, width, 2))
    images[0::2] = base + shared
    images[1::2] = base[:, ::-1, :, ::-1] + shared
    return images, np.tile([1.0, -1.0], m)


__all__ = ["boursier_flammarion_data", "boursier_flammarion_instance", "digits",
           "least_squares_loss", "synthetic_images", "tie_images", "v_shape_weights"]
