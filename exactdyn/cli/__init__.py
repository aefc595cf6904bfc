"""The ``exactdyn`` command line: one package, one module per family with its own options.

``main`` (:mod:`.main`) parses and dispatches; :mod:`.families` lists the model families
(built-in ones with their own options, generated ones for every other model class, see
:func:`.families.register_family`); :mod:`.common` holds what the modules share (the
one-line-error parser, number lists and times, options from model fields, printing), so
that no module of the package imports the one that imports it.
"""

from .common import _times as _times  # tests drive the CLI's pieces
from .families import CliFamily, known_families, register_family
from .main import _model as _model
from .main import build_parser, family_parser, main, report_build, run

__all__ = ["CliFamily", "build_parser", "family_parser", "known_families", "main",
           "register_family", "report_build", "run"]
