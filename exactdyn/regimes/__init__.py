"""Regimes: metrics, classifiers and theory predictions, one taxonomy per model family."""

import importlib as _importlib
import pkgutil as _pkgutil

from .base import Regime, Taxonomy, classify, get_taxonomy, register_taxonomy, taxonomies
from .deep_linear import effective_gamma, plateau_count
from .metrics import (
    alignment_score,
    alignment_score_exact,
    disalignment_fraction,
    exact_ntk_change,
    ntk_dip_ratio,
    ntk_ratio,
    order_parameter,
    overshoot,
    relative_ntk_change,
    sampled_disalignment_fraction,
    sign_flip,
)
from .scaling import (
    PARAMETRIZATIONS,
    TWO_LAYER_INITS,
    Parametrization,
    TwoLayerInit,
    chi_exponent,
    chi_label,
    luo_exponents,
    luo_label,
    parametrization,
    two_layer_init,
)
from .single_neuron import kernel_movement, kunin_rho, single_neuron_ntk
from .two_layer import PROTOCOL, RDSlope, noise_band, rd_slope, slope_label

__all__ = ["PARAMETRIZATIONS", "TWO_LAYER_INITS", "Parametrization", "Regime", "Taxonomy",
           "TwoLayerInit", "alignment_score", "alignment_score_exact", "chi_exponent",
           "chi_label", "classify", "disalignment_fraction", "exact_ntk_change",
           "get_taxonomy", "luo_exponents", "luo_label", "ntk_dip_ratio", "ntk_ratio",
           "order_parameter", "overshoot", "parametrization", "register_taxonomy",
           "relative_ntk_change", "sampled_disalignment_fraction", "sign_flip", "taxonomies",
           "two_layer_init"]
__all__ += ["effective_gamma", "kernel_movement", "kunin_rho", "plateau_count",
            "single_neuron_ntk"]
__all__ += ["PROTOCOL", "RDSlope", "noise_band", "rd_slope", "slope_label"]

# Every module of this package registers its taxonomy on import (a new family's taxonomy
# is one new file here).
for _info in _pkgutil.iter_modules(__path__):
    _importlib.import_module(f"{__name__}.{_info.name}")
