"""Phase diagram of the 1-D linear network (Xu & Ziyin, arXiv:2401.07085; MATH.md §1).

200 x 200 grid over the readout init scale sigma_u and the output scale kappa at width 64,
from the closed forms (vectorized: well under a second). Regimes (kernel where the NTK
stays; alignment where the teacher-signed zeta rises; disalignment where |zeta| falls, e.g.
a seed whose p0 has the teacher's opposite sign) with the label boundaries dashed, the order
parameter chi = |p*|/k' as a colour map, and the named
parametrizations (NTK, mean-field, standard) marked at width 64.

Run: ``python examples/phase_diagram_linear1d.py [--out DIR]`` ->
linear1d_phase_diagram.{png,svg,json} (default DIR: a new temporary directory); run time:
about 35 s (measured; the grid itself is vectorized, the figures take the rest).
"""

import sys

import numpy as np
from _out import out_dir, parser

import exactdyn as ed

out = out_dir(parser(__doc__, "phase_diagram_linear1d").parse_args(sys.argv[1:]).out,
              "phase_diagram_linear1d")
pd = ed.phase_diagram(ed.Linear1D, x=("sigma_u", np.geomspace(1e-3, 1e1, 200)),
                      y=("kappa", np.geomspace(1e-4, 1e2, 200)),
                      fixed={"width": 64, "seed": 0}, quantity="chi")
for ext in ("png", "svg"):
    pd.plot(out / f"linear1d_phase_diagram.{ext}")
pd.plot(out / "linear1d_alignment_score.png", quantity="alignment_score")
pd.to_json(out / "linear1d_phase_diagram.json")
ag = pd.agreement()
print("cells per label:", pd.counts())
print(f"measured = predicted on {ag['fraction']:.2%} of the {ag['compared']} cells more than "
      f"one step from a theory boundary; disagreements: {ag['disagreements']}")
for name in ("ntk", "mean-field", "standard", "mup"):
    par = ed.regimes.parametrization(name)
    print(f"{name:>10}: log_d chi -> {par.exponent:+.2f} ({par.label}); at d = 64: "
          f"{ed.classify(ed.Linear1D(**par.hyperparameters(64))).label}")
