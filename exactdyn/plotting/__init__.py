"""matplotlib figures, one module per subject; each function returns its figure (never shows it).

- :mod:`~exactdyn.plotting.saddles`: singular values against time, plateaus marked (deep linear).
- :mod:`~exactdyn.plotting.early_alignment`: neuron directions on polar axes (two-layer, 2-D).
- :mod:`~exactdyn.plotting.condensation`: cosine-similarity heat map, orientation / amplitude.
- :mod:`~exactdyn.plotting.cnn`: CNN kernels, their cosine similarity and alignment with u₁.
- :mod:`~exactdyn.plotting.phase_diagram`: phase diagrams, Luo et al.'s (γ, γ') diagram.
- :mod:`~exactdyn.plotting.sharpness`: sharpness against time with the line 2/lr.

The measures drawn are computed in :mod:`exactdyn.analysis` (and :mod:`exactdyn.regimes`);
matplotlib itself is imported by the first figure drawn.
"""

from .cnn import plot_kernel_cosine, plot_kernels, plot_u1_ratio
from .condensation import plot_condensation, plot_orientation_amplitude
from .early_alignment import plot_polar_directions
from .phase_diagram import plot_luo_diagram, plot_phase_diagram
from .saddles import plot_singular_values
from .sharpness import plot_sharpness

__all__ = ["plot_condensation", "plot_kernel_cosine", "plot_kernels", "plot_luo_diagram",
           "plot_orientation_amplitude", "plot_phase_diagram", "plot_polar_directions",
           "plot_sharpness", "plot_singular_values", "plot_u1_ratio"]
