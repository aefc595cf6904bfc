"""Closed-form solutions, per model family: ``exact(model, t)``."""

from __future__ import annotations

from .. import _validation as check
from ..trajectory import Trajectory


def exact(model, t, precision: int | None = None) -> Trajectory:
    """The closed-form trajectory of ``model`` at times ``t``.

    Parameters
    ----------
    model
        A model with a closed form (:class:`~exactdyn.Linear1D`).
    t : float or array_like
        Times >= 0, non-decreasing.
    precision : int, optional
        Evaluate in mpmath with this many significant digits (10 guard digits are used
        internally); ``None`` evaluates in float64 with the stable formulas.
    """
    times = check.times("t", t)
    precision = check.precision("precision", precision)
    name = getattr(model, "name", None)
    if name == "linear1d":
        from .linear1d import exact_linear1d

        return exact_linear1d(model, times, precision)
    if isinstance(name, str) and name.startswith("deep_linear"):
        from .deep_linear import exact_deep_linear

        return exact_deep_linear(model, times, precision)
    if name in ("linear", "single_neuron"):
        from .linear import exact_linear

        return exact_linear(model, times, precision)
    if name == "two_layer":
        from .early_alignment import applies as piecewise_linear
        from .early_alignment import early_alignment
        from .twolayer import exact_two_layer

        if precision is not None:
            raise ValueError("precision is not available for the two-layer early-stage form")
        if piecewise_linear(model)[0]:  # ReLU, leaky ReLU: region-by-region early alignment
            return early_alignment(model, times)
        return exact_two_layer(model, times)
    if name == "cnn":
        from .cnn import exact_cnn

        if precision is not None:
            raise ValueError("precision is not available for the CNN's linearized form")
        return exact_cnn(model, times)
    raise ValueError(f"model must be one with a closed form (linear1d); got {type(model).__name__}")


def closed_form(model):
    """The symbolic closed form of ``model``'s family, with :meth:`residual` proofs."""
    if getattr(model, "name", None) == "linear1d":
        from .linear1d_symbolic import Linear1DClosedForm

        return Linear1DClosedForm()
    if str(getattr(model, "name", "")).startswith("deep_linear"):
        from .deep_linear import ChainClosedForm

        return ChainClosedForm(model.depth)
    if getattr(model, "name", None) in ("linear", "single_neuron"):
        from .linear_symbolic import LinearNetClosedForm

        return LinearNetClosedForm()
    if getattr(model, "name", None) == "two_layer":
        from .twolayer import TwoLayerClosedForm

        return TwoLayerClosedForm()
    if getattr(model, "name", None) == "cnn":
        from .cnn import CNNClosedForm

        return CNNClosedForm()
    raise ValueError(f"model must be one with a closed form (linear1d); got {type(model).__name__}")


# ReLU early alignment (Boursier & Flammarion), re-exported
from .early_alignment import alignment_path as alignment_path  # noqa: E402
from .early_alignment import early_alignment as early_alignment  # noqa: E402
from .early_alignment import extremal_vectors as extremal_vectors  # noqa: E402
from .early_alignment import stationary_directions_2d as stationary_directions_2d  # noqa: E402


def closed_form_order(model) -> int | None:
    r"""How ``exact(model, t)`` relates to the full gradient flow.

    ``None``: the closed form solves the flow exactly (linear1d, linear, single neuron,
    deep linear), and :func:`exactdyn.verify` compares it with the integrator to round-off.
    An int p: the closed form is an early-stage approximation whose relative error at fixed
    t is :math:`O(\mathrm{scale}^p)` in the init scale (two-layer: linearized
    multiplicity-1 form or ReLU early alignment; CNN: linearized form), and
    :func:`exactdyn.verify` fits that order over rescaled copies of the init. Each family's
    closed-form module states its order (``asymptotic_order``)."""
    name = getattr(model, "name", None)
    if name == "two_layer":
        from .early_alignment import applies as piecewise_linear

        if piecewise_linear(model)[0]:
            from .early_alignment import asymptotic_order
        else:
            from .twolayer import asymptotic_order
        return asymptotic_order(model)
    if name == "cnn":
        from .cnn import asymptotic_order

        return asymptotic_order(model)
    return None
