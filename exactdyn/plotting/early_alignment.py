r"""Early-alignment figures of two-layer networks with 2-D inputs: matplotlib.

Boursier & Flammarion, "Early alignment in two-layer networks training is a two-edged
sword" (arXiv:2401.10791): the neurons' input-weight directions on polar axes with the
stationary directions of the early direction flow
(:func:`exactdyn.closed_form.early_alignment.stationary_directions_2d`). The figure is
returned (never shown); pass ``ax`` to draw into an existing polar axes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_polar_directions"]


def plot_polar_directions(traj, model=None, times=None, ax=None, stationary: bool = True,
                          paths: bool = True, title: str | None = None):
    r"""Input-weight directions of a two-layer network with 2-D inputs, on polar axes.

    Each neuron k is drawn at angle :math:`\operatorname{atan2}(w_{k,2}, w_{k,1})` (for 1-D
    data plus bias: (input weight, bias)) and radius :math:`\|w_k\|` on a logarithmic radial
    axis, at the selected times (colour = time; ``o`` for :math:`a_k > 0`, ``x`` for
    :math:`a_k < 0`), with each neuron's path through all times of ``traj`` as a thin line.
    With ``model``: the region boundaries :math:`u\cdot x_i = 0` (grey), the dead arcs
    (shaded), and the stationary directions of the early direction flow
    (:func:`exactdyn.closed_form.early_alignment.stationary_directions_2d`: extremal
    vectors solid, Filippov boundary points dashed; red attracts a > 0, blue a < 0).
    Boursier & Flammarion (arXiv:2401.10791), early alignment.

    Parameters
    ----------
    traj : Trajectory
        With states ``W`` (T × m × 2) and ``a`` (T × m) (:func:`exactdyn.solve` or
        :func:`exactdyn.exact` of a :class:`~exactdyn.TwoLayer`).
    model : TwoLayer, optional
        For the boundaries and stationary directions (2-D inputs).
    times : sequence of float, optional
        Times to mark (the nearest stored times); default: up to four evenly spread.
    ax : matplotlib polar Axes, optional
    stationary : bool
        Draw the stationary directions and dead arcs (needs ``model``).
    paths : bool
        Draw each neuron's path through all stored times.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    W = np.asarray(traj["W"], dtype=float)
    a = np.asarray(traj["a"], dtype=float)
    t = np.asarray(traj.t, dtype=float)
    if W.ndim != 3 or W.shape[2] != 2:
        raise ValueError(f"traj must hold input weights W of shape (T, m, 2) (2-D inputs); "
                         f"got {W.shape}")
    if times is None:
        idx = np.unique(np.linspace(0, len(t) - 1, min(4, len(t))).round().astype(int))
    else:
        times = np.atleast_1d(np.asarray(times, dtype=float))
        if times.size == 0 or not np.all(np.isfinite(times)):
            raise ValueError(f"times must be finite times of traj, got {times!r}")
        idx = np.unique(np.abs(t[None, :] - times[:, None]).argmin(axis=1))
    own = ax is None
    if own:
        # The polar axes on the left, the legend in the figure's own right-hand part, so a
        # plain fig.savefig(path) keeps it whole (no bbox_inches="tight" needed).
        fig = plt.figure(figsize=(8.4, 5.2))
        ax = fig.add_axes((0.06, 0.08, 0.5, 0.8), projection="polar")
    else:
        fig = ax.figure
    theta = np.arctan2(W[..., 1], W[..., 0])
    r = np.linalg.norm(W, axis=2)
    pos = r[r > 0]
    if pos.size == 0:
        raise ValueError("traj has only zero input weights; nothing to draw")
    rmin, rmax = pos.min() / 1.5, pos.max() * 1.5
    ax.set_rscale("log")
    ax.set_rlim(rmin, rmax)
    ax.tick_params(labelsize=7)
    if model is not None and stationary:
        from ..closed_form.early_alignment import stationary_directions_2d

        stat, dead = stationary_directions_2d(model)
        for x in model.X:
            base = np.arctan2(x[1], x[0]) + np.pi / 2
            for b in (base, base + np.pi):
                ax.plot([b, b], [rmin, rmax], color="0.75", lw=0.7, zorder=0)
        for lo, hi in dead:
            ax.fill_between(np.linspace(lo, hi, 50), rmin, rmax, color="0.9", zorder=0,
                            label="dead region" if lo == dead[0][0] else None)
        for s in stat:
            color = {1: "C3", -1: "C0"}.get(s.attracts, "0.4")
            ls = "-" if s.kind == "extremal" else "--"
            ax.plot([s.angle, s.angle], [rmin, rmax], color=color, ls=ls, lw=1.6, zorder=1,
                    label=f"{s.kind} {np.degrees(s.angle):.1f}°, Φ={s.phi:.3g}")
    if paths:
        for k in range(W.shape[1]):
            th = np.unwrap(theta[:, k])
            ax.plot(th, r[:, k], color="0.55", lw=0.6, zorder=2)
    cmap = plt.get_cmap("viridis")
    for n_, j in enumerate(idx):
        c = cmap(n_ / max(1, len(idx) - 1))
        plus = a[j] > 0
        ax.scatter(theta[j, plus], r[j, plus], marker="o", s=22, color=c, zorder=3,
                   label=f"t = {t[j]:.3g}")
        ax.scatter(theta[j, ~plus], r[j, ~plus], marker="x", s=22, color=c, zorder=3)
    if own:
        fig.legend(*ax.get_legend_handles_labels(), loc="center left",
                   bbox_to_anchor=(0.62, 0.5), fontsize=7, frameon=False)
    else:
        ax.legend(loc="best", fontsize=7, framealpha=0.8)
    ax.set_title(title or "neuron directions (radius |w_k|, log)", fontsize=9)
    return fig
