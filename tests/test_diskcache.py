"""The on-disk cache of lowered flows (issue 15, item 4; exactdyn/diskcache.py).

A second process reads the generated sources instead of deriving and printing the flow:
its trajectories must be the same bit for bit as a process that derived them, and it must
not derive (checked in the process itself). Damaged entries are rebuilt, keys separate
networks that differ, and the folder follows the user's umask. Speed is measured in
benchmarks/bench_startup.py, not asserted here."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

import exactdyn as ed
from exactdyn import diskcache, flows

ROOT = os.path.join(os.path.dirname(__file__), "..")

# One script per family: solve, then report the states (exact hex floats), whether the flow
# was derived in this process, and which entries the cache folder holds.
_SCRIPT = r"""
import json, os, sys
import numpy as np
import sympy as sp
import exactdyn as ed
from exactdyn import flows
which = sys.argv[1]
if which == "linear1d":
    model = ed.Linear1D(width=5, seed=3)
elif which == "linearnet":
    model = ed.LinearNet(in_dim=3, hidden=4, out_dim=2)
elif which == "deep_linear":
    model = ed.DeepLinear(depth=3, width=4, in_dim=2, out_dim=2, sigma_yx=np.diag([2.0, 1.0]))
elif which == "twolayer":
    model = ed.TwoLayer(4, "1d-sine", activation="relu", n=5)
elif which == "cnn":
    rng = np.random.default_rng(0)
    model = ed.TwoLayerCNN(2, 3, rng.normal(size=(3, 5, 5, 1)), rng.normal(size=3), scale=0.5)
else:
    i, d = sp.symbols("i d", integer=True)
    u, v = sp.IndexedBase("u"), sp.IndexedBase("v")
    b = sp.Symbol("beta_star")
    net = ed.Network("diag", params=[u, v], index=i, width=d,
                     loss=(sp.Sum(u[i]**2 - v[i]**2, (i, 0, d - 1)) - b)**2 / 2, hyper=[b])
    model = net.random_init(4, scale=0.5, seed=1, beta_star=0.7)
import exactdyn.numeric.cnn as ncnn
import exactdyn.numeric.twolayer as ntl
calls = []
for mod in (ntl, ncnn):  # the kinked families' derivation, counted
    mod._derive_sources = lambda f=mod._derive_sources: (calls.append(1), f())[1]
traj = ed.solve(model, [0.0, 0.5, 1.0])
states = {k: [x.hex() for x in np.asarray(v, dtype=float).ravel()]
          for k, v in {**traj.state, **traj.observables}.items()}
print(json.dumps({"states": states, "derived": len(flows._FLOWS) + len(calls),
                  "entries": sorted(os.listdir(os.environ["EXACTDYN_CACHE_DIR"]))}))
"""


def _run(which: str, cache: str) -> dict:
    env = dict(os.environ, EXACTDYN_CACHE_DIR=cache, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", _SCRIPT, which], capture_output=True,
                         text=True, env=env, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("which", ["linear1d", "linearnet", "deep_linear", "network",
                                   "twolayer", "cnn"])
def test_a_warm_process_does_not_derive_and_gives_the_same_trajectory(which, tmp_path):
    cache = str(tmp_path / "cache")
    cold = _run(which, cache)
    assert cold["derived"] == 1 and len(cold["entries"]) == 1
    warm = _run(which, cache)
    assert warm["derived"] == 0  # no sympy derivation in the second process
    assert warm["states"] == cold["states"]  # bit for bit
    assert warm["entries"] == cold["entries"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache folder for this process; the in-process memo emptied around the test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("EXACTDYN_CACHE_DIR", str(folder))
    flows._STORED.clear()
    yield folder
    flows._STORED.clear()


def _states(traj) -> dict:
    return {k: np.asarray(v).copy() for k, v in traj.state.items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_the_disabled_cache_writes_nothing_and_gives_the_same_trajectory(cache, monkeypatch):
    model = ed.Linear1D(width=3)
    with_cache = _states(ed.solve(model, [0, 1]))
    assert len(os.listdir(cache)) == 1
    monkeypatch.setenv("EXACTDYN_CACHE_DIR", "")
    assert diskcache.cache_dir() is None
    assert _same(_states(ed.solve(ed.Linear1D(width=3), [0, 1])), with_cache)
    monkeypatch.setenv("EXACTDYN_CACHE_DIR", str(cache))
    diskcache.set_enabled(False)
    try:
        assert diskcache.cache_dir() is None
    finally:
        diskcache.set_enabled(True)
    assert diskcache.cache_dir() == str(cache)
    with pytest.raises(ValueError, match="flag"):
        diskcache.set_enabled("no")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "edited source", "bad payload"])
def test_a_damaged_entry_is_ignored_and_rebuilt(cache, damage):
    model = ed.Linear1D(width=4, seed=2)
    reference = _states(ed.solve(model, [0, 1]))
    (path,) = [cache / n for n in os.listdir(cache)]
    text = path.read_text()
    if damage == "garbage":
        path.write_bytes(b"\x00\xffnot json")
    elif damage == "truncated":
        path.write_text(text[: len(text) // 2])
    elif damage == "edited source":  # valid JSON whose checksum no longer matches
        path.write_text(text.replace("def rhs(", "def rhs_(", 1))
    else:  # checksum recomputed, payload of the wrong shape
        entry = json.loads(text)
        entry["payload"]["compiled"]["rhs"] = {"expressions": [1, 2]}
        entry["checksum"] = diskcache._checksum(entry["payload"])
        path.write_text(json.dumps(entry))
    flows._STORED.clear()
    again = flows.lower(ed.Linear1D(width=4, seed=2))
    assert again._flow is not None  # derived, since the entry was unusable
    assert _same(_states(ed.solve(model, [0, 1])), reference)
    assert json.loads(path.read_text()) == json.loads(text)  # rewritten as it was


def _diag(loss_power: int) -> ed.Network:
    i, d = sp.symbols("i d", integer=True)
    u, v = sp.IndexedBase("u"), sp.IndexedBase("v")
    b = sp.Symbol("beta_star")
    return ed.Network("same_name", params=[u, v], index=i, width=d,
                      loss=(sp.Sum(u[i]**2 - v[i]**2, (i, 0, d - 1)) - b)**loss_power / 2,
                      hyper=[b])


def test_two_networks_of_one_name_never_share_an_entry(cache, monkeypatch):
    nets = [_diag(2), _diag(4)]
    keys = [net.derivation_key for net in nets]
    assert keys[0] != keys[1]
    assert diskcache.entry_path("lowered", keys[0]) != diskcache.entry_path("lowered", keys[1])
    init = {"u": np.array([0.3, 0.2]), "v": np.array([0.1, 0.4])}
    cached = [_states(ed.solve(n.from_init(init, beta_star=0.5), [0, 2])) for n in nets]
    assert len(os.listdir(cache)) == 2
    assert not _same(cached[0], cached[1])
    # Each agrees with a run that never saw the cache (fresh networks, cache off).
    monkeypatch.setenv("EXACTDYN_CACHE_DIR", "")
    for power, got in zip((2, 4), cached):
        assert _same(_states(ed.solve(_diag(power).from_init(init, beta_star=0.5), [0, 2])), got)


def test_the_key_changes_with_the_version_and_the_model(cache, monkeypatch):
    key = flows._disk_key(ed.Linear1D(width=2))
    assert key == flows._disk_key(ed.Linear1D(width=50, kappa=3.0))  # one flow per family
    assert key != flows._disk_key(ed.DeepLinear(depth=3, width=2, in_dim=1, out_dim=1,
                                                sigma_yx=[[1.0]]))
    assert flows._disk_key(ed.DeepLinear(depth=2, width=2, in_dim=1, out_dim=1,
                                         sigma_yx=[[1.0]])) != \
        flows._disk_key(ed.DeepLinear(depth=3, width=2, in_dim=1, out_dim=1, sigma_yx=[[1.0]]))
    path = diskcache.entry_path("lowered", key)
    diskcache.store("lowered", key, {"x": 1})
    assert diskcache.load("lowered", key) == {"x": 1}
    monkeypatch.setattr(diskcache, "__version__", "999.0")
    assert diskcache.entry_path("lowered", key) != path
    assert diskcache.load("lowered", key) is None
    monkeypatch.setattr(diskcache, "_fingerprint", "edited sources")
    monkeypatch.setattr(diskcache, "__version__", ed.__version__)
    assert diskcache.load("lowered", key) is None  # same version, other code


def test_classes_defined_outside_the_package_are_not_cached(cache):
    class MyLinear(ed.Linear1D):  # could derive another flow under the same name
        pass

    assert MyLinear(width=2).derivation_key is None
    ed.solve(MyLinear(width=2), [0, 1])
    assert not cache.exists() or os.listdir(cache) == []


def test_a_stored_lowering_derives_on_demand(cache, monkeypatch):
    """The precision path needs the symbolic flow: a lowering read from disk derives it
    when asked, and gives what a derived lowering gives."""
    model = ed.Linear1D(width=3, seed=5, kappa=2.0, teacher=0.5)
    derived = flows.lower(model)
    stored = flows._lower_stored(model, flows._STORED[flows._disk_key(model)])
    assert stored._flow is None
    values = model.symbol_values()
    assert [values[s] for s in stored.param_symbols] == list(stored.param_values)
    assert stored.flow is flows.gradient_flow(model)
    y = derived.pack(model.initial_state())
    assert np.array_equal(stored.rhs(0, y), derived.rhs(0, y))
    assert np.array_equal(stored.jac(0, y), derived.jac(0, y))
    high = _states(ed.solve(model, [0, 0.5], precision=20))  # through the stored lowering
    monkeypatch.setenv("EXACTDYN_CACHE_DIR", "")
    assert _same(_states(ed.solve(model, [0, 0.5], precision=20)), high)


def test_the_folder_follows_the_umask(tmp_path, monkeypatch):
    folder = tmp_path / "a" / "b"
    monkeypatch.setenv("EXACTDYN_CACHE_DIR", str(folder))
    old = os.umask(0o027)
    try:
        diskcache.store("lowered", "k", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o750
    assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o750
    (entry,) = os.listdir(folder)
    assert stat.S_IMODE(os.stat(folder / entry).st_mode) == 0o640
    assert diskcache.clear() == 1 and os.listdir(folder) == []


def test_a_killed_writers_temporary_file_is_removed(cache):
    cache.mkdir()
    dead = cache / ".tmp-999999999-abc"  # a pid above any pid_max: no such process
    dead.write_text("{")
    diskcache.store("lowered", "k", {"x": 1})
    assert not dead.exists() and diskcache.load("lowered", "k") == {"x": 1}


def test_the_default_location(monkeypatch, tmp_path):
    monkeypatch.delenv("EXACTDYN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert diskcache.cache_dir() == str(tmp_path / "xdg" / "exactdyn")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: absolute only
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert diskcache.cache_dir() == str(tmp_path / "home" / ".cache" / "exactdyn")


def test_clear_deletes_only_the_caches_own_files(tmp_path, monkeypatch):
    """EXACTDYN_CACHE_DIR may name a folder of the user's: clear() leaves other files."""
    monkeypatch.setenv("EXACTDYN_CACHE_DIR", str(tmp_path))
    (tmp_path / "notes.json").write_text("{}")
    (tmp_path / "run.tmp-log").write_text("keep")
    diskcache.store("lowered", "k", {"x": 1})
    assert diskcache.clear() == 1
    assert sorted(os.listdir(tmp_path)) == ["notes.json", "run.tmp-log"]
