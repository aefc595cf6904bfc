"""``data.json`` of a report: hyperparameters, version, verification numbers, regime.

Deterministic across machines and library versions: errors are written as decade bounds
with a round-off floor per precision (:func:`~.content.precision_floor`), values with
:data:`~.content.VALUE_DIGITS`; no timestamps, no absolute paths.
"""

from __future__ import annotations

import json
import math

import numpy as np

from .content import VALUE_DIGITS, ReportContent, bound, precision_floor, regime_summary


def verification_rows(content: ReportContent) -> dict:
    """label -> {"method", "rtol", "passed", "observables": {name: {...}}} as text."""
    out = {}
    for label, rep in content.verification.items():
        floor = precision_floor(rep.precision)
        out[label] = {
            "method": rep.method, "integrator_rtol": f"{rep.rtol:.0e}", "passed": rep.passed,
            "observables": {c.name: {"max_abs_error": bound(c.max_abs_error, c.abs_tol, floor),
                                     "max_rel_error": bound(c.max_rel_error, c.rel_tol, floor),
                                     "rel_tol": f"{c.rel_tol:.0e}", "abs_tol": f"{c.abs_tol:.0e}",
                                     "passed": c.passed} for c in rep.checks}}
    return out


def _plain(obj):
    """JSON-ready copy with floats at VALUE_DIGITS significant digits."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return float(f"{x:.{VALUE_DIGITS}g}") if math.isfinite(x) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def regime_data(content: ReportContent):
    r = content.regime
    if r is None:
        return None
    return regime_summary(r)


def to_json(content: ReportContent) -> str:
    from .._version import __version__

    data = {
        "model": content.model_name,
        "exactdyn_version": __version__,
        "command": content.command,
        "argv": content.argv,
        "hyperparameters": _plain(content.model.params),
        "times": _plain(content.times.tolist()),
        "precision": content.precision,
        "proofs": {s.title: bool(s.proven) for s in content.proofs},
        "conserved": {s.title.split(":")[0]: bool(s.proven) for s in content.conserved
                      if s.proven is not None},
        "verification": verification_rows(content),
        "final_values": content.final_values,
        "regime": regime_data(content),
        "regime_note": content.regime_note,
        "figures": [stem for stem, _ in content.figures],
    }
    if content.modified or content.modified_note:
        data["modified_flow"] = {"steps": {s.title: s.proven for s in content.modified},
                                 "note": content.modified_note}
    if content.verification_notes:
        data["verification_notes"] = content.verification_notes
    if content.tables:
        data["tables"] = {tab["title"]: {"columns": tab["columns"], "rows": tab["rows"]}
                          for tab in content.tables}
    return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
