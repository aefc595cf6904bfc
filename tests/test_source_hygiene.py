"""The sources hold no control characters.

Regression test for the docstring of ``exactdyn.verify.verify``, whose ``\\varepsilon`` and
``\\frac`` had become a vertical tab + ``arepsilon`` and a form feed + ``rac`` (a LaTeX
escape written in a non-raw string, or pasted through one). Such bytes render as garbage in
the API reference and are invisible in most editors.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("exactdyn", "tests", "examples", "benchmarks", "docs")
SUFFIXES = {".py", ".md", ".rst", ".txt", ".toml", ".cfg", ".cff", ".ipynb"}
# C0 controls except tab, newline and carriage return; DEL; C1 controls.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f]")


def source_files():
    for folder in FOLDERS:
        base = ROOT / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if (path.is_file() and path.suffix in SUFFIXES
                    and "_build" not in path.parts and "__pycache__" not in path.parts):
                yield path


def test_there_are_sources_to_check():
    names = {p.name for p in source_files()}
    assert "verify.py" in names and "test_source_hygiene.py" in names


def control_characters(text):
    """(line, column, character) of every control character (lines split on "\\n" only:
    str.splitlines would itself split on the vertical tab and form feed)."""
    return [(lineno, m.start() + 1, m.group())
            for lineno, line in enumerate(text.split("\n"), 1)
            for m in CONTROL.finditer(line)]


def test_no_control_characters():
    bad = []
    for path in source_files():
        for lineno, col, ch in control_characters(path.read_text(encoding="utf-8")):
            bad.append(f"{path.relative_to(ROOT)}:{lineno}:{col}: {ch!r}")
    assert not bad, "control characters in the sources:\n" + "\n".join(bad[:50])


def test_the_check_catches_a_vertical_tab_and_a_form_feed():
    assert control_characters("ok\n:math:`\x0barepsilon`") == [(2, 8, "\x0b")]
    assert control_characters("\x0crac{a}{b}") == [(1, 1, "\x0c")]
    assert control_characters("tab\tand newline\n and \\varepsilon\r\n") == []
