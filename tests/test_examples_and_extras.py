"""Issue 14, "examples that disagree with each other" and "extras": every example takes
``--out DIR`` (default a temporary directory, never ``examples/output`` relative to where
it runs) and states its run time; a plain install pulls no dask, ruff or scikit-learn."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_takes_out_dir_and_states_its_run_time(path):
    text = path.read_text()
    doc = " ".join(ast.get_docstring(ast.parse(text)).split())
    assert f"python examples/{path.name} [--out DIR]" in doc
    assert re.search(r"[Rr]un time:? (about|under|~)? ?[0-9]", doc), doc
    assert "RUNTIME" not in doc
    assert "examples/output" not in text and "sys.argv[1]" not in text
    assert "from _out import" in text  # the one convention (examples/_out.py)


def test_example_help_names_out_dir():
    # a cheap example: --help parses without running anything
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "luo_phase_diagram.py"),
                          "--help"], capture_output=True, text=True, cwd=ROOT / "tests",
                         timeout=120)
    assert out.returncode == 0 and "--out DIR" in out.stdout


def test_default_out_is_a_new_temporary_directory(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    from _out import out_dir

    monkeypatch.chdir(tmp_path)
    a, b = out_dir(None, "x"), out_dir(None, "x")
    assert a != b and a.is_dir() and not str(a).startswith(str(tmp_path))
    assert os.listdir(tmp_path) == []  # nothing written where it runs
    assert out_dir(str(tmp_path / "given"), "x") == tmp_path / "given"


def test_plain_install_pulls_no_dask_ruff_or_sklearn():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = lambda reqs: {re.split(r"[\[<>=~ ]", r)[0].lower() for r in reqs}  # noqa: E731
    plain = names(project["dependencies"])
    assert not plain & {"dask", "distributed", "ruff", "scikit-learn", "pytest", "hypothesis"}
    extras = project["optional-dependencies"]
    assert names(extras["dask"]) == {"dask"} and names(extras["cnn"]) == {"scikit-learn"}
    # dev: the contributors' tools plus every extra the tests exercise (.ci/run installs it)
    assert {"pytest", "hypothesis", "ruff"} <= names(extras["dev"])
    assert "exactdyn[dask,cnn]" in extras["dev"]
    assert '".[dev]"' in (ROOT / ".ci" / "run").read_text()
