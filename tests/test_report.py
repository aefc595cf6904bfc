"""Derivation reports: content from the sympy objects, numbers against verify(), atomic
writes, the freshness check of derivations/, pdflatex, notebook display, bad input."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.cli import _model as cli_model
from exactdyn.cli import build_parser, main
from exactdyn.report import content as content_mod
from exactdyn.report import figures as figures_mod
from exactdyn.report import markdown as markdown_mod
from exactdyn.report import writer
from exactdyn.symbolic.latex import escape_tex, latex

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DERIVATIONS = os.path.join(ROOT, "derivations")
TIMES = np.linspace(0.0, 3.0, 7)
PRECISION = 30


def small_model():
    return ed.Linear1D.from_init([0.3, -0.2], [0.1, 0.4], kappa=1.5, eta_u=2.0, teacher=-0.8)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports") / "linear1d"
    rep = ed.report(small_model(), out=str(out), t=TIMES, precision=PRECISION)
    return rep


def read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def test_report_files_are_all_written(built):
    names = set(built.files)
    assert {"README.md", "derivation.tex", "data.json"} <= names
    for stem in ("trajectory", "error", "conserved", "regime"):
        for ext in ("png", "svg"):
            path = os.path.join(built.path, "figures", f"{stem}.{ext}")
            assert os.path.getsize(path) > 1000
    with open(os.path.join(built.path, "figures", "error.png"), "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_every_equation_is_printed_from_the_sympy_objects(built):
    model = small_model()
    flow = ed.gradient_flow(model)
    readme = read(os.path.join(built.path, "README.md"))
    doc = read(os.path.join(built.path, "derivation.tex"))
    proofs = ed.closed_form(model).proofs
    exprs = [s.expr for s in flow.steps] + [s.expr for s in proofs]
    exprs += [q.expr for q in flow.conserved] + list(flow.reduced.constants.values())
    exprs += ed.closed_form(model).equations()
    for e in exprs:
        assert latex(e) in readme
        assert latex(e) in doc
    # Each proof's residual is shown, and each is 0.
    for s in proofs:
        assert s.proven and s.expr.rhs == 0
    # Numbered steps, each with its justification; the modified flow's steps last.
    from exactdyn.symbolic.modified import derive_modified_flow

    modified = derive_modified_flow(flow).steps
    for s in modified:
        assert latex(s.expr) in readme and latex(s.expr) in doc
    n = len(flow.steps) + 2 * len(flow.conserved) + len(flow.reduced.constants) \
        + len(ed.closed_form(model).equations()) + len(proofs) + len(modified)
    assert re.findall(r"^\*\*(\d+)\. ", readme, re.M) == [str(k) for k in range(1, n + 1)]


def test_a_changed_derivation_changes_the_report():
    content = content_mod.gather(small_model(), TIMES, PRECISION, verify_numbers=False)
    before = markdown_mod.render(content)
    x = sp.Symbol("x")
    step = content.steps[0]
    content.steps[0] = type(step)(step.title, sp.Eq(sp.Symbol("f(x)"), sp.sin(x) ** 3),
                                  step.justification, step.proven)
    after = markdown_mod.render(content)
    assert latex(sp.sin(x) ** 3) in after and latex(sp.sin(x) ** 3) not in before
    assert latex(step.expr) in before and latex(step.expr) not in after


def test_latex_fragment_names_are_kept_verbatim():
    # sympy splits names at ^ and _: "(p^* - p) K" would print as "(p^{* - p) K}".
    assert latex(sp.Symbol("(p^* - p) K")) == "(p^* - p) K"
    assert latex(sp.Eq(sp.Symbol("K^2"), sp.Symbol("\\omega^2 (p^2 + k'^2)"))) == \
        "K^2 = \\omega^2 (p^2 + k'^2)"


@given(st.from_regex(r"[a-zA-Z]{1,6}(_[a-z0-9]{1,3})?", fullmatch=True))
def test_plain_names_print_exactly_as_sympy(name):
    s = sp.Symbol(name)
    expr = s**2 / (1 + s)
    assert latex(expr) == sp.latex(expr)


@given(st.text(max_size=40))
def test_escaped_text_has_no_active_tex_characters(text):
    out = escape_tex(text)
    # Outside the $...$ we insert, no unescaped special character survives.
    # (Math-mode pieces we insert: a command like \eta, a sub/superscript, < > |.)
    stripped = re.sub(r"\$(\\[A-Za-z]+|[_^][0-9A-Za-z+-]|<|>|\|)\$", "", out)
    stripped = re.sub(r"\\(textbackslash|S|\^|~)\{\}|\\[_{}$&%#]", "", stripped)
    assert not re.search(r"[\\{}$&%#_^~]", stripped)


def test_verification_numbers_bound_the_raw_errors(built):
    data = json.loads(read(os.path.join(built.path, "data.json")))
    model = small_model()
    raw = {"float64": ed.verify(model, TIMES),
           f"{PRECISION} digits": ed.verify(model, TIMES, precision=PRECISION)}
    for label, rep in raw.items():
        rows = data["verification"][label]["observables"]
        assert data["verification"][label]["passed"] is rep.passed is True
        for c in rep.checks:
            for key, tol in (("max_abs_error", c.abs_tol), ("max_rel_error", c.rel_tol)):
                text, value = rows[c.name][key], getattr(c, key)
                if text == "0":
                    assert value == 0
                elif text == "n/a":  # a relative error with the reference near 0 throughout
                    assert key == "max_rel_error" and math.isnan(value)
                elif text == "> tol":
                    assert value > tol
                else:  # a decade bound, or the precision's round-off floor
                    assert text.startswith("< ") and value < float(text[2:])
                    floor = content_mod.precision_floor(rep.precision)
                    assert float(text[2:]) <= max(10 * value, floor)


@given(st.floats(min_value=1e-300, max_value=1e-9))
def test_float_bounds_hold_and_ignore_last_bits(x):
    text = content_mod.bound(x, tol=1e-9)
    assert float(text[2:]) > x
    assert float(text[2:]) <= max(10 * x * (1 + 1e-12), content_mod.FLOAT_FLOOR)
    if x < 0.9 * content_mod.FLOAT_FLOOR:  # a platform's last bits do not change it
        assert content_mod.bound(x * (1 + 1e-6), tol=1e-9) == text


def test_text_and_json_hold_no_paths_or_timestamps(built):
    for name in writer.TEXT_FILES:
        text = read(os.path.join(built.path, name))
        assert built.path not in text and os.path.dirname(built.path) not in text
        assert not re.search(r"20\d\d-\d\d-\d\d|\d\d:\d\d:\d\d", text)
    data = json.loads(read(os.path.join(built.path, "data.json")))
    assert data["exactdyn_version"] == ed.__version__
    # The regime: exactdyn.classify's labels with its evidence (rounded for stability).
    regime = ed.classify(small_model())
    assert data["regime"]["label"] == regime.label
    assert data["regime"]["predicted"] == regime.predicted
    for k, v in regime.evidence.items():
        if isinstance(v, float) and 0 < abs(v) < 1e-12:  # round-off moves with versions
            assert data["regime"]["evidence"][k] == "round-off (< 1e-12)"
        elif isinstance(v, float) and np.isfinite(v):
            assert data["regime"]["evidence"][k] == pytest.approx(v, rel=1e-3)


def test_non_finite_evidence_is_printed_not_dropped():
    # The small-init prediction of a balanced LinearNet is an infinite relative change of a
    # zero kernel; the report must say so rather than print None.
    from exactdyn.regimes.base import Regime

    regime = Regime(label="rich", taxonomy="t", predicted="rich",
                    evidence={"up": float("inf"), "down": float("-inf"), "nan": float("nan"),
                              "tiny": 3e-17, "x": 1.23456789})
    ev = content_mod.regime_summary(regime)["evidence"]
    assert ev == {"up": "inf", "down": "-inf", "nan": "nan", "tiny": "round-off (< 1e-12)",
                  "x": 1.235}
    assert regime.to_dict()["evidence"]["up"] is None  # the JSON form of the CLI


def test_the_printed_command_rebuilds_the_same_model(built):
    data = json.loads(read(os.path.join(built.path, "data.json")))
    readme = read(os.path.join(built.path, "README.md"))
    assert data["command"] in readme
    args = build_parser().parse_args(["report", *data["argv"], "--out", "x"])
    model = cli_model(args)
    assert model.params == small_model().params
    np.testing.assert_array_equal(np.linspace(0, 3, args.points), TIMES)
    assert args.precision == PRECISION


def test_conserved_quantities_lowered_from_sympy_match_a_numpy_oracle():
    model = small_model()
    traj = ed.solve(model, TIMES)
    q = figures_mod.conserved_values(model, traj.state)
    u, w = traj["u"], traj["w"]
    q1 = (u**2).sum(1) / model.eta_u - (w**2).sum(1) / model.eta_w
    q2 = (u**2).sum(1) * (w**2).sum(1) - (u * w).sum(1) ** 2
    np.testing.assert_allclose(q["Q_1"], q1, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(q["Q_2"], q2, rtol=1e-12, atol=1e-15)
    assert "C_ab" not in q  # entry-wise, shown through its invariants


def test_a_failure_part_way_leaves_the_old_report_intact(tmp_path, monkeypatch):
    out = tmp_path / "rep"
    ed.report(small_model(), out=str(out), t=TIMES, precision=PRECISION, figures=False)
    before = {n: read(out / n) for n in writer.TEXT_FILES}

    def boom(content, directory):
        raise RuntimeError("disk full (injected)")

    monkeypatch.setattr(writer.figures, "draw", boom)
    other = ed.Linear1D.from_init([1.0], [0.5], teacher=3.0)
    with pytest.raises(RuntimeError, match="injected"):
        ed.report(other, out=str(out), t=TIMES, precision=PRECISION)
    assert {n: read(out / n) for n in writer.TEXT_FILES} == before
    assert sorted(os.listdir(tmp_path)) == ["rep"]  # no temp directories left behind
    # And a successful write replaces the old report whole (no stale figures kept).
    os.makedirs(out / "figures")
    (out / "figures" / "stale.png").write_bytes(b"old")
    monkeypatch.undo()
    ed.report(other, out=str(out), t=TIMES, precision=PRECISION, figures=False)
    assert not os.path.exists(out / "figures")
    assert json.loads(read(out / "data.json"))["hyperparameters"]["teacher"] == 3.0


def test_bad_output_directory_is_a_clear_error(tmp_path, capsys):
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(ValueError, match="out"):
        ed.report(small_model(), out=str(afile), t=TIMES)
    with pytest.raises(ValueError, match="out"):
        ed.report(small_model(), out=str(afile / "sub"), t=TIMES)
    code = main(["report", "linear1d", "--width", "2", "--out", str(afile / "sub")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("exactdyn: error: ") and err.count("\n") == 1


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root can write into read-only directories")
def test_read_only_parent_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="not writable"):
            ed.report(small_model(), out=str(ro / "rep"), t=TIMES)
    finally:
        ro.chmod(0o700)


def test_unknown_model_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(TypeError, match="model"):
        ed.report("linear1d", out=str(tmp_path / "r"))
    code = main(["report", "nosuchmodel", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("exactdyn: error: ") and err.count("\n") == 1
    assert not os.path.exists(tmp_path / "r")


def test_committed_derivations_are_fresh_and_staleness_is_caught(tmp_path, capsys):
    root = tmp_path / "derivations"
    shutil.copytree(DERIVATIONS, root)
    assert main(["report", "--check", str(root)]) == 0
    out = capsys.readouterr().out
    for family in ("linear1d", "linear", "single-neuron", "deep-linear"):
        assert family in out
    for family in ("linear", "single-neuron", "deep-linear"):  # keep the rest fast
        shutil.rmtree(root / family)
    with open(root / "linear1d" / "README.md", "a") as fh:
        fh.write("edited by hand\n")
    assert main(["report", "--check", str(root)]) == 1
    err = capsys.readouterr().err
    assert "linear1d/README.md" in err and "data.json" not in err
    shutil.rmtree(root / "linear1d")
    assert main(["report", "--check", str(root)]) == 1
    assert "linear1d/ (missing" in capsys.readouterr().err
    assert main(["report", "--check", str(tmp_path / "nowhere")]) == 2


def test_derivation_tex_compiles_with_pdflatex(built, tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (apt-get install texlive-latex-base "
                    "texlive-latex-recommended); .ci/run installs it")
    work = tmp_path / "tex"
    shutil.copytree(built.path, work)
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                           "derivation.tex"], cwd=work, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
    log = read(work / "derivation.log")
    assert "Undefined control sequence" not in log and "Missing character" not in log
    pages = re.search(r"Output written on derivation\.pdf \((\d+) pages?", log)
    assert pages and int(pages.group(1)) >= 3
    with open(work / "derivation.pdf", "rb") as fh:
        assert fh.read(5) == b"%PDF-"


def test_notebook_display(built):
    model = small_model()
    flow = ed.gradient_flow(model)
    tex = flow._repr_latex_()
    assert tex.startswith("$$") and tex.endswith("$$")
    assert tex.count("{") == tex.count("}")
    for s in flow.steps:
        assert latex(s.expr) in tex
    assert latex(flow.steps[-1].expr) in flow._repr_markdown_()
    traj = ed.exact(model, TIMES)
    html, md = traj._repr_html_(), traj._repr_markdown_()
    assert "<table>" in html and "loss" in html
    first_loss = f"{traj['loss'][0]:.10g}"
    assert first_loss in md and first_loss in html
    assert "data:image/png;base64," in built._repr_markdown_()
    assert "| observable |" in ed.verify(model, TIMES)._repr_markdown_()


@given(st.floats(min_value=1e-80, max_value=4.9e-46), st.floats(min_value=0.5, max_value=2.0))
def test_round_off_errors_at_50_digits_print_the_same_on_any_library_version(x, wobble):
    """Regression (derivations stale on newer mpmath/gmpy2): a 50-digit round-off error
    moves in its leading digits with the library versions; the report prints its bound."""
    floor = content_mod.precision_floor(50)
    assert floor == pytest.approx(1e-45)
    assert content_mod.bound(x, tol=1e-40, floor=floor) == "< 1e-45"
    assert content_mod.bound(x * wobble, tol=1e-40, floor=floor) == "< 1e-45"
