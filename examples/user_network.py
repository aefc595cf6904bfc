"""A network exactdyn does not ship, taken end to end: the diagonal linear network.

.. math:: f = \\sum_i (u_i^2 - v_i^2), \\qquad L = \\tfrac12\\big(f - \\beta^*\\big)^2,

the "diagonal linear network" of the implicit-bias literature (Woodworth et al., COLT 2020,
with one scalar target), written in plain sympy and run through exactdyn's pipeline:
derivation (steps recorded), a declared symmetry proven conserved (Noether), float64 and
30-digit integration, a user-supplied closed form (a Riccati solution) proven by its
symbolic residual and verified against the integrator, a derivation report, and a phase
diagram over (β*, init scale) with a user-supplied classifier.

Run time: about 20 s with ``--quick`` (the closed form's symbolic proof is skipped), about
1–2 minutes without (sympy simplifies the Riccati residual).

Usage::

    python examples/user_network.py [--out DIR] [--quick]

(default DIR: a new temporary directory).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import sympy as sp

import exactdyn as ed


def build_network(with_closed_form: bool = True) -> ed.Network:
    i, d = sp.symbols("i d", integer=True)
    u, v = sp.IndexedBase("u"), sp.IndexedBase("v")
    beta = sp.Symbol("beta_star")
    # The closed form: u_i = u0_i / sqrt(z), v_i = v0_i sqrt(z), z = exp(4 ∫ r) obeys the
    # Riccati equation z' = 4(A - beta z - B z^2), A = |u0|^2, B = |v0|^2.
    t = sp.Symbol("t", nonnegative=True)
    u0, v0 = sp.IndexedBase("u0"), sp.IndexedBase("v0")
    A = sp.Sum(u0[i] ** 2, (i, 0, d - 1))
    B = sp.Sum(v0[i] ** 2, (i, 0, d - 1))
    lam = sp.sqrt(beta**2 + 4 * A * B)
    z_plus, z_minus = (-beta + lam) / (2 * B), (-beta - lam) / (2 * B)
    decay = (1 - z_plus) / (1 - z_minus) * sp.exp(-4 * lam * t)
    z = (z_plus - z_minus * decay) / (1 - decay)
    return ed.Network(
        "diag_linear", params=[u, v], index=i, width=d,
        loss=(sp.Sum(u[i] ** 2 - v[i] ** 2, (i, 0, d - 1)) - beta) ** 2 / 2,
        hyper=[beta],
        symmetries={"Q": {u: v[i], v: u[i]}},  # (u, v) -> (u + s v, v + s u)
        observables={"f": sp.Sum(u[i] ** 2 - v[i] ** 2, (i, 0, d - 1))},
        closed_form=ed.ClosedForm({u: u0[i] / sp.sqrt(z), v: v0[i] * sp.sqrt(z)},
                                  {u: u0, v: v0}, t=t) if with_closed_form else None,
        citation="B. Woodworth et al., Kernel and rich regimes in overparametrized models, "
                 "COLT 2020 (the diagonal linear network).")


def converged_or_not(model):
    """A user's classifier for the phase diagram (module level: picklable)."""
    loss = float(ed.solve(model, [0.0, 5.0])["loss"][-1])
    return {"label": "fitted" if loss < 1e-8 else "plateau", "scores": {"loss": loss}}


def main(argv=None):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # examples/_out.py
    from _out import out_dir, parser

    p = parser(__doc__, "user_network")
    p.add_argument("--quick", action="store_true",
                   help="skip the symbolic proof of the closed form (report and proof)")
    args = p.parse_args(argv)
    out = str(out_dir(args.out, "user_network"))

    net = build_network()
    model = net.from_init({"u": [0.3, 0.1, -0.2], "v": [0.05, 0.2, 0.1]}, beta_star=0.5)
    flow = ed.gradient_flow(model)
    for eq in flow.equations():
        print(eq)
    for q in flow.conserved:
        print(f"conserved {q.name} = {q.expr}  (proven: {q.proven})")

    t = np.linspace(0.0, 4.0, 9)
    traj = ed.solve(model, t)
    hp = ed.solve(model, t, precision=30)
    print("loss(t):", traj["loss"])
    print("f(4) at 30 digits:", hp["f"][-1])
    print(ed.verify(model, t))
    print(ed.verify(model, t, precision=30))
    if not args.quick:
        print("closed form proven:", ed.closed_form(model).proven)
        ed.report(model, os.path.join(out, "report"), t=t, precision=30, figures=True)
    else:  # the same network without its closed form: a report without the slow proof
        plain = build_network(with_closed_form=False).from_init(
            model.initial_state(), beta_star=0.5)
        ed.report(plain, os.path.join(out, "report"), t=t, precision=20, figures=False)
    pd = ed.phase_diagram(net.random_init(3, scale=0.3, seed=0, beta_star=0.5),
                          x=("beta_star", np.geomspace(0.02, 2.0, 4)),
                          y=("scale", np.geomspace(0.01, 1.0, 3)),
                          cell=converged_or_not, progress=False)
    print(pd.labels)
    print("written to", out)


if __name__ == "__main__":
    main()
