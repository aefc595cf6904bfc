"""Module paths that moved, kept importable: one table, no copies of code.

The package's layout follows DESIGN.md ("Layout"): measures under :mod:`exactdyn.analysis`,
figures under :mod:`exactdyn.plotting`, data sets beside the models. Version 0.1.0 shipped
some of these modules at other paths (``exactdyn.condensation``, ``exactdyn.datasets``,
...), and the guides showed imports from them, so those paths still import: a finder on
``sys.meta_path`` (installed by ``exactdyn/__init__.py``) answers for exactly the names in
:data:`MOVED` and :data:`ALIASES`, and for nothing else.

- A name in :data:`MOVED` is deprecated: importing it warns (``DeprecationWarning``, naming
  the new path) and gives a module that forwards attribute access to the new module(s), in
  order (``exactdyn.condensation`` held both measures and figures, which now live apart).
- A name in :data:`ALIASES` is a public path that stays (``exactdyn.probe``, exported as
  ``ed.probe``): it is the new module object itself, registered under the old name too, so
  ``import exactdyn.probe.torch`` and ``ed.probe.torch`` are one module, never two copies.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
import warnings

#: Deprecated path -> the modules that now hold its names (searched in this order).
MOVED = {
    "exactdyn.condensation": ("exactdyn.analysis.condensation",
                              "exactdyn.plotting.condensation"),
    "exactdyn.cnn_measures": ("exactdyn.analysis.cnn_measures",),
    "exactdyn.cnn_plotting": ("exactdyn.plotting.cnn",),
    "exactdyn.datasets": ("exactdyn.models.datasets",),
    "exactdyn.backward_error": ("exactdyn.analysis.backward_error",),
    "exactdyn.regimes.plots": ("exactdyn.plotting.phase_diagram",),
}

#: Public path -> the module it names (no warning: these paths are documented and stay).
ALIASES = {
    "exactdyn.probe": "exactdyn.analysis.probe",
    "exactdyn.probe.measures": "exactdyn.analysis.probe.measures",
    "exactdyn.probe.torch": "exactdyn.analysis.probe.torch",
}


#: An alias being imported -> the spec of the module it names (see _MovedLoader).
_OWN_SPECS: dict = {}


class _Forwarding(types.ModuleType):
    """A deprecated module path: its attributes are read from the modules that now hold
    them (imported on first access, so the old path costs no more than the new ones)."""

    _targets: tuple = ()

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        for target in self._targets:
            module = importlib.import_module(target)
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r} (it moved "
                             f"to {' and '.join(self._targets)})")

    def __dir__(self) -> list:
        names = set()
        for target in self._targets:
            names |= set(dir(importlib.import_module(target)))
        return sorted(names)


class _MovedLoader:
    """The loader of the old paths. The protocol is duck-typed: subclassing importlib.abc
    would import importlib.resources (and with it tempfile, shutil, lzma, bz2, ...) on every
    ``import exactdyn``, which took three times as long then."""

    def create_module(self, spec):
        if spec.name in ALIASES:
            # The new module itself, filed under the old name too. The import system keeps
            # its __name__, __path__ and __file__ (it sets only missing ones) but replaces
            # __spec__ with the alias's; exec_module puts the module's own spec back.
            module = importlib.import_module(ALIASES[spec.name])
            _OWN_SPECS[spec.name] = module.__spec__
            return module
        targets = MOVED[spec.name]
        # stacklevel: past this loader and importlib's frames, to the importing line
        # (importlib's own frames are skipped by the warnings machinery's filter).
        warnings.warn(f"{spec.name} moved to {' and '.join(targets)}; import it from there "
                      f"(the old path will be removed in a future version)",
                      DeprecationWarning, stacklevel=2)
        module = _Forwarding(spec.name)
        module._targets = targets
        names: list = []
        for target in targets:
            imported = importlib.import_module(target)
            names += imported.__all__  # every module in MOVED's targets declares it
        module.__all__ = names
        return module

    def exec_module(self, module) -> None:
        """Nothing to run (the module was complete when created); an alias gets back the
        spec of the module it names, under which it was first imported."""
        alias = module.__spec__.name
        if alias in _OWN_SPECS:
            module.__spec__ = _OWN_SPECS.pop(alias)


class _MovedFinder:
    """Answers the import system for the old paths only (a duck-typed meta path finder)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED or fullname in ALIASES:
            return importlib.machinery.ModuleSpec(fullname, _MOVED_LOADER)
        return None


_MOVED_LOADER = _MovedLoader()
FINDER = _MovedFinder()


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once): it must answer for the old paths
    before the path finder, which would find nothing (or, for ``exactdyn.probe.torch``, a
    second copy of the module under the alias's ``__path__``)."""
    if FINDER not in sys.meta_path:
        sys.meta_path.insert(0, FINDER)
