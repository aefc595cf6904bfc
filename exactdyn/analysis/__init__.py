"""Analyses of trajectories: saddle-to-saddle plateaus, NTK movement (deep linear)."""

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
