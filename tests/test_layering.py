"""The package's layering (DESIGN.md): one direction, no cycles, no name switches.

Imports are read from the sources (module level and inside functions alike, since an
import moved into a function to dodge a cycle is still a dependency).
"""

from __future__ import annotations

import ast
import os
import re

ROOT = os.path.join(os.path.dirname(__file__), "..", "exactdyn")


def _modules() -> dict:
    out = {}
    for dirpath, _dirs, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, os.path.join(ROOT, ".."))[:-3].replace(os.sep, ".")
                out[rel[:-9] if rel.endswith(".__init__") else rel] = path
    return out


def _imports(mod: str, path: str, mods: dict) -> set:
    is_pkg = path.endswith("__init__.py")
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("exactdyn"):
                target = node.module
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in mods else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("exactdyn")}
    return {t for t in found if t in mods and t != mod}


def _graph() -> dict:
    mods = _modules()
    return {m: _imports(m, p, mods) for m, p in mods.items()}


def test_no_import_cycles():
    graph = _graph()
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_models_and_symbolic_import_no_higher_layer():
    higher = ("numeric", "regimes", "sweep", "report", "cli", "closed_form", "solve", "verify",
              "flows", "analysis", "plotting")
    bad = [(m, t) for m, targets in _graph().items()
           if m.startswith(("exactdyn.models", "exactdyn.symbolic"))
           for t in targets if t.split(".")[1].startswith(higher)]
    assert not bad, bad


def test_numeric_imports_no_analysis_layer():
    higher = ("regimes", "sweep", "report", "cli", "verify")
    bad = [(m, t) for m, targets in _graph().items() if m.startswith("exactdyn.numeric")
           for t in targets if t.split(".")[1].startswith(higher)]
    assert not bad, bad


def test_no_code_path_compares_a_model_name():
    pattern = re.compile(r"""(model|obj|base)\.name\s*(==|!=|in\b)"""
                         r"""|getattr\(\s*\w+\s*,\s*["']name["']\s*[,)]\s*(==|!=|in\b)""")
    hits = []
    for mod, path in _modules().items():
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            if pattern.search(line):
                hits.append(f"{mod}:{n}: {line.strip()}")
    assert not hits, hits


def _layer(mod: str) -> str:
    """``exactdyn.analysis.probe.torch`` -> ``analysis``; a top-level module is its own."""
    return mod.split(".")[1] if "." in mod else "__init__"


def test_lower_layers_import_no_analysis_or_figure():
    # DESIGN.md "Layout": analysis/ (measures) and plotting/ (figures) sit above the
    # pipeline; models, derivation, lowering, closed forms and integration know neither.
    lower = ("models", "symbolic", "numeric", "closed_form", "trajectory", "flows", "solve",
             "descent", "reduced")
    bad = [(m, t) for m, targets in _graph().items() if _layer(m) in lower
           for t in targets if _layer(t) in ("analysis", "plotting")]
    assert not bad, bad


def test_measures_import_no_figure_classifier_or_front_end():
    # A measure is computed without drawing it and without a taxonomy: plotting/ and
    # regimes/ use analysis/, not the other way round.
    higher = ("plotting", "regimes", "sweep", "report", "cli")
    bad = [(m, t) for m, targets in _graph().items() if _layer(m) == "analysis"
           for t in targets if _layer(t) in higher]
    assert not bad, bad


def test_figures_import_no_sweep_report_or_cli():
    # Figures are drawn for the phase diagrams, reports and command line, not from them.
    bad = [(m, t) for m, targets in _graph().items() if _layer(m) == "plotting"
           for t in targets if _layer(t) in ("sweep", "report", "cli")]
    assert not bad, bad


def test_top_level_holds_only_what_design_puts_there():
    # DESIGN.md "Layout": measures live in analysis/, figures in plotting/, data sets in
    # models/; the top level keeps the public entry points of the pipeline (one module
    # per public function: solve, verify, gd, gradient_flow/lower, cite), Trajectory,
    # the package's plumbing (errors, the on-disk cache) and private helpers.
    entry_points = {"__init__", "__main__", "trajectory", "verify", "solve", "flows",
                    "descent", "reduced", "cite", "errors", "diskcache"}
    top = {f[:-3] for f in os.listdir(ROOT) if f.endswith(".py")}
    assert {f for f in top if not f.startswith("_") or f in ("__init__", "__main__")} \
        <= entry_points, top - entry_points
    packages = {d for d in os.listdir(ROOT)
                if os.path.isfile(os.path.join(ROOT, d, "__init__.py"))}
    assert packages == {"models", "symbolic", "closed_form", "numeric", "analysis", "regimes",
                        "sweep", "report", "plotting", "cli"}, packages
