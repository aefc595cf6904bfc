"""Probes: the papers' measures on weight snapshots of any network (numpy, torch, ...).

``from exactdyn import probe``; ``probe.rd(W0, Wt)``, ``probe.condensation(W)``, ... See
:mod:`exactdyn.probe.measures`. The optional PyTorch recorder is
:class:`exactdyn.probe.torch.SnapshotRecorder` (imported only when used).

The package lives in :mod:`exactdyn.analysis` with the other measures; ``exactdyn.probe``,
its public path, is this very module (``exactdyn/_moved.py`` files it under both names).
"""

from .measures import (
                       Alignment,
                       Condensation,
                       ExtremalAlignment,
                       RankPlateau,
                       Slope,
                       alignment,
                       as_array,
                       condensation,
                       extremal_alignment,
                       kernel_distance,
                       mechanism,
                       ntk_from_jacobian,
                       numerical_rank,
                       plateaus,
                       rd,
                       rd_slope,
                       singular_values,
)

__all__ = ["Alignment", "Condensation", "ExtremalAlignment", "RankPlateau", "Slope",
           "alignment", "as_array", "condensation", "extremal_alignment", "kernel_distance",
           "mechanism", "ntk_from_jacobian", "numerical_rank", "plateaus", "rd", "rd_slope",
           "singular_values"]
