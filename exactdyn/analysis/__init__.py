"""Analyses of trajectories: saddle-to-saddle plateaus, NTK movement (deep linear)."""

from .ntk import deep_linear_ntk, kernel_distance, ntk_movement
from .saddles import Plateau, SaddleAnalysis, analyze_saddles, numerical_rank

__all__ = ["Plateau", "SaddleAnalysis", "analyze_saddles", "deep_linear_ntk",
           "kernel_distance", "ntk_movement", "numerical_rank"]
