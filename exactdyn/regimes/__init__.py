"""Regimes: metrics, classifiers and theory predictions, one taxonomy per model family."""

from . import linear1d as _linear1d  # noqa: F401  (registers the "linear1d" taxonomy)
from .base import Regime, Taxonomy, classify, get_taxonomy, register_taxonomy, taxonomies
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

__all__ = ["PARAMETRIZATIONS", "TWO_LAYER_INITS", "Parametrization", "Regime", "Taxonomy",
           "TwoLayerInit", "alignment_score", "alignment_score_exact", "chi_exponent",
           "chi_label", "classify", "disalignment_fraction", "exact_ntk_change",
           "get_taxonomy", "luo_exponents", "luo_label", "ntk_dip_ratio", "ntk_ratio",
           "order_parameter", "overshoot", "parametrization", "register_taxonomy",
           "relative_ntk_change", "sampled_disalignment_fraction", "sign_flip", "taxonomies",
           "two_layer_init"]
