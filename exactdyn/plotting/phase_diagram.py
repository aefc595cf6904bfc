r"""Figures of regimes: phase diagrams (measured labels, scores, theory boundaries, named
parametrizations) and Luo et al.'s :math:`(\gamma, \gamma')` diagram. matplotlib, Agg."""

from __future__ import annotations

import numpy as np

__all__ = ["LABEL_COLORS", "plot_luo_diagram", "plot_phase_diagram"]

LABEL_COLORS = {
    "kernel": "#4c72b0", "alignment": "#55a868", "disalignment": "#c44e52",
    "rescaling": "#dd8452", "linear": "#4c72b0", "critical": "#8172b3",
    "condensed": "#c44e52", "lazy": "#4c72b0", "rich": "#55a868", "ntk": "#4c72b0",
    "saddle-to-saddle": "#c44e52", "": "#ffffff",
}
_EXTRA = ["#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd"]


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "svg", "pdf", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _is_log(v) -> bool:
    """A log axis for positive values spread over more than a factor 20, or whose linear
    cell edges would reach 0 or below (two values 1e-3, 1e-1: edges -0.05, 0.05, 0.15)."""
    v = np.asarray(v, float)
    if v.size < 2 or not np.all(v > 0):
        return False
    if v.max() / v.min() > 20:
        return True
    s = np.sort(v)
    return bool(s[0] - (s[1] - s[0]) / 2 <= 0)


def _edges(v):
    v = np.asarray(v, float)
    if v.size == 1:
        return np.array([v[0] * 0.9, v[0] * 1.1]) if v[0] > 0 else np.array([v[0] - .5,
                                                                              v[0] + .5])
    if _is_log(v):
        lv = np.log(v)
        mid = (lv[1:] + lv[:-1]) / 2
        return np.exp(np.concatenate([[2 * lv[0] - mid[0]], mid, [2 * lv[-1] - mid[-1]]]))
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def _boundaries(ax, pd):
    """Contours where the predicted label changes (the theory boundaries)."""
    if pd.predicted is None:
        return
    X, Y = np.meshgrid(pd.x, pd.y)
    drawn = False
    for lab in np.unique(pd.predicted):
        if lab == "":
            continue
        ind = (pd.predicted == lab).astype(float)
        if 0 < ind.sum() < ind.size and min(ind.shape) > 1:
            ax.contour(X, Y, ind, levels=[0.5], colors="k", linewidths=1.2,
                       linestyles="--")
            drawn = True
    if drawn:
        ax.plot([], [], "k--", lw=1.2, label="theory boundary")


def _named_points(pd):
    """Named parametrizations of the 1-D linear model on this grid (others fixed)."""
    if pd.model != "linear1d":
        return []
    from ..regimes.scaling import PARAMETRIZATIONS

    width = int(pd.fixed.get("width", 64))
    out = []
    for name, par in PARAMETRIZATIONS.items():
        hp = par.hyperparameters(width)
        ok = True
        for k, v in hp.items():
            if k in (pd.x_name, pd.y_name) or k == "width":
                continue
            if k in pd.fixed and not np.isclose(float(pd.fixed[k]), v, rtol=1e-9):
                ok = False
        if not ok or pd.x_name not in hp or pd.y_name not in hp:
            continue
        xv, yv = hp[pd.x_name], hp[pd.y_name]
        if min(pd.x) <= xv <= max(pd.x) and min(pd.y) <= yv <= max(pd.y):
            out.append((name, xv, yv))
    return out


def plot_phase_diagram(pd, path=None, quantity=None, title=None, marks=None):
    """Two panels: measured regions coloured by label, and a score as a colour map, both
    with the theory boundaries (dashed) and named parametrizations (stars).

    Parameters
    ----------
    pd : PhaseDiagram
    path : str, optional
        Save as PNG or SVG (by extension).
    quantity : str, optional
        Score for the colour map (default ``pd.quantity``); shown as log10 when positive
        and spanning more than a decade.
    marks : list of (name, x, y), optional
        Points to mark (default: named parametrizations that fit the grid).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    quantity = quantity or pd.quantity or next(iter(pd.scores))
    if quantity not in pd.scores:
        raise ValueError(f"quantity must be one of {', '.join(pd.scores)}; got {quantity!r}")
    labels = [lab for lab in np.unique(pd.labels)]
    colors = [LABEL_COLORS.get(lab, _EXTRA[i % len(_EXTRA)]) for i, lab in enumerate(labels)]
    code = np.searchsorted(labels, pd.labels)
    xe, ye = _edges(pd.x), _edges(pd.y)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), constrained_layout=True)
    ax = axes[0]
    ax.pcolormesh(xe, ye, code, cmap=ListedColormap(colors), vmin=-0.5,
                  vmax=len(labels) - 0.5, shading="flat", rasterized=True)
    handles = [Patch(color=c, label=lab or "failed") for lab, c in zip(labels, colors)]
    ax.set_title(title or f"{pd.model}: measured regimes")
    ax2 = axes[1]
    z = np.asarray(pd.scores[quantity], float)
    finite = z[np.isfinite(z)]
    zlabel = quantity
    if finite.size and np.all(finite > 0) and finite.max() / finite.min() > 10:
        with np.errstate(divide="ignore"):
            z = np.log10(z)
        zlabel = f"log10 {quantity}"
    mesh = ax2.pcolormesh(xe, ye, np.ma.masked_invalid(z), cmap="viridis", shading="flat",
                         rasterized=True)
    fig.colorbar(mesh, ax=ax2, label=zlabel)
    ax2.set_title(f"{quantity}")
    marks = _named_points(pd) if marks is None else marks
    for a in axes:
        _boundaries(a, pd)
        for name, xv, yv in marks:
            a.plot([xv], [yv], marker="*", ms=13, color="w", mec="k")
            a.annotate(name, (xv, yv), textcoords="offset points", xytext=(6, 4), fontsize=8,
                       color="k", bbox={"boxstyle": "round,pad=0.15", "fc": "w", "alpha": .7})
        if _is_log(pd.x):
            a.set_xscale("log")
        if _is_log(pd.y):
            a.set_yscale("log")
        a.set_xlabel(pd.x_name)
        a.set_ylabel(pd.y_name)
    extra = [h for h in axes[0].get_legend_handles_labels()[0]]
    axes[0].legend(handles=handles + extra, loc="best", fontsize=8, framealpha=0.8)
    if path is not None:
        _save(fig, path)
    return fig


def _save(fig, path):
    path = str(path)
    if not path.lower().endswith((".png", ".svg")):
        raise ValueError(f"figure path must end in .png or .svg, got {path!r}")
    from .._atomic import atomic_path

    with atomic_path(path, suffix=path[-4:]) as tmp:
        fig.savefig(tmp, dpi=120)


def plot_luo_diagram(path=None, inits=("ntk", "mean-field", "xavier", "lecun"),
                     gamma_range=(0.0, 3.0), gamma_prime_range=(-1.0, 2.0), n=301):
    r"""Luo, Xu, Ma, Zhang (JMLR 2021) phase diagram in :math:`(\gamma, \gamma')`: linear
    and condensed regions from :func:`~exactdyn.regimes.scaling.luo_label`, the critical
    boundary drawn as lines, named inits marked."""
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from ..regimes.scaling import luo_label, two_layer_init

    g = np.linspace(*gamma_range, n)
    gp = np.linspace(*gamma_prime_range, n)
    G, GP = np.meshgrid(g, gp)
    lab = luo_label(G, GP, tol=0.0)
    code = (lab == "condensed").astype(float)
    fig, ax = plt.subplots(figsize=(5.6, 4.6), constrained_layout=True)
    ax.imshow(code, origin="lower", aspect="auto", interpolation="nearest", vmin=0, vmax=1,
              extent=(*gamma_range, *gamma_prime_range),
              cmap=ListedColormap([LABEL_COLORS["linear"], LABEL_COLORS["condensed"]]))
    crit = LABEL_COLORS["critical"]
    ax.plot([1, 1], [gamma_prime_range[0], 0], color=crit, lw=3)
    ax.plot([1, gamma_range[1]], [0, gamma_range[1] - 1], color=crit, lw=3)
    points: dict = {}
    for name in inits:
        ini = two_layer_init(name)
        points.setdefault((ini.gamma, ini.gamma_prime), []).append(name)
    for (gx, gy), names in points.items():
        ax.plot([gx], [gy], "*", ms=14, color="w", mec="k")
        ax.annotate(f"{', '.join(names)} ({luo_label(gx, gy)})", (gx, gy),
                    textcoords="offset points", xytext=(7, 5), fontsize=8,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "w", "alpha": .75})
    ax.legend(handles=[Patch(color=LABEL_COLORS["linear"], label="linear"),
                       Patch(color=crit, label="critical"),
                       Patch(color=LABEL_COLORS["condensed"], label="condensed")],
              loc="upper left", fontsize=8)
    ax.set_xlabel(r"$\gamma = \lim\, -\log(\beta_1\beta_2/\alpha)/\log m$")
    ax.set_ylabel(r"$\gamma' = \lim\, -\log(\beta_1/\beta_2)/\log m$")
    ax.set_title("Two-layer networks: Luo et al. (JMLR 2021), theory")
    ax.set_xlim(*gamma_range)
    ax.set_ylim(*gamma_prime_range)
    if path is not None:
        _save(fig, path)
    return fig
