"""exactdyn: exact training dynamics of small neural networks."""

from .closed_form import closed_form, exact
from .closed_form.early_alignment import alignment_path, early_alignment, extremal_vectors
from .errors import IntegrationError
from .flows import gradient_flow, lower
from .models.cnn import TwoLayerCNN
from .models.deep_linear import DeepLinear
from .models.linear import LinearNet, SingleNeuron
from .models.linear1d import Linear1D
from .models.twolayer import TwoLayer
from .regimes import Regime, classify
from .report import report
from .solve import solve
from .sweep import PhaseDiagram, phase_diagram
from .trajectory import Trajectory
from .verify import VerificationReport, verify

__version__ = "0.1.0"

__all__ = ["IntegrationError", "Linear1D", "Trajectory", "VerificationReport", "closed_form",
           "exact", "gradient_flow", "lower", "solve", "verify", "__version__"]
__all__ += ["report"]
__all__ += ["PhaseDiagram", "Regime", "classify", "phase_diagram"]
__all__ += ["DeepLinear"]
__all__ += ["LinearNet", "SingleNeuron"]
__all__ += ["TwoLayer"]
__all__ += ["TwoLayerCNN"]
__all__ += ["alignment_path", "early_alignment", "extremal_vectors"]
from .backward_error import GDVerification, verify_gd  # noqa: E402
from .descent import gd  # noqa: E402

__all__ += ["GDVerification", "gd", "verify_gd"]
from .analysis.sharpness import plot_sharpness, sharpness  # noqa: E402

__all__ += ["plot_sharpness", "sharpness"]
from . import probe  # noqa: E402

__all__ += ["probe"]
