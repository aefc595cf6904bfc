"""Sweeps: grids, phase diagrams, executors, resumable cache."""

from .cache import CellCache
from .grid import make_range, parse_axis, parse_fixed
from .phase_diagram import PhaseDiagram, phase_diagram, trajectory_cell

__all__ = ["CellCache", "PhaseDiagram", "make_range", "parse_axis", "parse_fixed",
           "phase_diagram", "trajectory_cell"]
