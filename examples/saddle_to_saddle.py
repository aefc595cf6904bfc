"""Jacot et al.'s saddle-to-saddle plateaus at several gamma (arXiv:2106.15933, Fig. 1).

A depth-3 linear network of width 50 learns a rank-3 teacher (singular values 4, 2, 1)
from the init N(0, width^-gamma). For gamma < 1 (NTK regime) the singular values rise
together; for gamma > 1 the network visits saddles of rank 0, 1, 2 in turn, each plateau
at loss 1/2 sum_{beta > k} s_beta^2, and the plateaus lengthen as gamma grows.

Key numbers (tested, fast variant width 10): the plateaus sit at the teacher's partial
losses 1/2 sum_{beta > k} s_beta^2 = 10.5, 2.5, 0.5, and at depth 2 the first escape time
grows like (1/s_1) log(1/sigma) (slope 0.25). The paper's figure parameters were not read
(docs/papers/jacot.md); width, depth and teacher are ours.

Run: ``python examples/saddle_to_saddle.py [--out DIR] [--width 50] [--depth 3]`` ->
saddle_to_saddle.png (default DIR: a new temporary directory); run time: about 15 s (measured).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _out import out_dir  # noqa: E402
from _out import parser as example_parser

import exactdyn as ed  # noqa: E402
from exactdyn.analysis import analyze_saddles, ntk_movement  # noqa: E402
from exactdyn.models.deep_linear import teacher_matrix  # noqa: E402
from exactdyn.plotting import plot_singular_values  # noqa: E402

SVALS = (4.0, 2.0, 1.0)


def plateau_levels(gamma=2.5, width=50, depth=3, t_end=150.0):
    """The loss plateaus of the full flow at one gamma, by rank of the saddle, with the
    teacher's partial losses 1/2 sum_{beta > k} s_beta^2 they should sit at."""
    syx = teacher_matrix(list(SVALS), 3, 3)
    model = ed.DeepLinear(depth=depth, width=width, in_dim=3, out_dim=3, gamma=gamma,
                          sigma_yx=syx, seed=0)
    t = np.r_[0.0, np.geomspace(1e-3, t_end, 500)]
    res = analyze_saddles(ed.solve(model, t, rtol=1e-10))
    s = np.sort(SVALS)[::-1]
    theory = {k: 0.5 * float(np.sum(s[k:] ** 2)) for k in range(len(s))}
    return {p.rank: p.loss for p in res.plateaus}, theory, res


def escape_scaling(sigmas=(1e-1, 1e-2, 1e-3, 1e-4), width=10):
    """First escape time of a depth-2 network against log(1/sigma): least-squares slope,
    predicted 1/s_1 (the top mode grows like e^{2 s_1 t} from strength ~ sigma^2)."""
    syx = teacher_matrix(list(SVALS), 3, 3)
    escapes = []
    for sig in sigmas:
        model = ed.DeepLinear(depth=2, width=width, in_dim=3, out_dim=3, sigma=sig,
                              sigma_yx=syx, seed=0)
        t = np.r_[0.0, np.geomspace(1e-2, 4 * np.log(1 / sig), 300)]
        escapes.append(analyze_saddles(ed.solve(model, t, rtol=1e-9)).escape_times[0])
    slope, _ = np.polyfit(np.log(1 / np.asarray(sigmas)), escapes, 1)
    return float(slope), 1 / max(SVALS), escapes


def main(argv=None):
    parser = example_parser(__doc__, "saddle_to_saddle")
    parser.add_argument("--width", type=int, default=50)
    parser.add_argument("--depth", type=int, default=3)
    args = parser.parse_args(argv)
    syx = teacher_matrix(list(SVALS), 3, 3)
    gammas = (0.5, 1.5, 2.0, 2.5)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharey=True)
    for ax, gamma in zip(axes.ravel(), gammas):
        model = ed.DeepLinear(depth=args.depth, width=args.width, in_dim=3, out_dim=3,
                              gamma=gamma, sigma_yx=syx, seed=0)
        t_end = 10.0 if gamma < 1 else 150.0  # converged by then (the rest is stiff)
        t = np.r_[0.0, np.geomspace(1e-3, t_end, 500)]
        traj = ed.solve(model, t, rtol=1e-10)
        res = analyze_saddles(traj)
        print(f"gamma = {gamma}: sup NTK movement {ntk_movement(traj).max():.3g}")
        print(res.table())
        plot_singular_values(traj, res, ax=ax, title=f"gamma = {gamma}")
    slope, predicted, _ = escape_scaling()
    print(f"depth 2: first escape time against log(1/sigma): slope {slope:.4f}, "
          f"predicted 1/s_1 = {predicted:.4f}")
    fig.tight_layout()
    path = out_dir(args.out, "saddle_to_saddle") / "saddle_to_saddle.png"
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
