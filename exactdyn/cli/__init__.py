"""The ``exactdyn`` command line: one package, one module per family with its own options.

``main`` (:mod:`.main`) parses and dispatches; :mod:`.common` holds what the family modules
share (the one-line-error parser, number lists and times, printing), so that no module of
the package imports the one that imports it.
"""

from .common import _times as _times  # tests drive the CLI's pieces
from .main import _model as _model
from .main import build_parser, main, run

__all__ = ["build_parser", "main", "run"]
