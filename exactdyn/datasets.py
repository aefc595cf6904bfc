r"""Small data sets with known answers for the two-layer network (MATH.md §4).

:func:`boursier_flammarion_data` is the failure case of early alignment of Boursier &
Flammarion, "Early alignment in two-layer networks training is a two-edged sword"
(arXiv:2401.10791, 2024), their Assumption 3 family: three points near
:math:`(-1, 1), (0, 1), (1, 1)` (input, bias) with labels :math:`\approx 1, \approx 0^+,
\approx 1`. The paper itself could not be consulted here; the member implemented below
was chosen from the description in MATH.md §4, and its two-neuron exact fit
(:func:`v_shape_weights`) is derived in its docstring.
"""

from __future__ import annotations

import math

import numpy as np

from . import _validation as check


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
    Assumption 3 (they take the middle label small, :math:`\eta < 1/6` in MATH.md's
    summary); this member of the family (labels exactly 1 on the outer points, the
    middle point moved by ε) is exactdyn's choice.

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
        raise ValueError(f"eta must be in (0, 1), got {eta!r}")
    eps = check.real("eps", eps)
    if not abs(eps) < 0.5:
        raise ValueError(f"eps must satisfy |eps| < 1/2, got {eps!r}")
    return np.array([[-1.0], [eps], [1.0]]), np.array([1.0, eta, 1.0])


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


__all__ = ["boursier_flammarion_data", "least_squares_loss", "v_shape_weights"]


def synthetic_images(n: int = 64, height: int = 8, width: int = 8, channels: int = 1,
                     seed: int = 0):
    r"""Two classes of small noisy images with labels ±1, for tests and the CLI.

    Image i of class :math:`y_i = +1` holds a horizontal bar (one row set to 1) and of
    class :math:`y_i = -1` a vertical bar (one column), at a random row or column, in
    every channel, plus Gaussian noise of standard deviation 0.1. Classes alternate
    (+1, −1, +1, ...), so they are balanced. Deterministic in ``seed``.

    Returns
    -------
    images : ndarray, n × height × width × channels
    y : ndarray, (n,)
    """
    n = check.positive_int("n", n)
    height = check.positive_int("height", height)
    width = check.positive_int("width", width)
    channels = check.positive_int("channels", channels)
    seed = check.seed("seed", seed)
    rng = np.random.default_rng(seed)
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    images = 0.1 * rng.normal(size=(n, height, width, channels))
    rows = rng.integers(0, height, n)
    cols = rng.integers(0, width, n)
    for i in range(n):  # one bar per image
        if y[i] > 0:
            images[i, rows[i], :, :] += 1.0
        else:
            images[i, :, cols[i], :] += 1.0
    return images, y
