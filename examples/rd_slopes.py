"""Luo et al.'s phase diagram measured (JMLR 2021; MATH.md §4): the slope of log RD against
log m at the (gamma, gamma') points (1/2, 0) [NTK, alpha = sqrt(m)], (1.75, 0),
(1.5, 0.25) and (1.25, 0.5), with the measured label against Luo et al.'s prediction.

Protocol: exactdyn.regimes.PROTOCOL (tanh, mirrored init so f starts at 0, data
"1d-linear" with n = 10, widths 16..4096, seeds 0..4, RD when the loss first reaches 5% of
its start). The dead band of the label is two standard errors of the seed-averaged slope
(exactdyn.regimes.noise_band). "heuristic" is the large-width slope of the docstring of
exactdyn.regimes.two_layer: (gamma - gamma' - 1)/2 condensed, 2(gamma - gamma' - 1) linear
with beta1 << beta2, -1/2 at NTK.

Reproduces the measurement behind Luo et al.'s diagram (their code fits
log RD(theta*_w) against log m, github.com/xuzhiqin1990/phasediagram_twolayerNN); the
paper's widths and figure numbers were not read. Key number (tested): the slope's sign on
each side of the theory line gamma = 1 (gamma' = 0), with RD over the whole network and
per copy as their code measures it (docs/papers/luo_chen.md).

Run: ``python examples/rd_slopes.py [--out DIR] [--quick]`` (default DIR: a new temporary
directory) -> rd_slopes.png; run time: about 40 s (measured on one core; ``--quick``: widths
16..1024, three seeds, about 10 s; (1.5, 0.25) is then within the noise band). It prints
each point as it is done.
"""

from __future__ import annotations

import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _out import out_dir, parser  # noqa: E402

from exactdyn.regimes import PROTOCOL, rd_slope  # noqa: E402

POINTS = [((0.5, 0.0), 0.5, -0.5), ((1.75, 0.0), 0.0, 0.375), ((1.5, 0.25), 0.0, 0.125),
          ((1.25, 0.5), 0.0, -0.5)]


def across_the_line(gamma_prime=0.0, gammas=(0.75, 1.75), widths=(16, 64, 256),
                    seeds=(0, 1, 2), rd="all"):
    """Key number: the RD slope on each side of the theory line gamma = 1 (at gamma' = 0):
    negative (linear) below it, positive (condensed) above, with the measured and predicted
    labels. ``rd="copy"`` measures RD on one copy of the mirrored init, as Luo et al.'s
    code does."""
    proto = dict(PROTOCOL, widths=widths, seeds=seeds)
    return {g: rd_slope(g, gamma_prime, rd=rd, progress=False, **proto) for g in gammas}


def main(out=None, quick=False):
    out = out_dir(out, "rd_slopes")
    proto = dict(PROTOCOL)
    if quick:
        proto.update(widths=(16, 64, 256, 1024), seeds=(0, 1, 2))
    print(f"widths {proto['widths']}, seeds {proto['seeds']}, {proto['activation']}, "
          f"data {proto['data']}, init {proto['init']}, loss fraction {proto['loss_fraction']}")
    print(f"{'(gamma, gamma_p)':>16} {'slope':>7} {'seed min..max':>14} {'band':>6} "
          f"{'heuristic':>9} {'measured':>9} {'predicted':>9} {'s':>5}")
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    for (g, gp), p, heur in POINTS:
        t0 = time.perf_counter()
        r = rd_slope(g, gp, alpha_exponent=p, **proto)
        print(f"{f'({g:g}, {gp:g})':>16} {r.slope:>+7.3f} "
              f"{f'{r.seed_slopes.min():+.2f}..{r.seed_slopes.max():+.2f}':>14} "
              f"{r.tol:>6.3f} {heur:>+9.3f} {r.label:>9} {r.predicted:>9} "
              f"{time.perf_counter() - t0:>5.1f}")
        m = np.asarray(r.widths, float)
        line, = ax.loglog(m, r.rd_mean, "o-", label=f"({g:g}, {gp:g}): slope {r.slope:+.2f}"
                          f" {r.label} (Luo: {r.predicted})")
        ax.loglog(m, r.rd, ".", color=line.get_color(), alpha=0.35)
    for kind in ("all", "copy"):
        side = across_the_line(rd=kind)
        print(f"either side of gamma = 1 (gamma' = 0), rd={kind!r}: " + ", ".join(
            f"gamma {g:g}: slope {r.slope:+.3f} {r.label} (Luo: {r.predicted})"
            for g, r in side.items()))
    ax.set_xlabel("width m")
    ax.set_ylabel("RD at loss = 5% of start")
    ax.set_title(r"RD over widths at Luo et al.'s $(\gamma, \gamma')$")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "rd_slopes.png", dpi=120)
    plt.close(fig)
    print(f"figure in {out}")
    return out


if __name__ == "__main__":
    p = parser(__doc__, "rd_slopes")
    p.add_argument("--quick", action="store_true",
                   help="widths 16..1024, three seeds (a few seconds)")
    args = p.parse_args(sys.argv[1:])
    main(args.out, quick=args.quick)
