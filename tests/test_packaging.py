"""Package metadata in step: version, license, citation file, typed marker."""

import re
from pathlib import Path

import pytest

import exactdyn as ed

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_versions_agree():
    # pyproject reads the version from the package (one place): exactdyn/_version.py.
    meta = pyproject()
    assert "version" in meta["project"]["dynamic"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "exactdyn._version.__version__"}
    text = (ROOT / "exactdyn" / "_version.py").read_text(encoding="utf-8")
    (version,) = re.findall(r'^__version__ = "([^"]+)"$', text, flags=re.M)
    assert ed.__version__ == version
    cff = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert re.search(rf"^version: {re.escape(version)}$", cff, flags=re.M)
    assert f"## [{version}]" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_license_file_matches_metadata():
    assert pyproject()["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert re.search(r"^license: MIT$", (ROOT / "CITATION.cff").read_text(encoding="utf-8"),
                     flags=re.M)


def test_typed_marker_ships():
    assert (ROOT / "exactdyn" / "py.typed").exists()
    assert "py.typed" in pyproject()["tool"]["setuptools"]["package-data"]["exactdyn"]


def test_docs_toolchain_stays_out_of_the_core_dependencies():
    project = pyproject()["project"]
    core = " ".join(project["dependencies"]).lower()
    assert "sphinx" not in core and "myst" not in core
    assert any(d.startswith("sphinx") for d in project["optional-dependencies"]["docs"])


def test_readme_is_short_and_keeps_the_ci_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    assert "python -m pytest -q" in readme
    assert 'pip install -e ".[dev]" && exactdyn verify linear1d' in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "\npython -m pytest -q\n" in ci
