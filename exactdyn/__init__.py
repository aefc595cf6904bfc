"""exactdyn: exact training dynamics of small neural networks."""

from .errors import IntegrationError
from .flows import gradient_flow, lower
from .models.linear1d import Linear1D
from .solve import solve
from .trajectory import Trajectory

__version__ = "0.1.0"

__all__ = ["IntegrationError", "Linear1D", "Trajectory", "gradient_flow", "lower", "solve",
           "__version__"]
