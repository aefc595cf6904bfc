"""The regime result type and the per-taxonomy registry behind :func:`classify`.

Each model family registers one :class:`Taxonomy` (its labels, how to classify a model or
a trajectory of it, and the theory prediction from hyperparameters). ``classify`` picks
the taxonomy that accepts its argument, or the one named by ``taxonomy=``. Other families
(single neuron: lazy / rich; deep linear: ntk / saddle-to-saddle; two-layer: linear /
critical / condensed) plug in with :func:`register_taxonomy` without touching this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Regime:
    """Which regime a model or a trajectory shows, and why.

    Attributes
    ----------
    label : str
        The measured label, a lower-case word of the taxonomy (e.g. ``"kernel"``).
    taxonomy : str
        The taxonomy's name (e.g. ``"linear1d"``).
    evidence : dict of str -> float or bool
        The metrics behind the label, with their values, and the thresholds used.
    predicted : str or None
        The label theory gives from the hyperparameters alone (no dynamics), or ``None``
        where the taxonomy has no prediction.
    """

    label: str
    taxonomy: str
    evidence: dict = field(default_factory=dict)
    predicted: str | None = None

    @property
    def agrees(self) -> bool | None:
        """Whether the measured and predicted labels agree (``None`` without prediction)."""
        return None if self.predicted is None else self.label == self.predicted

    def to_dict(self) -> dict:
        """JSON-ready: non-finite floats become ``None``."""
        ev = {k: (None if isinstance(v, float) and v != v or v in (float("inf"),
                                                                  float("-inf")) else v)
              for k, v in self.evidence.items()}
        return {"label": self.label, "taxonomy": self.taxonomy, "predicted": self.predicted,
                "evidence": ev}

    def _repr_markdown_(self) -> str:
        """Notebook display: the label, the prediction and the evidence as a table."""
        agree = {None: "", True: " (agrees)", False: " (disagrees)"}[self.agrees]
        pred = "none" if self.predicted is None else f"**{self.predicted}**"
        head = (f"**{self.label}** ({self.taxonomy} taxonomy); predicted from the "
                f"hyperparameters: {pred}{agree}")
        rows = [f"| {k} | {_cell(v)} |" for k, v in self.evidence.items()]
        return head + ("\n\n| evidence | value |\n|---|---|\n" + "\n".join(rows) if rows
                       else "")


def _cell(v) -> str:
    """One evidence value for a Markdown table cell."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    if isinstance(v, (list, tuple, np.ndarray)):
        a = np.asarray(v)
        if a.size > 8:
            return f"array of shape {a.shape}"
        return ", ".join(_cell(x) for x in a.ravel().tolist()) or "(empty)"
    return str(v).replace("|", "\\|").replace("\n", " ")


@dataclass(frozen=True)
class Taxonomy:
    """One model family's regime taxonomy.

    Parameters
    ----------
    name : str
        Registry key, e.g. ``"linear1d"``.
    labels : tuple of str
        The labels it can return, in display order.
    accepts : callable(obj) -> bool
        True for the models and trajectories it classifies.
    classify : callable(obj, **options) -> Regime
        Measured label, evidence and predicted label.
    grid : callable or None
        Optional vectorized evaluation on a hyperparameter grid (used by
        :func:`exactdyn.phase_diagram`); see :mod:`exactdyn.regimes.linear1d`.
    scores : tuple of str
        Names of the continuous scores its evidence and grid report.
    grid_applies : callable(params) -> str, optional
        Whether ``grid`` covers a diagram with these hyperparameters: ``""`` if it does,
        else why not (e.g. a random init with no closed form). Default: always.
    diagram : callable(model, fixed, axes) -> tuple or None, optional
        The cells of a phase diagram this taxonomy builds itself, when ``model`` (a class
        or an instance), the ``fixed`` hyperparameters and the ``axes`` names call for
        them: ``(model class, base, sweepable names, defaults)``, where ``base`` is
        ``None``, an instance, or an object whose ``with_values(**params)`` builds a
        cell's model (a decoupled or an explicit init); ``None`` leaves the model to the
        generic rule (a dataclass's scalar fields).
    diagram_cell : callable(model, t, **options) -> Regime, optional
        One cell of the per-cell path (``t``: the output times asked for, or ``None``).
        Default: ``classify(model, **options)``.
    classify_many : callable(models, **options) -> list, optional
        Many models classified together (the two-layer taxonomy integrates their runs as
        ensembles, :mod:`exactdyn.numeric.ensemble`): per model a Regime or the exception
        that classifying it raised. Used by :func:`exactdyn.phase_diagram`.
    batches : callable(model) -> bool, optional
        Whether ``classify_many`` gains over one ``classify`` per model for cells like
        ``model`` (e.g. not for kinked activations). Default: never.
    """

    name: str
    labels: tuple
    accepts: Callable
    classify: Callable
    grid: Callable | None = None
    scores: tuple = ()
    grid_applies: Callable | None = None
    diagram: Callable | None = None
    diagram_cell: Callable | None = None
    classify_many: Callable | None = None
    batches: Callable | None = None


_REGISTRY: dict[str, Taxonomy] = {}


def register_taxonomy(taxonomy: Taxonomy, replace: bool = False) -> Taxonomy:
    """Add ``taxonomy`` to the registry (``replace=True`` to overwrite a name)."""
    if not isinstance(taxonomy, Taxonomy):
        raise TypeError(f"taxonomy must be a Taxonomy, got {type(taxonomy).__name__}")
    if taxonomy.name in _REGISTRY and not replace:
        raise ValueError(f"taxonomy {taxonomy.name!r} is already registered")
    _REGISTRY[taxonomy.name] = taxonomy
    return taxonomy


def taxonomies() -> tuple:
    """Names of the registered taxonomies."""
    return tuple(_REGISTRY)


def get_taxonomy(name: str) -> Taxonomy:
    """The registered taxonomy ``name``; ValueError naming the known ones otherwise."""
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ValueError(f"taxonomy must be one of {known}; got {name!r}")
    return _REGISTRY[name]


def taxonomy_for(obj, taxonomy: str | None = None) -> Taxonomy:
    """The taxonomy named ``taxonomy``, or the first registered one accepting ``obj``."""
    if taxonomy is not None:
        tax = get_taxonomy(taxonomy)
        if not tax.accepts(obj):
            raise ValueError(f"taxonomy {taxonomy!r} does not apply to "
                             f"{type(obj).__name__} {getattr(obj, 'model', '')!s}".rstrip())
        return tax
    for tax in _REGISTRY.values():
        if tax.accepts(obj):
            return tax
    known = ", ".join(sorted(_REGISTRY)) or "none"
    raise ValueError(f"no regime taxonomy applies to {type(obj).__name__}; "
                     f"registered taxonomies: {known}")


def classify(model_or_trajectory, taxonomy: str | None = None, **options) -> Regime:
    """Which regime a model or a trajectory shows, with the evidence and the prediction.

    Parameters
    ----------
    model_or_trajectory
        A model (classified from its exact solution where one exists: the supremum of
        the NTK change and the endpoints of the path) or a :class:`~exactdyn.Trajectory`
        (classified from the sampled observables).
    taxonomy : str, optional
        A registered taxonomy name (see :func:`taxonomies`); by default the first one
        that accepts the argument.
    **options
        Thresholds of the taxonomy (e.g. ``kernel_tol`` for ``"linear1d"``).

    Returns
    -------
    Regime
    """
    return taxonomy_for(model_or_trajectory, taxonomy).classify(model_or_trajectory, **options)


def check_thresholds(options: dict, defaults: dict, taxonomy: str, bounded=()) -> dict:
    """A taxonomy's thresholds: ``defaults`` updated by ``options``. Unknown names and
    values that are not finite and > 0 (or, for names in ``bounded``, in (0, 1)) raise
    ``ValueError`` naming them."""
    unknown = set(options) - set(defaults)
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))} for taxonomy "
                         f"{taxonomy!r}; allowed: {', '.join(defaults)}")
    out = dict(defaults)
    for k, v in options.items():
        v = float(v)
        if not np.isfinite(v) or v <= 0 or (k in bounded and v >= 1):
            allowed = "in (0, 1)" if k in bounded else "a finite number > 0"
            raise ValueError(f"{k} must be {allowed}, got {v!r}")
        out[k] = v
    return out
