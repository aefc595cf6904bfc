"""Sphinx configuration of the exactdyn documentation.

Build (warnings are errors, as in CI)::

    pip install -e ".[docs]"
    sphinx-build -W --keep-going -b html docs docs/_build/html

Two pages are generated here at build time, from the package and the examples, so that
they cannot go stale: ``api.rst`` (every name of ``exactdyn.__all__``, grouped; a name no
group lists lands under "Other") and ``gallery/examples/*.md`` (one page per script in
``examples/``), and ``_tutorial_cells.md`` (the tutorial notebook's cells, without
outputs, for its page). None is committed (see .gitignore). The examples are *not* run by the
build; ``python docs/run_gallery.py`` runs them and commits figures and run times that the
pages show.
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))
sys.path.insert(0, str(ROOT))

import gallery  # noqa: E402  (docs/gallery.py)

import exactdyn  # noqa: E402

project = "exactdyn"
author = "the exactdyn developers"
copyright = "2026, the exactdyn developers"
release = exactdyn.__version__
version = release

extensions = [
    "myst_parser",               # Markdown pages (the guides were the README's Markdown)
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",       # NumPy-style docstrings (the package's style)
    "sphinx.ext.mathjax",        # :math: in docstrings, $...$ in pages
    "sphinx.ext.viewcode",
]
try:  # a copy button on code blocks, if installed (it is in the docs extra)
    import sphinx_copybutton  # noqa: F401
    extensions.append("sphinx_copybutton")
except ImportError:
    pass

templates_path = ["_templates"]  # autosummary/class.rst: the class and its documented members
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints",
                    "_tutorial_cells.md",   # included by tutorial.md
                    "gallery/_overview.md"]  # included by gallery/index.md

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "show-inheritance": False,
                           "exclude-members": "__init__"}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_inherit_docstrings = False
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True
napoleon_custom_sections = [("Equations", "notes_style"), ("References", "notes_style")]

# MathJax comes from a CDN; to read the pages offline, point this at a local copy, e.g.
# EXACTDYN_MATHJAX_PATH="file:///usr/share/javascript/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML"
# (Debian's libjs-mathjax).
if os.environ.get("EXACTDYN_MATHJAX_PATH"):
    mathjax_path = os.environ["EXACTDYN_MATHJAX_PATH"]
    myst_update_mathjax = False  # MyST's processing classes are MathJax 3+ options

html_theme = "furo" if __import__("importlib").util.find_spec("furo") else "alabaster"
html_title = f"exactdyn {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]

# Names of exactdyn.__all__, grouped for the API page. A public name missing here is listed
# under "Other" (so a new export is documented at once); one listed here but no longer
# exported is dropped.
API_GROUPS = [
    ("Models", "A model is a frozen dataclass of hyperparameters plus an initial state; "
     "``Network`` makes one from a sympy loss (with an optional ``ClosedForm``).",
     ["Linear1D", "LinearNet", "SingleNeuron", "DeepLinear", "TwoLayer", "TwoLayerCNN",
      "Network", "ClosedForm"]),
    ("Pipeline", "Derive, lower, integrate, solve in closed form; save and load.",
     ["gradient_flow", "lower", "solve", "exact", "closed_form", "Trajectory", "load"]),
    ("Checks and analyses", "Closed form against numerics; regimes; phase diagrams; reports.",
     ["verify", "VerificationReport", "classify", "Regime", "phase_diagram", "PhaseDiagram",
      "report"]),
    ("Gradient descent", "Exact GD iterates on the lowered flow, their orders against the "
     "flow and the modified flow, and the sharpness.",
     ["gd", "verify_gd", "GDVerification", "sharpness", "plot_sharpness"]),
    ("ReLU early alignment", "Boursier & Flammarion's early phase, region by region.",
     ["early_alignment", "alignment_path", "extremal_vectors"]),
    ("Probes", "The papers' measures on weight snapshots of any network (numpy, torch).",
     ["probe"]),
    ("On-disk cache", "Where the lowered flows are kept between processes, switching the "
     "cache off, emptying it (getting started: start-up and the on-disk cache).",
     ["diskcache"]),
    ("Conventions and errors", "", ["cite", "IntegrationError", "PrecisionWarning"]),
]
API_SKIP = {"__version__"}


# Docstrings cite the equations as "MATH.md §N" (the project's notes, now the page
# math.md): in the built pages that becomes a link to the section.
MATH_REF = __import__("re").compile(r"(?:\(MATH\.md\)|MATH\.md(?:'s)? §(\d))")


def link_math(text):
    return MATH_REF.sub(lambda m: f":ref:`Mathematics §{m.group(1)} <math-s{m.group(1)}>`"
                        if m.group(1) else ":doc:`/math`", text)


def _link_math_in_docstring(app, what, name, obj, options, lines):
    lines[:] = [link_math(line) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _link_math_in_docstring)


def write_api_page():
    public = [n for n in exactdyn.__all__ if n not in API_SKIP]
    listed = set()
    out = [".. This file is generated by docs/conf.py from exactdyn.__all__; do not edit.", "",
           "API reference", "=============", "",
           "Every public name of ``exactdyn`` (``import exactdyn as ed``), documented from its "
           "docstring. Modules below the top level (``exactdyn.analysis``, "
           "``exactdyn.regimes``, ``exactdyn.models.datasets``, ...) are described in the user "
           "guides.", "",
           f"``exactdyn.__version__`` is ``{exactdyn.__version__!r}``.", ""]

    def section(title, blurb, names):
        out.extend([title, "-" * len(title), ""])
        if blurb:
            out.extend([blurb, ""])
        out.extend([".. currentmodule:: exactdyn", "", ".. autosummary::",
                    "   :toctree: api", "   :nosignatures:", ""])
        out.extend(f"   {n}" for n in names)
        out.append("")

    for title, blurb, names in API_GROUPS:
        names = [n for n in names if n in public]
        listed.update(names)
        if names:
            section(title, blurb, names)
    rest = [n for n in public if n not in listed]
    if rest:
        section("Other", "", rest)
    text = "\n".join(out)
    path = DOCS / "api.rst"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


write_api_page()
gallery.write_pages(ROOT / "examples", DOCS / "gallery", transform=link_math)
gallery.write_if_changed(DOCS / "_tutorial_cells.md",
                         gallery.notebook_markdown(DOCS / "tutorial.ipynb"))
