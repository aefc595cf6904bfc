r"""Saddle-to-saddle figures of deep linear networks [JG]: matplotlib.

The singular values of the end-to-end map against time, with the plateaus of
:func:`exactdyn.analysis.analyze_saddles` (Jacot et al., "Saddle-to-saddle dynamics in deep
linear networks and small initializations", arXiv:2106.15933). The figure is
returned (never shown); pass ``ax`` to draw into an existing axes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_singular_values"]


def plot_singular_values(traj, analysis=None, ax=None, logx: bool = True, teacher=True,
                         title: str | None = None):
    r"""Singular values of the end-to-end map against time, plateaus marked [JG].

    Parameters
    ----------
    traj : Trajectory
        With the observable ``singular_values`` (a :class:`~exactdyn.DeepLinear` run).
    analysis : SaddleAnalysis, optional
        From :func:`exactdyn.analysis.analyze_saddles`; computed when omitted. Plateaus
        are shaded and labelled with their rank, escape times drawn as dotted lines.
    ax : matplotlib Axes, optional
    logx : bool
        Logarithmic time axis (plateaus of deep networks span decades); t = 0 is dropped.
    teacher : bool
        Dashed lines at the teacher's singular values.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from ..analysis.saddles import analyze_saddles

    if analysis is None:
        analysis = analyze_saddles(traj)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
    else:
        fig = ax.figure
    t = np.asarray(traj.t, dtype=float)
    sv = np.asarray(traj["singular_values"], dtype=float)
    keep = t > 0 if logx else np.ones_like(t, dtype=bool)
    for k in range(sv.shape[1]):
        ax.plot(t[keep], sv[keep, k], lw=1.6, label=fr"$\sigma_{k + 1}(A)$")
    if teacher:
        for s in analysis.teacher_svals:
            if s > 0:
                ax.axhline(s, color="0.5", ls="--", lw=0.8)
    for p in analysis.plateaus:
        lo = p.start if not logx or p.start > 0 else t[keep][0]
        ax.axvspan(lo, p.end, color=f"C{p.rank}", alpha=0.12, lw=0)
        ax.text(np.sqrt(lo * p.end) if logx and lo > 0 else (lo + p.end) / 2,
                1.02, f"rank {p.rank}",
                transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8)
    for e in analysis.escape_times:
        if not logx or e > 0:
            ax.axvline(e, color="k", ls=":", lw=0.8)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel(f"singular values of A = {_product_name(traj)}")
    if title:
        ax.set_title(title, pad=14)
    ax.legend(loc="center right", fontsize=8)
    return fig


def _product_name(traj) -> str:
    """The end-to-end map's factors for the trajectory's model: ``W2 W1`` (two-layer linear
    and single neuron), ``W3 W2 W1`` (depth 3), ``W_L ... W_1`` (unknown depth)."""
    model = str(traj.meta.get("model", ""))
    depth = traj.meta.get("params", {}).get("depth")
    if model in ("linear", "single_neuron"):
        depth = 2
    if isinstance(depth, int) and depth >= 1:
        return " ".join(f"W{k}" for k in range(depth, 0, -1)) if depth <= 4 else \
            f"W{depth} ... W1"
    return "W_L ... W_1"
