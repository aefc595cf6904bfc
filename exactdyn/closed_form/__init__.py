"""Closed-form solutions, found by model type: ``exact(model, t)``, ``closed_form(model)``.

Each family's closed-form module registers itself for its model type with
:func:`register_closed_form` (three callables: the numeric trajectory, the symbolic form
with its proofs, and how the form relates to the flow), so a new family's closed form is
one new file. The modules are imported when a model first asks for its closed form, not
on import (several need sympy, which a float64 ``exact`` does not): the closed form of a
model class defined in ``exactdyn/models/<family>.py`` is looked up first in
``exactdyn/closed_form/<family>.py`` (for each class of the model's MRO), and only when
that module registers none are all modules of this package imported
(:func:`_import_every_module`). Nothing here compares model names.
"""

from __future__ import annotations

import importlib
import importlib.util
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


_MODELS_PACKAGE = "exactdyn.models."


def _conventional_module(model_type: type) -> str | None:
    """``exactdyn.closed_form.<family>`` for a class defined in
    ``exactdyn.models.<family>``, when that module exists; else ``None``."""
    module = getattr(model_type, "__module__", "") or ""
    if not module.startswith(_MODELS_PACKAGE):
        return None
    name = f"{__name__}.{module[len(_MODELS_PACKAGE):]}"
    return name if importlib.util.find_spec(name) is not None else None


def _import_every_module() -> None:
    """Import (and so register) every closed-form module of this package: the fallback
    when no conventional module registers a type, and for the list of known families."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


def _lookup(model_type: type) -> ClosedFormFamily | None:
    """The registered family of ``model_type`` (nearest class of its MRO), importing the
    conventional modules of its classes first and every module only when those register
    none; ``None`` when there is none."""
    mro = getattr(model_type, "__mro__", ())

    def registered():
        return next((_REGISTRY[cls] for cls in mro if cls in _REGISTRY), None)

    found = registered()
    if found is not None:
        return found
    for cls in mro:
        module = _conventional_module(cls)
        if module is not None:
            importlib.import_module(module)
            found = registered()
            if found is not None:
                return found
    _import_every_module()
    return registered()


def has_closed_form(model_type: type) -> bool:
    """Whether a closed form is registered for ``model_type`` (or a base class of it)."""
    return _lookup(model_type) is not None


def family_of(model) -> ClosedFormFamily:
    """The registered closed form of ``model``'s type; ``ValueError`` when it has none."""
    found = _lookup(type(model))
    if found is not None:
        return found
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


# ReLU early alignment (Boursier & Flammarion), re-exported on first access (the module
# needs sympy for its proofs and slopes; importing this package must not). The function
# ``early_alignment`` is ``exactdyn.early_alignment`` or
# ``exactdyn.closed_form.early_alignment.early_alignment``: here that name is the submodule,
# as the import system makes it once the module is imported.
_EARLY_ALIGNMENT = ("alignment_path", "extremal_vectors", "stationary_directions_2d")


def __getattr__(name: str):
    if name in _EARLY_ALIGNMENT:
        module = importlib.import_module(f"{__name__}.early_alignment")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
