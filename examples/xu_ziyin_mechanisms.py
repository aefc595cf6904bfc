"""Xu & Ziyin's three mechanisms through the path of zeta (arXiv:2401.07085, after Fig. 1).

Fig. 1 of the paper (v3 caption): "The evolution of ζ of two-layer networks with different
settings ... for both alignment (upper) and disalignment (lower) cases. For the linear
network, we show the theoretical predictions obtained from (14) as lines and experimental
results as points." Its parameters could not be read beyond the width d = 10000 reported
for it; the inits below are ours. Left: zeta(t) of the 1-D linear network at width 10000
from the closed form (lines) and the integrator (points):

- alignment: sigma_u^2 = sigma_w^2 = 1e-7, teacher 1 (zeta -0.0145 -> 1.000);
- disalignment: w0 = u0 + 0.3 v (zeta0 = 0.96, |u0.w0| ~ 1) and teacher 0.1, so |p| and |zeta|
  fall (zeta -> 0.32);
- disalignment, then alignment: the same init with teacher -1 (zeta 0.96 -> 0 -> -1);
- rescaling: width 1 (zeta = 1 throughout), teacher 1.

Right: a sigma_u x kappa diagram (width 2, seed 2, zeta0 = 0.87) where all four labels of
the linear1d taxonomy appear. Key numbers (tested in tests/test_gallery_xu_ziyin.py):
``key_numbers()``.

    python examples/xu_ziyin_mechanisms.py [--out DIR]

writes xu_ziyin_mechanisms.png into DIR (default: a new temporary directory); run time:
about 10 s (measured).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import exactdyn as ed

WIDTH = 10000


def cases() -> dict:
    """The four runs of the left panel: name -> Linear1D."""
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, WIDTH) / np.sqrt(WIDTH)
    v = rng.normal(0.0, 1.0, WIDTH) / np.sqrt(WIDTH)
    s = np.sqrt(1e-7)
    return {
        "alignment": ed.Linear1D(width=WIDTH, seed=0, sigma_u=s, sigma_w=s, teacher=1.0),
        "disalignment": ed.Linear1D.from_init(x, x + 0.3 * v, teacher=0.1),
        "disalignment, then alignment": ed.Linear1D.from_init(x, x + 0.3 * v, teacher=-1.0),
        "rescaling": ed.Linear1D.from_init([1e-3], [2e-3], teacher=1.0),
    }


def diagram():
    """The sigma_u x kappa phase diagram of the right panel."""
    return ed.phase_diagram(ed.Linear1D(width=2, seed=2),
                            x=("sigma_u", np.geomspace(1e-2, 10, 121)),
                            y=("kappa", np.geomspace(1e-2, 1e2, 81)), progress=False)


def key_numbers() -> dict:
    """Per case: label, mechanisms, zeta at the start and the end; the diagram's labels."""
    out = {}
    for name, model in cases().items():
        r = ed.classify(model)
        out[name] = {"label": r.label, "predicted": r.predicted,
                     "mechanisms": r.evidence["mechanisms"],
                     "zeta0": r.evidence["zeta0"], "zeta_end": r.evidence["zeta_end"]}
    out["diagram_labels"] = sorted(set(np.unique(diagram().labels).tolist()))
    return out


def main(argv=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # examples/_out.py
    from _out import out_dir, parser

    args = parser(__doc__, "xu_ziyin_mechanisms").parse_args(argv)
    path = out_dir(args.out, "xu_ziyin_mechanisms") / "xu_ziyin_mechanisms.png"
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    from exactdyn.regimes.linear1d import convergence_times

    for name, model in cases().items():
        t = convergence_times(model, 300)
        line, = ax.semilogx(t[1:], ed.exact(model, t)["alignment"][1:], label=name)
        pts = t[1::30]
        ax.semilogx(pts, ed.solve(model, np.r_[0.0, pts], rtol=1e-10)["alignment"][1:], "o",
                    ms=4, color=line.get_color())
    ax.set_xlabel("t")
    ax.set_ylabel(r"$\zeta = u\cdot w/(\|u\|\|w\|)$")
    ax.set_title("closed form (lines), integrator (points)")
    ax.legend(fontsize=8)
    pd = diagram()
    labels = sorted(set(pd.labels.ravel().tolist()))
    code = np.searchsorted(labels, pd.labels)
    ax2.pcolormesh(pd.x, pd.y, code, shading="nearest", cmap="tab10", vmin=0, vmax=9)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel(r"$\sigma_u$ (width 2, seed 2, $\sigma_w = 1$)")
    ax2.set_ylabel(r"$\kappa$ (teacher 1)")
    cmap = plt.get_cmap("tab10")
    for i, lab in enumerate(labels):
        ax2.plot([], [], "s", color=cmap(i / 9), label=lab)
    ax2.legend(fontsize=8, loc="lower left")
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")
    for name, row in key_numbers().items():
        print(f"{name}: {row}")


if __name__ == "__main__":
    main()
