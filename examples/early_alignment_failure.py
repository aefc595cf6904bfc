"""Failure of early alignment (Boursier & Flammarion, arXiv:2401.10791, Assumption 3;
MATH.md §4): three points x = (-1, 0, 1), y = (1, eta, 1) with a bias.

1. balanced small init (a_k = ±||w_k||, scale 1e-3): every surviving neuron aligns with the
   all-active direction, the ReLU network is affine on the data and gradient flow stops at
   the least-squares loss (1 - eta)^2 / 9;
2. two balanced ReLU neurons (a V) fit the data exactly;
3. an unbalanced Gaussian init (|a| << ||w||) reaches (near) zero loss.

Run: ``python examples/early_alignment_failure.py [--out DIR]`` -> early_alignment_failure.png
(default DIR: a new temporary directory); run time: about 10 s (measured).
"""

import sys

import numpy as np
from _out import out_dir, parser

import exactdyn as ed
from exactdyn.datasets import boursier_flammarion_data, least_squares_loss, v_shape_weights
from exactdyn.numeric.twolayer import solve_two_layer

out = out_dir(parser(__doc__, "early_alignment_failure").parse_args(sys.argv[1:]).out,
              "early_alignment_failure") / "early_alignment_failure.png"

ETA = 0.1
X, y = boursier_flammarion_data(ETA)
T = [0.0, 50.0, 200.0, 1000.0, 4000.0]
ls = least_squares_loss(X, y)
print(f"least-squares (affine fit) loss      {ls:.12g}   ((1-eta)^2/9 = {(1 - ETA)**2 / 9:.12g})")

bal = ed.TwoLayer(10, X, y, init="balanced", beta1=1e-3, beta2=1e-3, seed=1)
tb = solve_two_layer(bal, T, max_kinks=3000)
print(f"1. balanced init, m=10, t={T[-1]:g}:  loss {tb['loss'][-1]:.12g}   "
      f"(minus least squares: {tb['loss'][-1] - ls:.2e})")

a, W = v_shape_weights(ETA)
v = ed.TwoLayer.from_init(a, W, X, y)
print(f"2. two-neuron V:                      loss {ed.lower(v).observe(a, W)[1]:.3e}   "
      f"a = {np.round(a, 4)}, W = {np.round(W, 4).tolist()}")

gau = ed.TwoLayer(10, X, y, init="gaussian", beta1=1e-3, beta2=0.3, seed=2)
tg = solve_two_layer(gau, [0.0, 100.0, 1000.0], max_kinks=3000)
print(f"3. gaussian init (beta1=1e-3, beta2=0.3), m=10, t=1000: loss {tg['loss'][-1]:.3e}")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit(0)
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
