"""exactdyn: exact training dynamics of small neural networks."""

from .closed_form import closed_form, exact
from .errors import IntegrationError
from .flows import gradient_flow, lower
from .models.linear import LinearNet, SingleNeuron
from .models.linear1d import Linear1D
from .solve import solve
from .trajectory import Trajectory
from .verify import VerificationReport, verify

__version__ = "0.1.0"

__all__ = ["IntegrationError", "Linear1D", "Trajectory", "VerificationReport", "closed_form",
           "exact", "gradient_flow", "lower", "solve", "verify", "__version__"]
__all__ += ["LinearNet", "SingleNeuron"]
