"""Early alignment of ReLU neurons on polar plots (Boursier & Flammarion, arXiv:2401.10791;
MATH.md §4), with the region-by-region closed form against the full flow.

1. 1-D data y = sign(x) with a bias: small balanced init; neurons with a > 0 align with the
   extremal vector at 35°, neurons with a < 0 with the one at 145°, the others die (shaded
   arc). The exact enumeration (stationary_directions_2d), the closed form's crossing
   count and end directions are printed against the full flow.
2. The failure case (three points x = -1, 0, 1, y = 1, 0.1, 1): every live neuron collapses
   onto the one extremal direction (all points active), the network is affine on the data
   and the full flow then sits on the least-squares plateau.

Reproduces the abstract's "alignment of the neurons towards key directions" as a polar
picture (the paper's figures were not read; its code animates the same neuron directions,
github.com/eboursier/early_alignment/animations). Key numbers (tested): the live neurons'
end directions lie on the exact extremal directions (D(u) parallel to u), and in part 2 the
final loss is the least-squares loss.

Run: ``python examples/early_alignment_polar.py [--out DIR]`` -> polar_sign.png,
polar_failure.png (default DIR: a new temporary directory); run time: about 10 s (measured).
"""

import sys

import numpy as np
from _out import out_dir, parser

import exactdyn as ed
from exactdyn.closed_form.early_alignment import alignment_path, stationary_directions_2d
from exactdyn.models.datasets import boursier_flammarion_data, least_squares_loss
from exactdyn.numeric.twolayer import solve_two_layer


def describe(net):
    stat, dead = stationary_directions_2d(net)
    for s in stat:
        who = {1: "a > 0", -1: "a < 0", 0: "none"}[s.attracts]
        print(f"   {s.kind:9s} {np.degrees(s.angle):8.3f} deg   Phi = {s.phi:+.4f}   "
              f"attracts {who}")
    for lo, hi in dead:
        print(f"   dead arc  [{np.degrees(lo):.1f}, {np.degrees(hi):.1f}] deg")
    return stat


def compare(net, T):
    """Closed form vs full flow at time T: directions, and the crossing count."""
    path = alignment_path(net, T)
    full = ed.solve(net, [0.0, T], rtol=1e-10)
    _a, Wc = path.state([T])
    Wf = full["W"][-1]
    cos = np.sum(Wc[0] * Wf, axis=1) / (np.linalg.norm(Wc[0], axis=1) * np.linalg.norm(Wf, axis=1))
    counts = {s: path.status.count(s) for s in sorted(set(path.status))}
    print(f"   t = {T:.3g}: closed form {len(path.crossings)} region changes, full flow "
          f"{full.meta['kinks']} kinks; min cos(closed form, full flow) = {cos.min():.10f}")
    print(f"   neuron end states: {counts}")
    return path


def sign_case(t_end=14.0, points=141, width=30):
    """Part 1: y = sign(x) on 8 points with a bias, balanced init 1e-4. Returns the network,
    its exact stationary directions, and the full flow's trajectory to ``t_end``."""
    x = np.linspace(-1.0, 1.0, 8)
    net = ed.TwoLayer(width, x, np.sign(x), init="balanced", beta1=1e-4, beta2=1e-4, seed=0)
    stat, _dead = stationary_directions_2d(net)
    traj = ed.solve(net, np.linspace(0.0, t_end, points), rtol=1e-10)
    return net, stat, traj


def failure_case(t_end=4000.0, width=10):
    """Part 2: the three points x = (-1, 0, 1), y = (1, 0.1, 1), balanced init 1e-3.
    Returns the network, its one attracting extremal direction and the full flow."""
    X, y = boursier_flammarion_data(0.1)
    bf = ed.TwoLayer(width, X, y, init="balanced", beta1=1e-3, beta2=1e-3, seed=1)
    stat, _dead = stationary_directions_2d(bf)
    (only,) = [s for s in stat if s.attracts != 0]
    ts = np.concatenate([np.linspace(0, 12, 61), np.geomspace(13, t_end, 60)])
    tb = solve_two_layer(bf, ts, max_kinks=3000)
    return bf, only, tb


def main(argv=None):
    out = out_dir(parser(__doc__, "early_alignment_polar").parse_args(argv).out,
                  "early_alignment_polar")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from exactdyn.plotting import plot_polar_directions
    except ImportError:  # pragma: no cover
        plt = None

    # ---- 1. y = sign(x) ----------------------------------------------------------------
    net, _stat, traj = sign_case()
    print("1. y = sign(x), 8 points, m = 30, balanced init 1e-4; stationary directions:")
    describe(net)
    compare(net, 12.0)
    if plt is not None:
        fig = plot_polar_directions(traj, net, times=[0, 2, 5, 14],
                                    title="y = sign(x): early alignment (full flow)")
        fig.savefig(out / "polar_sign.png", dpi=90, bbox_inches="tight")
        plt.close(fig)

    # ---- 2. the failure case -------------------------------------------------------------
    print("2. three-point data x = (-1, 0, 1), y = (1, 0.1, 1), m = 10, balanced init 1e-3:")
    bf, only, tb = failure_case()
    describe(bf)
    compare(bf, 8.0)
    X, y = bf.X[:, :1], bf.y
    ls = least_squares_loss(X, y)
    W = tb["W"][-1]
    live = np.linalg.norm(W, axis=1) > 1e-2
    cos = W[live] @ only.u / np.linalg.norm(W[live], axis=1)
    print(f"   t = 4000: {live.sum()} live neurons, min cos to the extremal vector "
          f"{cos.min():.6f}; loss {tb['loss'][-1]:.12f} vs least squares {ls:.12f} "
          f"(difference {tb['loss'][-1] - ls:.1e}), although a two-neuron V fits exactly")
    if plt is not None:
        fig = plt.figure(figsize=(11, 4.6))
        ax = fig.add_subplot(1, 2, 1, projection="polar")
        plot_polar_directions(tb, bf, times=[0, 2, 6, 12, 4000], ax=ax,
                              title="three-point data: all live neurons on one direction")
        ax2 = fig.add_subplot(1, 2, 2)
        ax2.semilogx(tb.t[1:], tb["loss"][1:], label="loss (full flow)")
        ax2.axhline(ls, color="k", ls="--", lw=0.8, label="least-squares (affine) loss")
        ax2.set(xlabel="t", ylabel="loss", title="…then the least-squares plateau")
        ax2.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "polar_failure.png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        print(f"wrote {out / 'polar_sign.png'} and {out / 'polar_failure.png'}")


if __name__ == "__main__":
    main(sys.argv[1:])
