"""Derivation reports: Markdown, LaTeX, figures and JSON from the pipeline's objects."""

from .check import check_derivations
from .content import ReportContent, gather
from .writer import REPORTABLE, Report, report

__all__ = ["REPORTABLE", "Report", "ReportContent", "check_derivations", "gather", "report"]
