"""exactdyn: exact training dynamics of small neural networks.

The public names load on first use (PEP 562): ``import exactdyn`` is fast, and sympy, scipy
and matplotlib are imported with the first model, solver or figure that needs them.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

from . import _moved
from ._version import __version__

_moved.install()  # the module paths of 0.1.0 that moved still import (exactdyn/_moved.py)

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from . import diskcache
    from .analysis import probe
    from .analysis.backward_error import GDVerification, verify_gd
    from .analysis.sharpness import sharpness
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
    from .plotting.sharpness import plot_sharpness
    from .regimes import Regime, classify
    from .report import report
    from .solve import solve
    from .sweep import PhaseDiagram, phase_diagram
    from .trajectory import Trajectory, load
    from .verify import VerificationReport, verify

#: Public name -> (module, attribute); attribute None: the name is the module itself.
_LAZY = {
    "probe": (".probe", None),  # exactdyn.analysis.probe, under its public path (_moved.py)
    "diskcache": (".diskcache", None),
    "plot_sharpness": (".plotting.sharpness", 'plot_sharpness'),
    "sharpness": (".analysis.sharpness", 'sharpness'),
    "GDVerification": (".analysis.backward_error", 'GDVerification'),
    "verify_gd": (".analysis.backward_error", 'verify_gd'),
    "cite": (".cite", 'cite'),
    "closed_form": (".closed_form", 'closed_form'),
    "exact": (".closed_form", 'exact'),
    "alignment_path": (".closed_form.early_alignment", 'alignment_path'),
    "early_alignment": (".closed_form.early_alignment", 'early_alignment'),
    "extremal_vectors": (".closed_form.early_alignment", 'extremal_vectors'),
    "gd": (".descent", 'gd'),
    "IntegrationError": (".errors", 'IntegrationError'),
    "PrecisionWarning": (".errors", 'PrecisionWarning'),
    "gradient_flow": (".flows", 'gradient_flow'),
    "lower": (".flows", 'lower'),
    "TwoLayerCNN": (".models.cnn", 'TwoLayerCNN'),
    "DeepLinear": (".models.deep_linear", 'DeepLinear'),
    "LinearNet": (".models.linear", 'LinearNet'),
    "SingleNeuron": (".models.linear", 'SingleNeuron'),
    "Linear1D": (".models.linear1d", 'Linear1D'),
    "ClosedForm": (".models.network", 'ClosedForm'),
    "Network": (".models.network", 'Network'),
    "TwoLayer": (".models.twolayer", 'TwoLayer'),
    "Regime": (".regimes", 'Regime'),
    "classify": (".regimes", 'classify'),
    "report": (".report", 'report'),
    "solve": (".solve", 'solve'),
    "PhaseDiagram": (".sweep", 'PhaseDiagram'),
    "phase_diagram": (".sweep", 'phase_diagram'),
    "Trajectory": (".trajectory", 'Trajectory'),
    "load": (".trajectory", 'load'),
    "VerificationReport": (".verify", 'VerificationReport'),
    "verify": (".verify", 'verify'),
}

#: Public functions named as the module that defines them (``exactdyn.solve`` is the
#: function, as it was when every name was imported eagerly).
_SHADOWED = frozenset(n for n, (mod, attr) in _LAZY.items() if mod == f".{n}")


class _Package(types.ModuleType):
    """The package module: the import system binds a loaded submodule as an attribute of
    its package; for the names in :data:`_SHADOWED` that would hide the public function,
    so that binding is skipped (the submodule stays in ``sys.modules``)."""

    def __setattr__(self, name, value):
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    """Import a public name (or a submodule, ``exactdyn.regimes``) on first access."""
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name, __name__)
        value = module if attr is None else getattr(module, attr)
    else:
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))


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
__all__ += ["diskcache"]
