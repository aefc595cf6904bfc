"""A two-layer network written by the user over neuron, feature and sample indices.

.. math:: f(x_s) = \\frac1\\alpha\\sum_i a_i\\,\\sigma\\Big(\\sum_k W_{ik}X_{sk}\\Big),
          \\qquad L = \\frac1{2n}\\sum_s \\big(f(x_s) - Y_s\\big)^2,

the network of Luo et al. (JMLR 2021) and Chen et al. (2023) that exactdyn ships as
``TwoLayer``, here written in plain sympy as ``ed.Network(..., indices={i: d, k: D, s: n})``
with data arrays ``X[s, k]``, ``Y[s]`` and taken end to end: the derivation at free indices
(steps recorded), the lowered numpy code, float64 integration checked against the built-in
``TwoLayer``, 30-digit integration, gradient descent, the linear network's balance
:math:`a_j^2 - |W_j|^2` (Noether's quantity of one neuron's rescaling) proven and
conserved, a derivation report, and a phase diagram over (α, init scale) with a user
classifier.

Run time: about 30 s.

Usage::

    python examples/user_two_layer.py [--out DIR]

(default DIR: a new temporary directory).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import sympy as sp

import exactdyn as ed

i, k, s = sp.symbols("i k s", integer=True)
d, D, n = sp.symbols("d D n", integer=True, positive=True)
a, W, X, Y = (sp.IndexedBase(name) for name in ("a", "W", "X", "Y"))
alpha = sp.Symbol("alpha", positive=True)


def build_network(activation=sp.tanh, symmetries=None) -> ed.Network:
    """The two-layer network with ``activation`` (a smooth sympy function of one argument)."""
    pre = sp.Sum(W[i, k] * X[s, k], (k, 0, D - 1))
    f = sp.Sum(a[i] * activation(pre), (i, 0, d - 1)) / alpha
    return ed.Network("user_two_layer", params=[a, W], indices={i: d, k: D, s: n},
                      loss=sp.Sum((f - Y[s]) ** 2, (s, 0, n - 1)) / (2 * n), data=[X, Y],
                      hyper=[alpha], symmetries=symmetries,
                      citation="Luo, Xu, Ma, Zhang, JMLR 22 (2021) 1-47")


def final_loss_label(model):
    """A user classifier for the phase diagram: trained (the loss down by 10x at t = 20)
    or not."""
    loss = ed.solve(model, [0.0, 20.0])["loss"]
    ratio = float(loss[-1] / loss[0])
    return {"label": "trained" if ratio < 0.1 else "not trained", "scores": {"ratio": ratio}}


def main(argv=None) -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # examples/_out.py
    from _out import out_dir, parser

    args = parser(__doc__, "user_two_layer").parse_args(argv)
    out = str(out_dir(args.out, "user_two_layer"))
    rng = np.random.default_rng(0)
    X0 = rng.standard_normal((6, 2))
    Y0 = np.tanh(X0 @ np.array([1.0, -0.5]))  # a teacher neuron
    a0, W0 = 0.5 * rng.standard_normal(4), 0.5 * rng.standard_normal((4, 2))
    net = build_network()
    model = net.from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=1.0)
    flow = ed.gradient_flow(model)
    for eq in flow.equations():
        print(eq)
    print(ed.lower(model).sources["rhs"])

    t = np.linspace(0.0, 10.0, 11)
    traj = ed.solve(model, t)
    builtin = ed.solve(ed.TwoLayer.from_init(a0, W0, X0, Y0, activation="tanh", bias=False), t)
    print("state W:", traj["W"].shape, " loss:", traj["loss"][[0, -1]])
    print("largest difference from the built-in TwoLayer:",
          max(np.max(np.abs(traj[x] - builtin[x])) for x in ("a", "W")))
    hp = ed.solve(model, [0.0, 1.0], precision=30)
    print("W at t = 1 in 30 digits:", hp["W"][-1, 0, 0])
    gd = ed.gd(model, 0.01, [0.0, 1.0])
    print("GD (lr 0.01) against the flow at t = 1:", np.max(np.abs(gd["W"][-1] - hp["W"][-1]
                                                                   .astype(float))))

    # The rescaling a_j -> c a_j, W_j -> W_j / c of one neuron j (infinitesimally, with
    # KroneckerDelta(i, j)) is a symmetry of the linear network: a_j^2 - |W_j|^2 is conserved.
    j = sp.Symbol("j", integer=True)
    one_neuron = {a: sp.KroneckerDelta(i, j) * a[i], W: -sp.KroneckerDelta(i, j) * W[i, k]}
    linear = build_network(activation=lambda h: h, symmetries={"balance": one_neuron})
    lin = linear.from_init({"a": a0, "W": W0}, X=X0, Y=Y0, alpha=1.0)
    (q,) = ed.gradient_flow(lin).conserved
    lt = ed.solve(lin, t)
    per_neuron = lt["a"] ** 2 - np.sum(lt["W"] ** 2, axis=2)
    print(f"balance: Q_j = {q.expr}, proven {q.proven}; drift of a_j^2 - |W_j|^2:",
          np.max(np.abs(per_neuron - per_neuron[0])))
    rep = ed.report(lin, f"{out}/report", t=[0.0, 1.0, 2.0], precision=20)
    print("report written to", f"{out}/report", "-", type(rep).__name__)

    random = net.random_init(4, scale=0.5, seed=1, X=X0, Y=Y0, alpha=1.0)
    pd = ed.phase_diagram(random, x=("alpha", [0.25, 1.0, 4.0]), y=("scale", [0.01, 1.0]),
                          cell=final_loss_label, progress=False)
    print("phase diagram (rows: scale 0.01, 1; columns: alpha 0.25, 1, 4):")
    print(pd.labels)
    print("output in", out)


if __name__ == "__main__":
    main()
