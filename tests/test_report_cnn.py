"""Derivation report of the two-layer CNN (linearized closed form, condensation evidence)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import sympy as sp

import exactdyn as ed
from exactdyn.cli import main, report_build
from exactdyn.models.datasets import synthetic_images
from exactdyn.report import check_derivations
from exactdyn.symbolic import cnn as sc
from exactdyn.symbolic.latex import latex

TIMES = np.linspace(0.0, 0.4, 3)
ROOT = os.path.join(os.path.dirname(__file__), os.pardir, "derivations")


def read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def small(activation="tanh", **kw):
    images, y = synthetic_images(8, 6, 6, 1, 0)
    return ed.TwoLayerCNN(2, 3, images, y, activation=activation, scale=1e-3, seed=0, **kw)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn") / "cnn"
    return ed.report(small(), out=str(out), t=TIMES, precision=20)


def test_report_writes_every_file(built):
    files = sorted(os.listdir(built.path))
    assert files == ["README.md", "data.json", "derivation.tex", "figures"]
    stems = ["trajectory", "error", "kernel_cosine", "u1_ratio", "kernels"]
    assert json.loads(read(os.path.join(built.path, "data.json")))["figures"] == stems
    for stem in stems:
        for ext in ("png", "svg"):
            assert os.path.getsize(os.path.join(built.path, "figures", f"{stem}.{ext}")) > 0
    assert built.files[:3] == ["README.md", "derivation.tex", "data.json"]


def _numeric(expr, model, W, a):
    """A sympy expression of :mod:`exactdyn.symbolic.cnn` at one state of ``model``."""
    X = model.patches
    n, P, D = X.shape
    M = model.channels
    e = expr.subs({sc.N: n, sc.P: P, sc.D: D, sc.M: M, sc.ALPHA: model.alpha}).doit()
    arrays = {sc.XS: X, sc.W: W, sc.A: a, sc.YS: model.y}
    vals = {atom: arrays[atom.base][tuple(int(i) for i in atom.indices)]
            for atom in e.atoms(sp.Indexed)}
    e = e.xreplace({k: sp.Float(v, 30) for k, v in vals.items()})
    e = e.replace(lambda f: isinstance(f, sp.Function) and f.func == sc.DSIGMA,
                  lambda f: 1 - sp.tanh(f.args[0]) ** 2)
    e = e.replace(lambda f: isinstance(f, sp.Function) and f.func == sc.SIGMA,
                  lambda f: sp.tanh(f.args[0]))
    return float(e)


def test_printed_flow_is_the_derivation_and_is_minus_the_gradient(built):
    readme = read(os.path.join(built.path, "README.md"))
    tex = read(os.path.join(built.path, "derivation.tex"))
    flow = sc.derive_cnn_flow()
    for step in flow.steps:
        assert latex(step.expr) in readme and latex(step.expr) in tex
    # The printed right-hand sides (the same sympy objects), evaluated on a tiny instance,
    # against central finite differences of the model's loss (an independent code path).
    images, y = synthetic_images(4, 3, 3, 1, 1)
    rng = np.random.default_rng(3)
    W = rng.normal(0, 0.5, (2, 2, 1, 2))
    a = rng.normal(0, 0.5, (2, 2, 2))
    model = ed.TwoLayerCNN.from_init(W, a, images, y, activation="tanh")
    Wf, af = W.reshape(4, 2), a.reshape(4, 2)
    h = 1e-6
    observe = ed.lower(model).observe
    for (r, b) in [(0, 0), (3, 1)]:
        rhs = flow.rhs[sc.W].subs({sc.R: r, sc.B: b})
        Wp, Wm = Wf.copy(), Wf.copy()
        Wp[r, b] += h
        Wm[r, b] -= h
        fd = (observe(Wp.reshape(W.shape), a)[1] - observe(Wm.reshape(W.shape), a)[1]) / (2 * h)
        assert _numeric(rhs, model, Wf, af) == pytest.approx(-fd, rel=1e-6, abs=1e-9)
    for (q, b) in [(1, 0), (2, 1)]:
        rhs = flow.rhs[sc.A].subs({sc.Q: q, sc.B: b})
        ap, am = af.copy(), af.copy()
        ap[q, b] += h
        am[q, b] -= h
        fd = (observe(W, ap.reshape(a.shape))[1] - observe(W, am.reshape(a.shape))[1]) / (2 * h)
        assert _numeric(rhs, model, Wf, af) == pytest.approx(-fd, rel=1e-6, abs=1e-9)


def _z_by_loops(model):
    """Z_{l,k} = (1/n) sum_i y_i x_i[u+p, v+q, c], by explicit loops (oracle)."""
    x, y = model.images, model.y
    n, H, Wd, C = x.shape
    s = model.kernel_size
    hp, wp = H - s + 1, Wd - s + 1
    Z = np.zeros((s * s * C, hp * wp))
    for i in range(n):
        for u in range(hp):
            for v in range(wp):
                for p in range(s):
                    for q in range(s):
                        for c in range(C):
                            Z[(p * s + q) * C + c, u * wp + v] += y[i] * x[i, u + p, v + q, c]
    return Z / n


def test_spectrum_and_condensation_numbers(built):
    data = json.loads(read(os.path.join(built.path, "data.json")))
    spec = dict(data["tables"]["Spectrum of the linearization"]["rows"])
    sv = np.linalg.svd(_z_by_loops(built.content.model), compute_uv=False)  # tanh'(0) = 1
    assert float(spec["s_1"]) == pytest.approx(sv[0], rel=1e-5)
    assert float(spec["s_2"]) == pytest.approx(sv[1], rel=1e-5)
    assert float(spec["onset time log(1/scale)/s_1"]) == pytest.approx(np.log(1e3) / sv[0],
                                                                        rel=1e-5)
    rows = data["tables"]["Closed form against the full flow, and condensation"]["rows"]
    assert [r[0] for r in rows] == ["0", "0.2", "0.4"]
    ratio = [float(r[3]) for r in rows]
    assert ratio[0] > ratio[1] > ratio[2]  # kernels move onto u1 (s1 > s2)
    # at the start the linearization is exact to float64; later the error is a bound
    assert all(r[1].startswith("< 1e") for r in rows)
    assert data["conserved"] == {"Q_beta": False}  # tanh: h sigma'(h) != sigma(h)
    assert float(rows[-1][5]) > 0
    assert data["verification"] == {} and data["precision"] == 20


def test_linear_activation_proves_and_keeps_the_balance(tmp_path):
    rep = ed.report(small("linear"), out=str(tmp_path / "r"), t=TIMES, figures=False)
    data = json.loads(read(os.path.join(rep.path, "data.json")))
    assert data["conserved"] == {"Q_beta": True}
    rows = data["tables"]["Closed form against the full flow, and condensation"]["rows"]
    for r in rows:  # the conserved balance drifts only at integrator accuracy
        assert r[5] == "0" or float(r[5].lstrip("< ")) <= 1e-10


def test_relu_report_has_no_closed_form(tmp_path):
    rep = ed.report(small("relu"), out=str(tmp_path / "r"), t=TIMES[:2], figures=False)
    readme = read(os.path.join(rep.path, "README.md"))
    assert "Not available: activation 'relu' is not smooth at 0" in readme
    data = json.loads(read(os.path.join(rep.path, "data.json")))
    assert data["conserved"] == {"Q_beta": True}
    assert list(data["tables"]) == ["Balance along the full flow"]


def test_argv_rebuilds_the_model(built, tmp_path):
    data = json.loads(read(os.path.join(built.path, "data.json")))
    assert data["argv"][0] == "cnn"
    model, times, precision = report_build(data["argv"])
    np.testing.assert_array_equal(model.images, built.content.model.images)
    np.testing.assert_array_equal(model.W0, built.content.model.W0)
    np.testing.assert_array_equal(times, TIMES)
    assert precision == 20
    # explicit kernels: the command line cannot rebuild them, and the report says so
    m = small()
    explicit = ed.TwoLayerCNN.from_init(m.W0, m.a0, m.images, m.y)
    rep = ed.report(explicit, out=str(tmp_path / "e"), t=TIMES[:2], figures=False)
    assert json.loads(read(os.path.join(rep.path, "data.json")))["argv"] is None


def test_closed_form_overflow_is_reported_not_raised(tmp_path):
    # s_1 t > 710 overflows float64 (cosh); the full flow (tanh) stays bounded.
    rep = ed.report(small(), out=str(tmp_path / "o"), t=[0.0, 0.1, 300.0], figures=True)
    data = json.loads(read(os.path.join(rep.path, "data.json")))
    rows = data["tables"]["Closed form against the full flow, and condensation"]["rows"]
    assert rows[-1][1:3] == ["overflow", "overflow"] and rows[1][1].startswith("< 1e")
    assert "trajectory" not in data["figures"] and "u1_ratio" in data["figures"]
    assert "leaves the float64 range after t = 0.1" in read(os.path.join(rep.path,
                                                                       "README.md"))


def _build(argv):
    assert argv[0] == "cnn"
    return report_build(argv)


def test_check_round_trip_detects_a_modified_file(tmp_path):
    root = tmp_path / "derivations"
    shutil.copytree(os.path.join(ROOT, "cnn"), root / "cnn")
    assert check_derivations(str(root), _build, ["cnn"]) == ([], ["cnn"])
    path = root / "cnn" / "README.md"
    path.write_text(path.read_text(encoding="utf-8").replace("s\\_1", "s\\_0", 1),
                    encoding="utf-8")
    assert check_derivations(str(root), _build, ["cnn"]) == (["cnn/README.md"], ["cnn"])


def test_cli_writes_a_report_from_npy_files(tmp_path, capsys):
    images, y = synthetic_images(6, 5, 5, 1, 2)
    np.save(tmp_path / "x.npy", images)
    np.save(tmp_path / "y.npy", y)
    out = tmp_path / "rep"
    code = main(["report", "cnn", "--images", str(tmp_path / "x.npy"), "--labels",
                 str(tmp_path / "y.npy"), "--channels", "2", "--t", "0,0.1",
                 "--no-figures", "--out", str(out)])
    assert code == 0 and "wrote" in capsys.readouterr().out
    argv = json.loads(read(out / "data.json"))["argv"]
    assert argv[argv.index("--images") + 1] == str(tmp_path / "x.npy")


@pytest.mark.parametrize("argv", [
    ["--channels", "0"],
    ["--kernel-size", "9"],
    ["--images", "missing.npy", "--labels", "missing.npy"],
    ["--data", "mnist"],
    ["--activation", "import os"],
    ["--bogus"],
])
def test_bad_cli_input_exits_2_with_one_line(argv, tmp_path, capsys):
    assert main(["report", "cnn", *argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err
    assert not (tmp_path / "r").exists()


def test_missing_out_exits_2(capsys):
    assert main(["report", "cnn", "--channels", "2"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_committed_cnn_tex_compiles(tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed")
    work = tmp_path / "cnn"
    shutil.copytree(os.path.join(ROOT, "cnn"), work)
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                           "derivation.tex"], cwd=work, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
