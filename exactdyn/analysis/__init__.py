"""Measures of trajectories and weights; computed here, drawn by :mod:`exactdyn.plotting`.

- :mod:`~exactdyn.analysis.saddles`: saddle-to-saddle plateaus of deep linear networks [JG];
  :mod:`~exactdyn.analysis.ntk`: NTK movement; :mod:`~exactdyn.analysis.alignment`: layer
  alignment (both re-exported here).
- :mod:`~exactdyn.analysis.condensation`: cosine similarity of input weights, direction
  clusters, orientation / amplitude [ZX, LX]; :mod:`~exactdyn.analysis.cnn_measures`: the
  same for CNN kernels, with the label-weighted patch matrix Z [ZC].
- :mod:`~exactdyn.analysis.sharpness` (``ed.sharpness``) and
  :mod:`~exactdyn.analysis.backward_error` (``ed.verify_gd``): gradient descent against the
  flow.
- :mod:`~exactdyn.analysis.probe` (public as ``exactdyn.probe``): the papers' measures on
  weight snapshots of any network.

The other modules are imported on their own (sharpness and backward_error run the solver).
"""

from .alignment import (
    first_layer_alignment,
    layer_cosine,
    teacher_input_basis,
    trajectory_alignment,
    two_layer_zeta,
)
from .ntk import deep_linear_ntk, kernel_distance, ntk_movement
from .saddles import Plateau, SaddleAnalysis, analyze_saddles, numerical_rank

__all__ = ["Plateau", "SaddleAnalysis", "analyze_saddles", "deep_linear_ntk",
           "first_layer_alignment", "kernel_distance", "layer_cosine", "ntk_movement",
           "numerical_rank", "teacher_input_basis", "trajectory_alignment", "two_layer_zeta"]
