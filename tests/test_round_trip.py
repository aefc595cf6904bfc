"""Issue 14, "results that can't be read back or are cut": every family's trajectory,
saved as JSON, NPZ or CSV and read back with ``ed.load``, equals the saved one to the
last digit (metadata, high-precision numbers, matrix observables)."""

import json

import mpmath
import numpy as np
import pytest

import exactdyn as ed
from exactdyn.models.deep_linear import teacher_matrix


def _cnn():
    rng = np.random.default_rng(0)
    return ed.TwoLayerCNN(2, 3, rng.normal(size=(4, 5, 5, 1)), rng.normal(size=4), seed=1)


# (family, model factory, precisions the family's solve supports)
FAMILIES = [
    ("Linear1D", lambda: ed.Linear1D(width=3, kappa=0.7, seed=1), (None, 30)),
    ("LinearNet", lambda: ed.LinearNet(seed=1), (None, 30)),
    ("SingleNeuron", lambda: ed.SingleNeuron(seed=1), (None, 30)),
    ("DeepLinear", lambda: ed.DeepLinear(depth=3, width=4, in_dim=3, out_dim=3,
                                         sigma_yx=teacher_matrix([3, 2, 1], 3, 3), seed=0),
     (None, 30)),
    ("TwoLayer", lambda: ed.TwoLayer(4, "1d-sine", activation="tanh", seed=2), (None,)),
    ("TwoLayerCNN", _cnn, (None,)),
]
CASES = [pytest.param(make, prec, id=f"{name}-{'float64' if prec is None else prec}")
         for name, make, precs in FAMILIES for prec in precs]
_cache = {}


def _traj(make, precision):
    key = (make, precision)
    if key not in _cache:
        _cache[key] = ed.solve(make(), [0.0, 0.25, 1.0], precision=precision)
    return _cache[key]


def _save(tr, path, ext):
    if ext == "json":
        tr.to_json(path, include_state=True)
    elif ext == "npz":
        tr.to_npz(path)
    else:
        tr.to_csv(path, include_state=True, meta=True)


def _assert_same_numbers(got, saved, name):
    got, saved = np.asarray(got), np.asarray(saved)
    assert got.shape == saved.shape, (name, got.shape, saved.shape)
    assert got.dtype == saved.dtype, (name, got.dtype, saved.dtype)
    for a, b in zip(got.ravel(), saved.ravel()):
        if isinstance(b, mpmath.mpf):
            assert isinstance(a, mpmath.mpf), (name, a)
            # the same binary number: sign, mantissa, exponent
            assert a._mpf_ == b._mpf_ or (mpmath.isnan(a) and mpmath.isnan(b)), (name, a, b)
        else:
            assert a == b or (np.isnan(a) and np.isnan(b)), (name, a, b)


@pytest.mark.parametrize("ext", ["json", "npz", "csv"])
@pytest.mark.parametrize("make,precision", CASES)
def test_loaded_trajectory_equals_the_saved_one_to_the_last_digit(tmp_path, make, precision,
                                                                   ext):
    tr = _traj(make, precision)
    path = tmp_path / f"traj.{ext}"
    _save(tr, path, ext)
    back = ed.load(path)
    assert isinstance(back, ed.Trajectory)
    assert list(back.observables) == list(tr.observables)
    assert list(back.state) == list(tr.state)
    _assert_same_numbers(back.t, tr.t, "t")
    for k, v in tr.observables.items():
        _assert_same_numbers(back.observables[k], v, k)
    for k, v in tr.state.items():
        _assert_same_numbers(back.state[k], v, k)
    # metadata as it reads back from JSON (tuples become lists)
    assert back.meta == json.loads(json.dumps(tr.meta, default=list))
    assert back.precision == precision and back.model == tr.model
    assert back == tr


def test_equality_sees_a_change_in_the_last_digit():
    tr = _traj(FAMILIES[0][1], 30)
    back = ed.Trajectory.from_json(tr.to_json(include_state=True))
    assert back == tr
    loss = back.observables["loss"].copy()
    loss[1] = loss[1] * (1 + mpmath.mpf(2) ** -100)
    back.observables["loss"] = loss
    assert back != tr
    f = _traj(FAMILIES[0][1], None)
    assert f != tr                                    # float64 vs 30 digits
    assert ed.Trajectory.from_json(f.to_json()).equals(f, state=False)
    assert not ed.Trajectory.from_json(f.to_json()).equals(f)   # states not in the file


def test_csv_of_a_linear_net_keeps_end_to_end_and_singular_values():
    tr = ed.solve(ed.LinearNet(seed=1), [0.0, 0.5, 1.0])
    lines = tr.to_csv().splitlines()
    header = next(iter(__import__("csv").reader(lines[:1])))
    assert header[:2] == ["t", "end_to_end[0,0]"]
    assert "end_to_end[2,1]" in header and "singular_values[2]" in header and "loss" in header
    row = lines[2].split(",")  # no comma inside a number
    col = header.index("end_to_end[2,1]")
    assert float(row[col]) == tr["end_to_end"][1, 2, 1]
    assert float(row[header.index("singular_values[0]")]) == tr["singular_values"][1, 0]


def test_plain_csv_reads_back_without_metadata():
    tr = _traj(FAMILIES[1][1], None)
    back = ed.Trajectory.from_csv(tr.to_csv())
    assert back.meta == {} and back.state == {}
    for k, v in tr.observables.items():
        _assert_same_numbers(back[k], v, k)


def test_load_names_the_extensions_it_reads(tmp_path):
    with pytest.raises(ValueError, match=r"\.json, \.npz or \.csv"):
        ed.load(tmp_path / "traj.txt")
    (tmp_path / "x.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match="not a trajectory JSON file"):
        ed.load(tmp_path / "x.json")


def test_two_runs_of_a_kinked_flow_are_equal_whatever_their_wall_times():
    # meta["seconds"] is the run's wall time, not a number of the trajectory: two solves of
    # one ReLU network are the same trajectory (and their kink counts and evaluations agree)
    net = ed.TwoLayer(6, "1d-sine", activation="relu", seed=0, n=8)
    a, b = ed.solve(net, [0.0, 1.0, 5.0]), ed.solve(net, [0.0, 1.0, 5.0])
    assert a.meta["seconds"] > 0 and a.meta["kinks"] > 0
    b.meta["seconds"] = a.meta["seconds"] + 1.0
    assert a == b
    assert (a.meta["kinks"], a.meta["nfev"], a.meta["steps"]) == (
        b.meta["kinks"], b.meta["nfev"], b.meta["steps"])
    b.meta["kinks"] += 1
    assert a != b
