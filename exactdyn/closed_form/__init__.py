"""Closed-form solutions, found by model type: ``exact(model, t)``, ``closed_form(model)``.

Each family's closed-form module registers itself for its model type with
:func:`register_closed_form` (three callables: the numeric trajectory, the symbolic form
with its proofs, and how the form relates to the flow); every module of this package is
imported here, so a new family's closed form is one new file. Nothing here compares
model names.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from .. import _validation as check
from ..trajectory import Trajectory


@dataclass(frozen=True)
class ClosedFormFamily:
    """What a family's closed-form module provides.

    Attributes
    ----------
    exact : callable(model, times, precision) -> Trajectory
        The closed-form trajectory; ``precision`` is ``None`` (float64) or digits.
    symbolic : callable(model) -> object
        The symbolic form: ``equations()``, ``proofs`` (derivation steps that are
        residuals), ``residual()`` and ``proven``.
    order : callable(model) -> int or None
        ``None`` when the form solves the flow exactly; an int p when it is an early-stage
        approximation with relative error :math:`O(\\mathrm{scale}^p)` in the init scale.
    precision : bool
        Whether ``exact`` evaluates at ``precision=N``.
    compare_state : bool
        Whether :func:`exactdyn.verify` compares the state arrays besides the observables.
    """

    exact: Callable
    symbolic: Callable
    order: Callable = staticmethod(lambda model: None)
    precision: bool = True
    compare_state: bool = False


_REGISTRY: dict = {}


def register_closed_form(model_type: type, exact: Callable, symbolic: Callable,
                         order: Callable | None = None, precision: bool = True,
                         compare_state: bool = False) -> None:
    """Register the closed form of ``model_type`` (and of its subclasses)."""
    if not isinstance(model_type, type):
        raise TypeError(f"model_type must be a class, got {model_type!r}")
    _REGISTRY[model_type] = ClosedFormFamily(exact, symbolic, order or (lambda model: None),
                                             precision, compare_state)


def has_closed_form(model_type: type) -> bool:
    """Whether a closed form is registered for ``model_type`` (or a base class of it)."""
    return any(cls in _REGISTRY for cls in getattr(model_type, "__mro__", ()))


def family_of(model) -> ClosedFormFamily:
    """The registered closed form of ``model``'s type; ``ValueError`` when it has none."""
    for cls in type(model).__mro__:
        if cls in _REGISTRY:
            return _REGISTRY[cls]
    known = ", ".join(sorted(c.__name__ for c in _REGISTRY))
    raise ValueError(f"model must be one with a closed form ({known}); got "
                     f"{type(model).__name__}")


def exact(model, t, precision: int | None = None) -> Trajectory:
    """The closed-form trajectory of ``model`` at times ``t``.

    Parameters
    ----------
    model
        A model with a closed form: :class:`~exactdyn.Linear1D`,
        :class:`~exactdyn.LinearNet`, :class:`~exactdyn.SingleNeuron`,
        :class:`~exactdyn.DeepLinear`, early-stage forms of :class:`~exactdyn.TwoLayer` and
        :class:`~exactdyn.TwoLayerCNN`, or a :class:`~exactdyn.Network` model built with a
        ``closed_form``.
    t : float or array_like
        Times >= 0, non-decreasing.
    precision : int, optional
        Evaluate in mpmath with this many significant digits (10 guard digits are used
        internally); ``None`` evaluates in float64 with the stable formulas.
    """
    times = check.times("t", t)
    precision = check.precision("precision", precision)
    family = family_of(model)
    if precision is not None and not family.precision:
        raise ValueError(f"precision is not available for the closed form of "
                         f"{type(model).__name__} (an early-stage form, float64 only)")
    return family.exact(model, times, precision)


def closed_form(model):
    """The symbolic closed form of ``model``'s family, with :meth:`residual` proofs."""
    return family_of(model).symbolic(model)


def closed_form_order(model) -> int | None:
    r"""How ``exact(model, t)`` relates to the full gradient flow.

    ``None``: the closed form solves the flow exactly (linear1d, linear, single neuron,
    deep linear, a user network's closed form), and :func:`exactdyn.verify` compares it
    with the integrator to round-off. An int p: the closed form is an early-stage
    approximation whose relative error at fixed t is :math:`O(\mathrm{scale}^p)` in the
    init scale (two-layer: linearized multiplicity-1 form or ReLU early alignment; CNN:
    linearized form), and :func:`exactdyn.verify` fits that order over rescaled copies of
    the init. Each family's closed-form module states its order (``asymptotic_order``)."""
    try:
        family = family_of(model)
    except ValueError:
        return None
    return family.order(model)


# Every module of this package registers its families on import.
for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")

# ReLU early alignment (Boursier & Flammarion), re-exported
from .early_alignment import alignment_path as alignment_path  # noqa: E402
from .early_alignment import early_alignment as early_alignment  # noqa: E402
from .early_alignment import extremal_vectors as extremal_vectors  # noqa: E402
from .early_alignment import stationary_directions_2d as stationary_directions_2d  # noqa: E402
