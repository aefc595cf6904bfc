"""Condensation heat maps of Zhou et al. (NeurIPS 2022) for tanh, x*tanh and x^2*tanh on
1-D data plus a bias (MATH.md §4): activations of multiplicity p = 1, 2, 3 condense their
input weights onto at most p lines (1, <= 2, <= 3).

Data: x = 20 points in [-1, 1], y = sin(pi x) + 0.3 (exactdyn's choice: for this target
the multiplicity-rule polynomials have p real roots for p = 1, 2, 3, so the bound is not
met trivially). Width 100, balanced init of equal norms: w_k = r0 u_k with u_k uniform on
the circle and a_k = ±r0 (r0 = 1e-6, 1e-2, 3e-2: higher multiplicity grows like r^p and
needs a larger start to leave the origin in finite time). Equal norms because for p >= 2
the radial growth r' ~ a r^(p-1) is winner-take-all: from a Gaussian init the one or two
largest neurons run away before the others have turned, and the heat map would show one
neuron; with equal norms the directional dynamics (what the multiplicity rule is about)
decide which neurons grow. Each network is drawn when its loss has first dropped by 20%:

- the ordered cosine-similarity matrix of the grown input weights w_k = (w_k1, b_k)
  (||w_k|| >= 0.1 max ||w||), on [-1, 1] (exactdyn.plotting.condensation.plot_condensation);
- the orientation/amplitude scatter (angle of w_k in the (x, bias) plane against
  |a_k| ||w_k||) at t = 0, half-way and at the snapshot, dashed lines at the predicted
  stationary directions ±u (exactdyn.closed_form.twolayer.stationary_directions).

Printed per activation: the predicted lines, the direction clusters of the grown neurons
(||w_k|| >= 0.1 max), how many grew, and the median over all neurons of |cos| to the
nearest predicted line. For p >= 2 the radial growth r' ~ r^(p-1) is winner-take-all: a
few neurons grow first, while the directions of the others are still turning towards the
lines (median |cos| about 0.97-0.99 rather than 1): the heat map shows the grown block
and a fringe of neurons that have not grown.

Reproduces Zhou et al.'s multiplicity rule (the paper's figures and their parameters were
not read; data, width and scales here are ours). Key numbers (tested): each activation's
grown neurons form at most p direction clusters, p its multiplicity, and sit on the
predicted lines (|cos| > 0.98).

Run: ``python examples/condensation_heatmaps.py [--out DIR]`` (default: a new temporary
directory) -> condensation_<activation>.png; run time: about 15 s (measured).
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _out import out_dir, parser  # noqa: E402

import exactdyn as ed  # noqa: E402
from exactdyn.analysis.condensation import direction_clusters  # noqa: E402
from exactdyn.closed_form.twolayer import stationary_directions  # noqa: E402
from exactdyn.plotting.condensation import (  # noqa: E402
    plot_condensation,
    plot_orientation_amplitude,
)

CASES = [("tanh", 1e-6, 60.0), ("x_tanh", 1e-2, 200.0), ("x2_tanh", 3e-2, 600.0)]
GROWN = 0.1      # "grown" neurons (heat map rows): ||w_k|| >= GROWN * max ||w||


def equal_norm_init(width, r0, seed=1):
    """``(a, W)``: w_k = r0 u_k, u_k uniform on the circle, a_k = ±r0 (random signs)."""
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(width, 2))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    return r0 * rng.choice([-1.0, 1.0], width), r0 * U


def snapshot(model, t_max, drop=0.2, points=301):
    """Trajectory on [0, t*] (three samples: 0, t*/2, t*), t* the first grid time at which
    the loss is (1 - drop) times its start."""
    grid = np.linspace(0.0, t_max, points)
    loss = ed.solve(model, grid)["loss"]
    hit = np.flatnonzero(loss <= (1 - drop) * loss[0])
    t_star = grid[hit[0]] if hit.size else grid[-1]
    return ed.solve(model, [0.0, t_star / 2, t_star])


def condense(act, r0, t_max, width=100):
    """One case: the snapshot at 20% loss drop, the predicted lines (multiplicity rule), the
    number of direction clusters of the grown neurons (key number: at most p, the
    activation's multiplicity [ZX]) and each neuron's |cos| to its nearest predicted line."""
    x = np.linspace(-1.0, 1.0, 20)
    y = np.sin(np.pi * x) + 0.3
    a0, W0 = equal_norm_init(width, r0)
    model = ed.TwoLayer.from_init(a0, W0, x, y, activation=act)
    lines = np.array(stationary_directions(model))
    traj = snapshot(model, t_max)
    W = traj["W"][-1]
    norms = np.linalg.norm(W, axis=1)
    big = norms >= GROWN * norms.max()
    cos = np.max(np.abs((W / norms[:, None]) @ lines.T), axis=1)
    k = direction_clusters(W, rel_tol=GROWN, signed=False)
    return {"model": model, "lines": lines, "traj": traj, "W": W, "grown": big, "cos": cos,
            "clusters": k, "multiplicity": model.multiplicity}


def main(out=None):
    out = out_dir(out, "condensation_heatmaps")
    print(f"{'activation':>10} {'p':>2} {'lines':>5} {'clusters':>8} {'grown':>5} "
          f"{'min |cos| grown':>15} {'median |cos| all':>16} {'t*':>7} {'L(t*)/L(0)':>10}")
    for act, r0, t_max in CASES:
        c = condense(act, r0, t_max)
        model, lines, traj, W = c["model"], c["lines"], c["traj"], c["W"]
        big, cos, k = c["grown"], c["cos"], c["clusters"]
        print(f"{act:>10} {model.multiplicity:>2} {len(lines):>5} {k:>8} {big.sum():>5} "
              f"{cos[big].min():>15.4f} {np.median(cos):>16.4f} {traj.t[-1]:>7.1f} "
              f"{traj['loss'][-1] / traj['loss'][0]:>10.3f}")
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        plot_condensation(W, ax=axes[0], rel_tol=GROWN,
                          title=f"{act} (p = {model.multiplicity}): grown neurons on {k} "
                                f"line(s), <= {model.multiplicity}")
        marks = [np.arctan2(s * u[1], s * u[0]) for u in lines for s in (1, -1)]
        plot_orientation_amplitude(traj, ax=axes[1], marks=marks,
                                   title=f"{act}: orientation / amplitude")
        fig.tight_layout()
        fig.savefig(out / f"condensation_{act}.png", dpi=110)
        plt.close(fig)
    print(f"figures in {out}")
    return out


if __name__ == "__main__":
    main(parser(__doc__, "condensation_heatmaps").parse_args(sys.argv[1:]).out)
