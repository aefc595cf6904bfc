"""Deep linear network (depth 3, teacher 4, 2, 1, decoupled init a = 0.05): the closed form
against integrating the full lowered flow and against a hand-written numpy right-hand side
(the baseline a user would write, run through the same DOP853), in one run; and the cost
of one right-hand-side call, generated against hand-written.

For widths 10, 100, 300, on t in [0, 60] with 11 output times: time of ``exact`` (state
and observables included), of ``solve`` (rtol 1e-10), of the hand-written baseline with
the same integrator and tolerances, and the max |end_to_end| error of ``solve`` against
``exact``.

Run: ``python benchmarks/bench_deep_linear.py`` (writes benchmarks/results/deep_linear.md).
"""

from __future__ import annotations

import os
import timeit

import numpy as np
from _timing import best_of
from scipy.integrate import solve_ivp

import exactdyn as ed
from exactdyn.flows import lower
from exactdyn.models.deep_linear import teacher_matrix


def handwritten_rhs(model):
    """Baseline: the numpy rhs a user would write by hand (W1, W2, W3)."""
    shapes = model.layer_shapes()
    sizes = [a * b for a, b in shapes]
    cuts = np.cumsum(sizes)[:-1]
    S = np.asarray(model.sigma_yx)

    def rhs(_, y):
        W1, W2, W3 = (p.reshape(s) for p, s in zip(np.split(y, cuts), shapes))
        G = W3 @ (W2 @ W1) - S
        return np.concatenate([(-(W2.T @ (W3.T @ G))).ravel(),
                               (-(W3.T @ G @ W1.T)).ravel(),
                               (-(G @ (W1.T @ W2.T))).ravel()])

    return rhs


def handwritten(model, t, rtol, atol):
    """The hand-written rhs through the same integrator and tolerances."""
    y0 = np.concatenate([v.ravel() for v in model.initial_state().values()])
    return solve_ivp(handwritten_rhs(model), (0, t[-1]), y0, method="DOP853", t_eval=t,
                     rtol=rtol, atol=atol)


def per_call(f, y, n=200):
    return min(timeit.repeat(lambda: f(0.0, y), number=n, repeat=3)) / n


def main():
    S = teacher_matrix([4.0, 2.0, 1.0], 3, 3)
    t = np.linspace(0, 60, 11)
    rows = []
    for width in (10, 100, 300):
        model = ed.DeepLinear.decoupled(3, width, S, mode_init=0.05)
        lower(model)  # derive and compile once, outside the timings
        rep = 3 if width <= 100 else 1
        t_exact, ref = best_of(lambda: ed.exact(model, t), rep)
        t_solve, num = best_of(lambda: ed.solve(model, t, rtol=1e-10), rep)
        t_hand, _ = best_of(lambda: handwritten(model, t, 1e-10, num.meta["atol"]), rep)
        err = float(np.abs(num["end_to_end"] - ref["end_to_end"]).max())
        lo = lower(model)
        y0 = lo.pack(model.initial_state())
        c_gen, c_hand = per_call(lo.rhs, y0), per_call(handwritten_rhs(model), y0)
        rows.append(f"| {width} | {t_exact * 1e3:.1f} ms | {t_solve * 1e3:.1f} ms "
                    f"({num.meta['nfev']} rhs) | {t_hand * 1e3:.1f} ms | "
                    f"{t_solve / t_exact:.0f}x | {c_gen * 1e6:.1f} / {c_hand * 1e6:.1f} µs | "
                    f"{err:.1e} |")
        print(rows[-1], flush=True)
    head = ("| width | exact | solve (DOP853) | hand-written rhs | solve / exact | "
            "rhs per call: generated / hand | max err end_to_end |\n|---:|---:|---:|---:|---:|---:|---:|")
    text = head + "\n" + "\n".join(rows) + "\n"
    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "results", "deep_linear.md"), "w") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
