"""Failure of early alignment (Boursier & Flammarion, arXiv:2401.10791, Assumption 3;
MATH.md §4): three points x = (-1, 0, 1), y = (1, eta, 1) with a bias.

1. balanced small init (a_k = ±||w_k||, scale 1e-3): every surviving neuron aligns with the
   all-active direction, the ReLU network is affine on the data and gradient flow stops at
   the least-squares loss (1 - eta)^2 / 9;
2. two balanced ReLU neurons (a V) fit the data exactly;
3. an unbalanced Gaussian init (|a| << ||w||) reaches (near) zero loss.

Reproduces the failure case of the abstract ("overparameterised networks fail to converge
towards global minima and only converge to a spurious stationary point") on the member of
their Assumption 3 family with x1 = -1, x3 = 1 (the open ends), bias 1, outer labels 1 and
eta = 0.1; scale lambda = 1e-3 as their code's default (here on both layers, m = 10 instead
of their 20000). Key number (tested): the balanced init's final loss equals the
least-squares loss (1 - eta)^2/9 = 0.09. Part 4 runs the paper's own section-5 instance
(their code's "3 points" data) from their code's dominated init (init="dominated_bf",
lambda = 1e-3): its final loss is that data's least-squares loss.

Run: ``python examples/early_alignment_failure.py [--out DIR]`` -> early_alignment_failure.png
(default DIR: a new temporary directory); run time: about 10 s (measured).
"""

import sys

import numpy as np
from _out import out_dir, parser

import exactdyn as ed
from exactdyn.models.datasets import (
    boursier_flammarion_data,
    boursier_flammarion_instance,
    least_squares_loss,
    v_shape_weights,
)
from exactdyn.numeric.twolayer import solve_two_layer

ETA = 0.1


def section5(width=10, lam=1e-3, t_end=20000.0):
    """The paper's own section-5 instance (their code's "3 points" data) from their code's
    dominated init (init="dominated_bf", scale lam/sqrt(m)): final loss and the data's
    least-squares loss."""
    X5, y5 = boursier_flammarion_instance()
    bf5 = ed.TwoLayer(width, X5, y5, init="dominated_bf", beta1=lam / np.sqrt(width),
                      beta2=lam / np.sqrt(width), seed=0)
    t5 = solve_two_layer(bf5, [0.0, t_end / 20, t_end], max_kinks=5000)
    return {"section5": float(t5["loss"][-1]),
            "section5_least_squares": least_squares_loss(X5, y5)}


def key_numbers(eta=ETA, width=10, t_end=4000.0, with_section5=True):
    """The script's numbers: the least-squares loss (1 - eta)^2/9, the balanced init's final
    loss (equal to it: the spurious stationary point), the V's loss (0) and the unbalanced
    Gaussian init's final loss (near 0)."""
    X, y = boursier_flammarion_data(eta)
    T = [0.0, t_end / 80, t_end / 20, t_end / 4, t_end]
    bal = ed.TwoLayer(width, X, y, init="balanced", beta1=1e-3, beta2=1e-3, seed=1)
    tb = solve_two_layer(bal, T, max_kinks=3000)
    a, W = v_shape_weights(eta)
    v = ed.TwoLayer.from_init(a, W, X, y)
    gau = ed.TwoLayer(width, X, y, init="gaussian", beta1=1e-3, beta2=0.3, seed=2)
    tg = solve_two_layer(gau, [0.0, 100.0, 1000.0], max_kinks=3000)
    return {"least_squares": least_squares_loss(X, y), "balanced": float(tb["loss"][-1]),
            **(section5(width) if with_section5 else {}),
            "v_shape": float(ed.lower(v).observe(a, W)[1]), "gaussian": float(tg["loss"][-1]),
            "X": X, "y": y, "v": (a, W), "balanced_traj": tb, "gaussian_traj": tg,
            "t_end": t_end}


def main(argv=None):
    out = out_dir(parser(__doc__, "early_alignment_failure").parse_args(argv).out,
                  "early_alignment_failure") / "early_alignment_failure.png"
    k = key_numbers()
    X, y, ls, tb, tg = k["X"], k["y"], k["least_squares"], k["balanced_traj"], k["gaussian_traj"]
    print(f"least-squares (affine fit) loss      {ls:.12g}   ((1-eta)^2/9 = "
          f"{(1 - ETA)**2 / 9:.12g})")
    print(f"1. balanced init, m=10, t={k['t_end']:g}:  loss {k['balanced']:.12g}   "
          f"(minus least squares: {k['balanced'] - ls:.2e})")
    a, W = k["v"]
    print(f"2. two-neuron V:                      loss {k['v_shape']:.3e}   "
          f"a = {np.round(a, 4)}, W = {np.round(W, 4).tolist()}")
    print(f"3. gaussian init (beta1=1e-3, beta2=0.3), m=10, t=1000: loss {k['gaussian']:.3e}")
    print(f"4. their section-5 data x = (-0.75, -0.5, 0.125), y = (1.1, 0.1, 0.8), their "
          f"code's dominated init (lambda = 1e-3, m = 10), t = 20000: loss "
          f"{k['section5']:.12g} vs least squares {k['section5_least_squares']:.12g}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, traj, title in [(axes[0], tb, "balanced init (ends at least squares)"),
                            (axes[1], tg, "gaussian init (fits)")]:
        for i, (xi, yi) in enumerate(zip(X[:, 0], y)):
            ax.plot([0, xi], [0, 1], color="0.7", lw=0.8)  # the inputs (x_i, 1)
            ax.annotate(f"x{i + 1}, y={yi:g}", (xi, 1), fontsize=8)
        Wf, af = traj["W"][-1], traj["a"][-1]
        u = Wf / np.linalg.norm(Wf, axis=1, keepdims=True)
        r = np.abs(af) / np.abs(af).max()
        for uk, rk, ak in zip(u, r, af):
            ax.arrow(0, 0, rk * uk[0], rk * uk[1], color="C3" if ak > 0 else "C0",
                     width=0.005, length_includes_head=True)
        ax.set(xlim=(-1.3, 1.3), ylim=(-1.3, 1.3), aspect="equal", title=title,
               xlabel="w (input weight)", ylabel="b (bias)")
    fig.suptitle("final neuron directions w_k/|w_k|, length |a_k|/max|a| (red a>0, blue a<0)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"saved {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
