"""Kunin et al.'s single neuron: the conserved imbalance delta moves it from lazy to rich
learning (arXiv:2406.06158, "Get rich quick").

f(x) = a w^T x on whitened data y = beta*^T x, with delta = eta_w a^2 - eta_a |w|^2 fixed
by the init and the initial product a0 |w0| held at 0.05. For each delta the closed form
(Riccati in nu = w.beta*/a, the Riccati solution for the state) gives the alignment
phi = cos(w, beta*), the magnitude mu = a|w| and the kernel movement. Large delta > 0 is
lazy (a barely moves, the NTK hardly changes); delta -> -inf rescales w without turning
it; delta ~ 0 is rich (w turns to beta* quickly, then the magnitude grows).

After the paper's lazy-to-rich picture of the single neuron (its figure numbers and
parameters were not read; see docs/papers/saxe_kunin.md). Key number (tested): the delta
where the measured kernel change crosses 0.1 (the single_neuron taxonomy's kernel_tol, ours)
against the small-init theory rho_K = 3.634 (n = 3, s = 1).

Run: ``python examples/kunin_lazy_rich.py [--out DIR]`` -> kunin_lazy_rich.png (default
DIR: a new temporary directory); run time: about 6 s (measured).
"""

from __future__ import annotations

import sys

import matplotlib
from _out import out_dir, parser

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import exactdyn as ed  # noqa: E402


def lazy_rich_transition(beta=(1.0, 0.0, 0.0), product=0.05, seed=2, lo=1.0, hi=10.0,
                         steps=30):
    """The delta where the measured NTK change crosses the single_neuron taxonomy's
    kernel_tol = 0.1 (rich below, lazy above), by bisection on the exact solution, with the
    measured labels on either side. Theory (Kunin et al.'s small-init limit, MATH.md §2):
    rho = delta/s at rho_K = 2/sqrt((1 + 2 tau/sqrt(1 + 3/n))^2 - 1) (3.634 for n = 3)."""
    from exactdyn.regimes.single_neuron import classify_single_neuron

    beta = np.asarray(beta, float)

    def change(delta):
        m = ed.SingleNeuron(beta.size, delta=delta, beta=beta, product=product, seed=seed)
        return classify_single_neuron(m)

    labels = (change(lo).label, change(hi).label)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if change(mid).evidence["ntk_change"] > 0.1:
            lo = mid
        else:
            hi = mid
    return {"delta_star": 0.5 * (lo + hi), "s": float(np.linalg.norm(beta)), "n": beta.size,
            "labels": labels}


def main(out=None):
    path = out_dir(out, "kunin_lazy_rich") / "kunin_lazy_rich.png"
    beta = np.array([1.0, 0.0, 0.0])
    t = np.linspace(0, 12, 241)
    deltas = [-10.0, -1.0, 0.0, 1.0, 10.0]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    print(f"{'delta':>7} {'phi(T)':>9} {'mu(T)':>9} {'|a(T)/a0 - 1|':>14} {'t(phi>0.99)':>12}")
    for delta in deltas:
        m = ed.SingleNeuron(3, delta=delta, beta=beta, product=0.05, seed=2)
        tr = ed.exact(m, t)
        phi, mu, a = tr["phi"], tr["mu"], tr["a"]
        t_al = t[np.argmax(np.abs(phi) > 0.99)] if np.any(np.abs(phi) > 0.99) else np.inf
        print(f"{delta:7.1f} {phi[-1]:9.4f} {mu[-1]:9.4f} {abs(a[-1] / a[0] - 1):14.3g} "
              f"{t_al:12.3g}")
        axes[0].plot(t, phi, label=f"δ = {delta:g}")
        axes[1].plot(t, mu, label=f"δ = {delta:g}")
        axes[2].plot(t, tr["loss"], label=f"δ = {delta:g}")
    axes[0].set_ylabel(r"alignment $\phi = \cos\angle(w, \beta^*)$")
    axes[1].set_ylabel(r"magnitude $\mu = a\,\|w\|$")
    axes[2].set_ylabel("loss")
    axes[2].set_yscale("log")
    axes[2].set_ylim(1e-20, 2.0)  # below ~1e-30 only float64 rounding of W - W* is left
    for ax in axes:
        ax.set_xlabel("t")
    axes[0].legend(fontsize=8)
    k = lazy_rich_transition()
    print(f"lazy-to-rich transition (measured NTK change = 0.1): delta* = "
          f"{k['delta_star']:.4f}, rho* = delta*/s = {k['delta_star'] / k['s']:.4f}")
    fig.suptitle("Kunin et al.: lazy (δ > 0) to rich (δ ≈ 0) to rescaling (δ < 0)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(parser(__doc__, "kunin_lazy_rich").parse_args(sys.argv[1:]).out)
