"""The module paths of 0.1.0 that moved (exactdyn/_moved.py) still import, with one copy.

Each is checked in a fresh interpreter, so that the import really goes through the finder
(and not through a module some other test already put in ``sys.modules``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from exactdyn import _moved


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c",
                          "import json, warnings\n" + code],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_a_moved_path_warns_and_gives_the_new_objects(old):
    targets = _moved.MOVED[old]
    got = _run(f"""
import importlib
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    old = importlib.import_module({old!r})
news = [importlib.import_module(t) for t in {targets!r}]
names = [n for m in news for n in m.__all__]
same = all(getattr(old, n) is getattr(next(m for m in news if n in m.__all__), n)
           for n in names)
star = {{}}
exec("from {old} import *", star)
print(json.dumps({{"messages": [str(w.message) for w in caught
                                if w.category is DeprecationWarning],
                   "same": same, "star": sorted(k for k in star if k != "__builtins__"),
                   "names": sorted(names), "dir": sorted(names) == sorted(
                       n for n in dir(old) if n in names)}}))
""")
    assert len(got["messages"]) == 1, got["messages"]
    assert all(t in got["messages"][0] for t in targets), got["messages"]
    assert got["same"]            # the very objects of the new modules, not copies
    assert got["star"] == got["names"] and got["dir"]


def test_a_moved_path_names_the_new_place_of_a_missing_attribute():
    got = _run("""
warnings.simplefilter("ignore", DeprecationWarning)
import exactdyn.datasets as old
try:
    old.no_such_data
    message = None
except AttributeError as exc:
    message = str(exc)
print(json.dumps({"message": message}))
""")
    assert "no_such_data" in got["message"]
    assert "moved to exactdyn.models.datasets" in got["message"]


def test_the_probe_path_is_the_analysis_package_itself_without_warning():
    got = _run("""
import sys
import exactdyn as ed
import exactdyn.probe.torch
from exactdyn.probe import rd
from exactdyn.analysis.probe import rd as rd_new
import exactdyn.analysis.probe.torch as torch_new
print(json.dumps({
    "one_package": ed.probe is sys.modules["exactdyn.probe"]
                   is sys.modules["exactdyn.analysis.probe"],
    "one_torch": sys.modules["exactdyn.probe.torch"] is torch_new,
    "one_rd": rd is rd_new,
    "spec": [sys.modules[n].__spec__.name for n in ("exactdyn.probe", "exactdyn.probe.torch")],
}))
""")  # -W error::DeprecationWarning: any warning would fail the run
    assert got["one_package"] and got["one_torch"] and got["one_rd"]
    # The module keeps its own spec (the import system overwrote it with the alias's).
    assert got["spec"] == ["exactdyn.analysis.probe", "exactdyn.analysis.probe.torch"]


def test_the_finder_answers_for_the_moved_names_only():
    assert _moved.FINDER.find_spec("exactdyn.plotting") is None
    assert _moved.FINDER.find_spec("exactdyn.analysis.condensation") is None
    assert _moved.FINDER.find_spec("numpy") is None
    with pytest.raises(ModuleNotFoundError):
        import exactdyn.no_such_module  # noqa: F401


def test_the_finder_costs_import_exactdyn_no_module():
    # Found by measuring: importlib.abc brings importlib.resources, tempfile, shutil, lzma,
    # bz2 and random with it (20 ms -> 70 ms for ``import exactdyn``); the finder is
    # duck-typed so that none of them is imported.
    code = ("import sys\nimport exactdyn\nimport json\nprint(json.dumps(sorted(m for m in "
            "('importlib.abc', 'importlib.resources', 'tempfile', 'shutil', 'lzma', 'bz2', "
            "'random') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []
