"""exactdyn: exact training dynamics of small neural networks."""

from . import probe
from ._version import __version__
from .analysis.sharpness import plot_sharpness, sharpness
from .backward_error import GDVerification, verify_gd
from .cite import cite
from .closed_form import closed_form, exact
from .closed_form.early_alignment import alignment_path, early_alignment, extremal_vectors
from .descent import gd
from .errors import IntegrationError, PrecisionWarning
from .flows import gradient_flow, lower
from .models.cnn import TwoLayerCNN
from .models.deep_linear import DeepLinear
from .models.linear import LinearNet, SingleNeuron
from .models.linear1d import Linear1D
from .models.network import ClosedForm, Network
from .models.twolayer import TwoLayer
from .regimes import Regime, classify
from .report import report
from .solve import solve
from .sweep import PhaseDiagram, phase_diagram
from .trajectory import Trajectory, load
from .verify import VerificationReport, verify

__all__ = ["IntegrationError", "Linear1D", "Trajectory", "VerificationReport", "closed_form",
           "exact", "gradient_flow", "lower", "solve", "verify", "__version__"]
__all__ += ["load", "report"]
__all__ += ["PhaseDiagram", "Regime", "classify", "phase_diagram"]
__all__ += ["DeepLinear"]
__all__ += ["LinearNet", "SingleNeuron"]
__all__ += ["TwoLayer"]
__all__ += ["TwoLayerCNN"]
__all__ += ["alignment_path", "early_alignment", "extremal_vectors"]
__all__ += ["ClosedForm", "Network"]
__all__ += ["cite"]
__all__ += ["GDVerification", "gd", "verify_gd"]
__all__ += ["plot_sharpness", "sharpness"]
__all__ += ["probe"]
__all__ += ["PrecisionWarning"]
