"""Derivation reports: Markdown, LaTeX, figures and JSON from the pipeline's objects."""

from . import cnn as _cnn  # noqa: F401  (registers the CNN's report)
from . import twolayer as _twolayer  # noqa: F401  (registers the two-layer network's report)
from .check import check_derivations
from .content import ReportContent, gather
from .writer import REPORTABLE, Report, report

__all__ = ["REPORTABLE", "Report", "ReportContent", "check_derivations", "gather", "report"]
