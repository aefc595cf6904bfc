r"""Gradient descent on a lowered flow: the discrete iterates at a finite learning rate.

With the lowered right-hand side :math:`f(\theta) = -H\nabla L(\theta)` (``H`` the diagonal
of layer rates), one step of (layer-wise) gradient descent is

.. math:: \theta_{k+1} = \theta_k + \mathrm{lr}\, f(\theta_k)
          = \theta_k - \mathrm{lr}\,H\nabla L(\theta_k),

and iterate :math:`k` sits at time :math:`t_k = k\,\mathrm{lr}` of the flow, so GD and the
gradient flow are compared at equal times. The step is vectorized (one call of the
lowered right-hand side per iterate, whatever the width) and runs in float64 or, with
``precision``, on object arrays of ``mpmath.mpf`` inside a local ``mpmath.workdps``
(no global mpmath state is changed).

This module knows nothing of models: it gets a step function and an initial vector.
"""

from __future__ import annotations

import mpmath
import numpy as np

from ..errors import IntegrationError


def step_counts(name: str, times: np.ndarray, lr: float) -> np.ndarray:
    r"""Iterate numbers :math:`k` with :math:`k\,\mathrm{lr} = t` for the output ``times``.

    Every output time must be an integer multiple of ``lr`` within rounding
    (:math:`|t - k\,\mathrm{lr}| \le 10^{-9}\max(1, k)\,\mathrm{lr}`); otherwise
    ``ValueError`` naming ``name``: GD has no state between its iterates.
    """
    k = np.rint(times / lr)
    bad = np.abs(times - k * lr) > 1e-9 * np.maximum(1.0, k) * lr
    if np.any(bad):
        first = float(times[np.argmax(bad)])
        raise ValueError(f"{name} must hold multiples of lr = {lr!r} (gradient descent has an "
                         f"iterate only at t = k*lr), got {first!r}")
    return k.astype(np.int64)


def iterate(rhs, y0, lr, ks, precision=None):
    r"""States :math:`\theta_k` for each ``k`` of ``ks`` (non-decreasing), time first.

    ``rhs(y)`` is the lowered right-hand side at ``y`` (float64 or, with ``precision``,
    an object array of ``mpmath.mpf``); ``lr`` the step. Raises
    :class:`~exactdyn.IntegrationError` when an iterate stops being finite (a step size
    beyond the stability limit :math:`2/\lambda_{\max}` diverges), naming the time reached.
    """
    ks = np.asarray(ks, dtype=np.int64)
    if precision is None:
        y = np.array(y0, dtype=float)
        out = np.empty((len(ks), y.size))
        k = 0
        lr = float(lr)
        with np.errstate(over="ignore", invalid="ignore"):
            for row, target in enumerate(ks):
                while k < target:
                    y = y + lr * rhs(y)
                    k += 1
                    if not np.all(np.isfinite(y)):
                        raise IntegrationError(
                            f"gradient descent diverged at iterate {k} (lr = {lr!r})",
                            t_reached=(k - 1) * lr)
                out[row] = y
        return out
    with mpmath.workdps(precision):
        h = mpmath.mpf(lr)
        y = np.array([mpmath.mpf(v) for v in np.asarray(y0).ravel()], dtype=object)
        out = np.empty((len(ks), y.size), dtype=object)
        k = 0
        for row, target in enumerate(ks):
            while k < target:
                y = y + h * rhs(y)
                k += 1
                if not all(mpmath.isfinite(v) for v in y):
                    raise IntegrationError(
                        f"gradient descent diverged at iterate {k} (lr = {lr!r})",
                        t_reached=float((k - 1) * h))
            out[row] = y
        return out
