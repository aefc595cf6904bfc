"""Luo, Xu, Ma, Zhang (JMLR 2021): the (gamma, gamma') phase diagram of two-layer networks
at infinite width, from theory (MATH.md §4), with the NTK, mean-field, Xavier, LeCun (and
He, 1/m) inits marked. gamma = lim -log(beta1 beta2/alpha)/log m,
gamma' = lim -log(beta1/beta2)/log m.

Reproduces the diagram of the paper's title (its figure numbers and the body's statement of
the boundary were not read; docs/papers/luo_chen.md). Key numbers (tested): each named
init's (gamma, gamma') and label, against the exponents read off its scales at two widths.

Run: ``python examples/luo_phase_diagram.py [--out DIR]`` -> luo_phase_diagram.{png,svg}
(default DIR: a new temporary directory); run time: about 6 s (measured).
"""

import sys

from _out import out_dir, parser

from exactdyn.plotting import plot_luo_diagram
from exactdyn.regimes import TWO_LAYER_INITS


def named_inits():
    """``{name: (gamma, gamma', label)}`` of the inits marked on the diagram."""
    return {name: (ini.gamma, ini.gamma_prime, ini.label)
            for name, ini in TWO_LAYER_INITS.items()}


def main(argv=None):
    out = out_dir(parser(__doc__, "luo_phase_diagram").parse_args(argv).out,
                  "luo_phase_diagram")
    for ext in ("png", "svg"):
        plot_luo_diagram(out / f"luo_phase_diagram.{ext}",
                         inits=("ntk", "mean-field", "xavier", "lecun", "he", "std-1/m"))
    for name, ini in TWO_LAYER_INITS.items():
        print(f"{name:>10}: (gamma, gamma') = ({ini.gamma:.2f}, {ini.gamma_prime:.2f}) -> "
              f"{ini.label}   [{ini.note}]")


if __name__ == "__main__":
    main(sys.argv[1:])
