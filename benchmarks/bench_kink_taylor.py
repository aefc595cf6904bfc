"""Would a Taylor-series integrator win on kinked ReLU flows? (issue 15, item 1: "consider
a Taylor-series integrator for kinked float64 flows ... if it wins").

With the activation pattern frozen, the two-layer ReLU flow (MATH.md §3,
:math:`\\sigma(h) = s\\,h`, s = 1 on and 0 off) is polynomial in (a, W), so its Taylor
series at a state follow from Cauchy products (Jorba & Zou, Exp. Math. 2005; heyoka,
Biscani & Izzo, MNRAS 2021), order by order, with :math:`H_p = W_pX^\\top`,
:math:`\\Sigma_p = s\\circ H_p`, :math:`E_p = \\frac1\\alpha\\sum_q a_q\\Sigma_{p-q} - y[p=0]`:

.. math::

    a_{p+1} = -\\frac{1}{(p+1)\\alpha n}\\sum_{q\\le p}\\Sigma_qE_{p-q},\\qquad
    W_{p+1} = -\\frac{1}{(p+1)\\alpha n}\\sum_{q\\le p}a_q\\circ\\big((s\\circ E_{p-q})X\\big),

each order a few vectorized numpy products over the stacked lower orders. Such a step
would locate kinks exactly on the series of :math:`h_{kj}` (no dense-output stages) and
restart without an extra evaluation; the decisions at a kink would cost what they cost
now. So what decides is one series against the integrator's work per kink now: one
DOP853 step that the kink cuts short (12 evaluations), its dense output (3) and the
restart (1) of the kinked rhs.

At states along the ``teacher`` run of ``bench_twolayer_gd.py`` (m = 64, n = 40, d = 4,
1,360 kinks on t <= 50, nearly one per step), each with its own pattern, this measures in
one process, alternating, best of several: the series to order p = 13 (heyoka's order
for a tolerance of 1e-10, :math:`\\lceil -\\tfrac12\\ln \\varepsilon + 1\\rceil`) with its
step size (heyoka's rule from the last two coefficients), one frozen rhs evaluation
(``KinkState.rhs``), and the DOP853 step the kinked solve takes there. Checked: the
series' first coefficient equals the rhs and its sum at a small step agrees with a DOP853
step to the tolerance.

Run: ``python benchmarks/bench_kink_taylor.py`` (prints a Markdown table).
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_twolayer_gd as bench  # noqa: E402

import exactdyn as ed  # noqa: E402
from exactdyn.numeric.kinks import KinkState  # noqa: E402
from exactdyn.numeric.runge_kutta import DOP853  # noqa: E402

RTOL = 1e-10
ORDER = math.ceil(-0.5 * math.log(RTOL) + 1)


class FrozenSeries:
    """Taylor coefficients of the frozen-pattern two-layer flow (module docstring), with
    preallocated stacks of the lower orders."""

    def __init__(self, X, y, alpha, slopes, order):
        self.X, self.y, self.alpha = X, y, alpha
        self.s = slopes  # (m, n)
        m, n = slopes.shape
        d = X.shape[1]
        self.order = order
        self.A = np.zeros((order + 1, m))
        self.W = np.zeros((order + 1, m, d))
        self.Sig = np.zeros((order + 1, m, n))
        self.E = np.zeros((order + 1, n))
        self.Z = np.zeros((order + 1, m, d))

    def __call__(self, a, W):
        A, Wc, Sig, E, Z, s, X = self.A, self.W, self.Sig, self.E, self.Z, self.s, self.X
        c = -1.0 / (self.alpha * len(self.y))
        A[0], Wc[0] = a, W
        for p in range(self.order):
            np.multiply(s, Wc[p] @ X.T, out=Sig[p])
            f = np.einsum("qm,qmn->n", A[:p + 1], Sig[p::-1]) / self.alpha
            E[p] = f - self.y if p == 0 else f
            np.matmul(s * E[p], X, out=Z[p])
            adot = np.einsum("qmn,qn->m", Sig[:p + 1], E[p::-1])
            wdot = np.einsum("qm,qmd->md", A[:p + 1], Z[p::-1])
            A[p + 1] = (c / (p + 1)) * adot
            Wc[p + 1] = (c / (p + 1)) * wdot
        return A, Wc

    def step_size(self, a, W, tol):
        """heyoka's step: rho = min over the last two orders of (1/|c_p|)^(1/p) (norms
        relative to max(1, |state|)), h = rho / e^2."""
        scale = max(1.0, float(np.abs(a).max()), float(np.abs(W).max()))
        rho = math.inf
        for p in (self.order - 1, self.order):
            norm = max(float(np.abs(self.A[p]).max()), float(np.abs(self.W[p]).max())) / scale
            if norm > 0:
                rho = min(rho, (1.0 / norm) ** (1.0 / p))
        return rho / math.e ** 2 * tol ** (1.0 / self.order)


def best(f, repeat=7, number=20):
    out = math.inf
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(number):
            f()
        out = min(out, (time.process_time() - t0) / number)
    return out


def main():
    net = bench.build("teacher", bench.M, bench.N_SAMPLES)
    low = ed.lower(net).kink
    times = np.linspace(0.0, 50.0, 11)[1:]
    traj = ed.solve(net, times)
    rows = []
    for t, a, W in zip(times, traj["a"], traj["W"]):
        y = low.flow.pack(a, W)
        state = KinkState(low, y, RTOL, RTOL)
        y = state.update(y, state.at_boundary(y))
        a, W = low.flow.unpack(y)["a"], low.flow.unpack(y)["W"]
        Xk = np.asarray(net.X, float)
        slopes = state.mask.astype(float)
        series = FrozenSeries(Xk, np.asarray(net.y, float), float(net.alpha), slopes, ORDER)
        A, Wc = series(a, W)
        # the first coefficient is the frozen rhs (no sliding entries in these checks)
        f = state.rhs(0.0, y)
        fa, fW = low.flow.unpack(f)["a"], low.flow.unpack(f)["W"]
        if not state.sliding:
            np.testing.assert_allclose(A[1], fa, rtol=1e-12, atol=1e-15 * np.abs(fa).max())
            np.testing.assert_allclose(Wc[1], fW, rtol=1e-12, atol=1e-15 * np.abs(fW).max())
        h_taylor = series.step_size(a, W, RTOL)
        solver = DOP853(state.rhs, 0.0, y, 1e3, rtol=RTOL, atol=RTOL)
        solver.step()
        h_dop = solver.step_size
        if not state.sliding:  # the series' sum agrees with the DOP853 step
            powers = h_dop ** np.arange(ORDER + 1)
            ends = low.flow.pack(powers @ A, np.einsum("p,pmd->md", powers, Wc))
            assert np.abs(ends - solver.y).max() <= 1e3 * RTOL * np.abs(solver.y).max()
        t_series = best(lambda: series(a, W))
        t_rhs = best(lambda: state.rhs(0.0, y), number=200)

        def dop_step():
            s = DOP853(state.rhs, 0.0, y, 1e3, rtol=RTOL, atol=RTOL, first_step=h_dop)
            s.step()
            s.dense_output()

        t_dop = best(dop_step)
        rows.append((t, state.sliding, t_series, t_rhs, t_dop, h_taylor, h_dop))
    print(f"Order {ORDER}, tolerance {RTOL:g}; times are CPU, best of 7.\n")
    print("| t | sliding | series (µs) | series / one rhs | DOP853 step + dense + restart "
          "(µs) | series / that | Taylor step h | DOP853 step h |")
    print("|---|---|---|---|---|---|---|---|")
    for t, sl, ts, tr, td, ht, hd in rows:
        print(f"| {t:g} | {'yes' if sl else 'no'} | {ts * 1e6:.0f} | {ts / tr:.1f} | "
              f"{(td + tr) * 1e6:.0f} | {ts / (td + tr):.2f} | {ht:.3g} | {hd:.3g} |")


if __name__ == "__main__":
    main()
