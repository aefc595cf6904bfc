r"""The sharpness of a gradient-descent run against time, with the stability line 2/lr.

The sharpness is that of :func:`exactdyn.sharpness` (the top eigenvalue of the rate-weighted
Hessian :math:`H^{1/2}\nabla^2 L\,H^{1/2}`); gradient descent at step ``lr`` is stable
while it stays below :math:`2/\mathrm{lr}` (Cohen et al., "Gradient descent on neural
networks typically occurs at the edge of stability", ICLR 2021). matplotlib.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_sharpness"]


def plot_sharpness(t, sharp, lr=None, ax=None, path=None, label="sharpness"):
    """Plot the sharpness against ``t`` with the stability line ``2/lr`` (when given)."""
    import matplotlib

    if ax is None:
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
    else:
        fig = ax.figure
    ax.plot(np.asarray(t, float), np.asarray(sharp, float), label=label)
    if lr is not None:
        ax.axhline(2.0 / float(lr), color="k", ls="--", lw=1, label=f"2/lr (lr = {lr:g})")
    ax.set_xlabel("t")
    ax.set_ylabel(r"$\lambda_{\max}(H^{1/2}\nabla^2 L H^{1/2})$")
    ax.legend()
    if path is not None:
        fig.savefig(path, bbox_inches="tight")
    return ax
