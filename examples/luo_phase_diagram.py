"""Luo, Xu, Ma, Zhang (JMLR 2021): the (gamma, gamma') phase diagram of two-layer networks
at infinite width, from theory (MATH.md §4), with the NTK, mean-field, Xavier, LeCun (and
He, 1/m) inits marked. gamma = lim -log(beta1 beta2/alpha)/log m,
gamma' = lim -log(beta1/beta2)/log m.

Run: ``python examples/luo_phase_diagram.py [--out DIR]`` -> luo_phase_diagram.{png,svg}
(default DIR: a new temporary directory); run time: about 6 s (measured).
"""

import sys

import numpy as np
from _out import out_dir, parser

from exactdyn.regimes import TWO_LAYER_INITS, luo_exponents
from exactdyn.regimes.plots import plot_luo_diagram

out = out_dir(parser(__doc__, "luo_phase_diagram").parse_args(sys.argv[1:]).out,
              "luo_phase_diagram")
for ext in ("png", "svg"):
    plot_luo_diagram(out / f"luo_phase_diagram.{ext}",
                     inits=("ntk", "mean-field", "xavier", "lecun", "he", "std-1/m"))
for name, ini in TWO_LAYER_INITS.items():
    print(f"{name:>10}: (gamma, gamma') = ({ini.gamma:.2f}, {ini.gamma_prime:.2f}) -> "
          f"{ini.label}   [{ini.note}]")
# The same exponents fitted from the actual Xavier formulas over widths (input dim 10):
m = 2.0 ** np.arange(8, 21)
g, gp = luo_exponents(1.0, np.sqrt(2 / (m + 1)), np.sqrt(2 / (10 + m)), m)
print(f"Xavier fitted over m = 2^8..2^20: gamma = {g:.4f}, gamma' = {gp:.4f}")
