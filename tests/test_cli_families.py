r"""The command line's families: one option table per family, options generated from a
model class's fields, and a new family on the command line without a CLI edit (issue 11
item 5; issue 14, "help that disagrees with behaviour": ``solve --help`` listed 45 options
of four families and left two-layer and cnn out).

The new family of these tests is relaxation to a target,
:math:`L = \tfrac12\sum_i (u_i - c)^2`, whose flow :math:`\dot u_i = c - u_i` has the
closed form :math:`u_i(t) = c + (u_i(0) - c)e^{-t}` (checked here against the integrator
and the formula, both independent of the command line).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import exactdyn as ed
from exactdyn.cli import family_parser, known_families, main, register_family, report_build
from exactdyn.cli.families import generated_family
from exactdyn.closed_form import register_closed_form
from exactdyn.models.base import ModelMixin
from exactdyn.models.fields import field_args, option_fields, unsupported_fields
from exactdyn.numeric.integrate import lowered_trajectory

_I, _D = sp.symbols("i d", integer=True)
_U = sp.IndexedBase("u")
_C = sp.Symbol("c")
RELAX = ed.Network("relax", params=[_U], index=_I, width=_D,
                   loss=sp.Sum((_U[_I] - _C) ** 2, (_I, 0, _D - 1)) / 2, hyper=[_C])


@dataclasses.dataclass(frozen=True)
class Relax(ModelMixin):
    r"""Weights relaxing to a target, :math:`\dot u_i = c - u_i`.

    Parameters
    ----------
    width : int
        Number of weights :math:`d \ge 1`.
    target : float
        The target :math:`c`.
    scale : float
        Init standard deviation of :math:`u`.
    seed : int
        Seed of the init.
    rates : tuple of float
        Not used by the flow; a vector option.
    """

    width: int = 3
    target: float = 1.0
    scale: float = 0.5
    seed: int = 0
    rates: tuple = (1.0, 2.0)

    name = "relax"
    state_names = ("u",)

    def initial_state(self) -> dict:
        return {"u": np.random.default_rng(self.seed).normal(0.0, 1.0, self.width) * self.scale}

    @property
    def params(self) -> dict:
        return {"width": self.width, "target": self.target, "scale": self.scale,
                "seed": self.seed, "rates": list(self.rates)}

    @property
    def flow_key(self):
        return RELAX

    def symbolic_network(self):
        return RELAX.symbolic_network()

    def symbol_values(self) -> dict:
        return {_C: self.target}

    def with_init_scaled(self, factor: float) -> Relax:
        return dataclasses.replace(self, scale=self.scale * factor)


def _relax_exact(model, times, precision):
    u0 = model.initial_state()["u"]
    if precision is None:
        ys = [model.target + (u0 - model.target) * np.exp(-t) for t in times]
    else:
        with mpmath.workdps(precision + 5):
            c = mpmath.mpf(model.target)
            ys = [np.array([c + (mpmath.mpf(float(v)) - c) * mpmath.exp(-mpmath.mpf(float(t)))
                            for v in u0], dtype=object) for t in times]
    return lowered_trajectory(model, ed.lower(model), np.asarray(times, float), np.array(ys),
                              precision, {"method": "closed form"})


class _RelaxForm:
    proven = True

    def equations(self):
        t, u0 = sp.Symbol("t"), sp.Symbol("u_0")
        return [sp.Eq(sp.Function("u")(t), _C + (u0 - _C) * sp.exp(-t))]

    def residual(self):
        t, u0 = sp.Symbol("t"), sp.Symbol("u_0")
        u = _C + (u0 - _C) * sp.exp(-t)
        return sp.simplify(sp.diff(u, t) - (_C - u))


register_closed_form(Relax, _relax_exact, lambda model: _RelaxForm())


@pytest.fixture
def relax_exported(monkeypatch):
    """``Relax`` exported by exactdyn: the one line a new family adds to ``__init__``."""
    monkeypatch.setattr(ed, "Relax", Relax, raising=False)
    monkeypatch.setattr(ed, "__all__", [*ed.__all__, "Relax"])
    return Relax


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ help per family


def test_solve_help_lists_every_family_not_their_options():
    out = subprocess.run([sys.executable, "-m", "exactdyn", "solve", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for name in ("linear1d", "linear", "single-neuron", "deep-linear", "two-layer", "cnn"):
        assert name in out
    for option in ("--kappa", "--teacher-svals", "--activation", "--kernel-size"):
        assert option not in out
    assert out.splitlines()[0].startswith("usage: exactdyn solve [-h] MODEL")


@pytest.mark.parametrize("command", ["solve", "exact", "verify", "report"])
def test_each_family_help_shows_its_own_options_only(command):
    two_layer = family_parser(command, "two-layer").format_help()
    assert "--activation" in two_layer and "--beta1" in two_layer
    assert "--kappa" not in two_layer and "--teacher-svals" not in two_layer
    linear1d = family_parser(command, "linear1d").format_help()
    assert "--kappa" in linear1d and "--activation" not in linear1d
    assert "--hidden" not in linear1d and "--depth" not in linear1d


def test_generated_options_are_the_model_fields_with_their_docstrings():
    text = " ".join(family_parser("solve", "linear1d").format_help().split())
    for f in option_fields(ed.Linear1D):
        assert f.flag in text
    assert "Output scale kappa != 0. (default 1.0)" in text
    assert "Hidden width d >= 1. (default 64)" in text
    args = family_parser("solve", "linear1d").parse_args(["--kappa", "2.5", "--x-var", "3"])
    assert known_families()["linear1d"].build(args) == ed.Linear1D(kappa=2.5, x_var=3.0)


def test_option_given_with_an_explicit_init_that_it_cannot_apply_is_an_error(capsys):
    code, _, err = _run(capsys, "exact", "linear1d", "--u0", "1,2", "--w0", "1,2",
                        "--seed", "3")
    assert code == 2 and "--seed" in err and err.count("\n") == 1


def test_a_command_a_family_does_not_take_is_a_clear_error(capsys):
    from exactdyn.cli.main import family_parser as fp

    with pytest.raises(ValueError, match="classify takes"):
        fp("classify", "cnn")
    code, _, err = _run(capsys, "classify", "cnn")
    assert code == 2 and "invalid choice" in err


# ------------------------------------------------------------------ a new family


def test_a_new_family_gets_every_command_without_a_cli_edit(relax_exported, capsys,
                                                            tmp_path):
    fam = known_families()["relax"]
    assert fam.generated and fam.model_type is Relax
    code, out, _ = _run(capsys, "solve", "relax", "--width", "4", "--target", "-0.5",
                        "--scale", "2", "--seed", "7", "--t", "0,0.5,3", "--format", "json")
    assert code == 0
    data = json.loads(out)
    model = Relax(width=4, target=-0.5, scale=2.0, seed=7)
    u0 = model.initial_state()["u"]
    formula = -0.5 + (u0 - -0.5) * np.exp(-np.array([0, 0.5, 3.0]))[:, None]
    ref = ed.solve(model, [0, 0.5, 3]).state["u"]
    np.testing.assert_allclose(ref, formula, rtol=1e-10, atol=1e-12)
    assert data["params"]["target"] == -0.5 and data["params"]["seed"] == 7

    code, out, _ = _run(capsys, "exact", "relax", "--width", "4", "--target", "-0.5",
                        "--scale", "2", "--seed", "7", "--t", "3", "--format", "csv")
    assert code == 0 and out.startswith("t,")
    code, out, _ = _run(capsys, "verify", "relax", "--width", "2", "--t-span", "0:2")
    assert code == 0 and "PASSED" in out
    code, out, _ = _run(capsys, "solve", "relax", "--rates", "3,4", "--t", "1",
                        "--precision", "30", "--format", "json")
    assert code == 0 and json.loads(out)["params"]["rates"] == [3.0, 4.0]

    out_dir = tmp_path / "relax"
    code, out, _ = _run(capsys, "report", "relax", "--width", "2", "--target", "0.25",
                        "--t-span", "0:1", "--points", "3", "--precision", "20",
                        "--no-figures", "--out", str(out_dir))
    assert code == 0
    argv = json.loads((out_dir / "data.json").read_text())["argv"]
    assert argv[:2] == ["relax", "--width"] and "--target" in argv
    again, times, precision = report_build(argv)
    assert again == Relax(width=2, target=0.25) and precision == 20
    np.testing.assert_array_equal(times, [0.0, 0.5, 1.0])


def test_a_new_family_without_a_taxonomy_says_so(relax_exported, capsys):
    code, _, err = _run(capsys, "classify", "relax")
    assert code == 2 and err.startswith("exactdyn: error:") and err.count("\n") == 1


def test_bad_values_of_generated_options_name_the_flag(relax_exported, capsys):
    for argv, flag in ((["--width", "x"], "--width"), (["--rates", "1,,2"], "--rates"),
                       (["--target", "one"], "--target")):
        code, _, err = _run(capsys, "solve", "relax", *argv)
        assert code == 2 and flag in err and err.count("\n") == 1


def test_register_family_offers_a_class_not_exported(capsys, monkeypatch):
    import exactdyn.cli.families as fam_module

    monkeypatch.setattr(fam_module, "_REGISTERED", {})
    register_family(Relax)
    code, out, _ = _run(capsys, "solve", "relax", "--t", "1", "--format", "json")
    assert code == 0 and json.loads(out)["model"] == "relax"


def test_a_class_the_command_line_cannot_build_is_refused_by_name():
    @dataclasses.dataclass(frozen=True)
    class Needs:
        data: object
        name = "needs"

    assert unsupported_fields(Needs) == ("data",)
    with pytest.raises(ValueError, match="data"):
        generated_family(Needs)

    class Nameless:
        pass

    with pytest.raises(ValueError, match="name"):
        generated_family(Nameless)
    with pytest.raises(TypeError, match="cls"):
        generated_family("relax")


# ------------------------------------------------------------------ regeneration argv


@given(width=st.integers(1, 200), kappa=st.floats(-1e3, 1e3).filter(lambda k: abs(k) > 1e-6),
       eta=st.floats(1e-3, 1e3), sigma=st.floats(0.0, 1e2), x_var=st.floats(1e-3, 1e3),
       teacher=st.floats(-1e3, 1e3), seed=st.one_of(st.none(), st.integers(0, 2**31)))
def test_field_args_rebuild_a_linear1d_exactly(width, kappa, eta, sigma, x_var, teacher, seed):
    if seed is None:
        sigma = 0.0  # without a seed only the zero init is reproducible
    model = ed.Linear1D(width=width, kappa=kappa, eta_u=eta, eta_w=1 / eta, sigma_u=sigma,
                        sigma_w=2 * sigma, teacher=teacher, x_var=x_var, seed=seed)
    argv = field_args(model)
    args = family_parser("solve", "linear1d").parse_args(argv)
    again = known_families()["linear1d"].build(args)
    assert again == model
    for k, v in model.initial_state().items():
        np.testing.assert_array_equal(again.initial_state()[k], v)


def test_field_args_refuse_what_the_fields_cannot_rebuild():
    assert field_args(ed.Linear1D.from_init([1.0, 2.0], [0.5, 0.5])) is None
    assert field_args(ed.SingleNeuron(3, beta=[1, 2, 3])) is None  # beta is not a field option


def test_vector_fields_with_array_or_tuple_defaults_are_options():
    import numpy as np

    @dataclasses.dataclass(frozen=True)
    class Vectors:
        """A model class with vector fields.

        Parameters
        ----------
        weights : ndarray
            Per-neuron weights.
        labels : tuple
            Names, not numbers.
        """

        weights: np.ndarray = dataclasses.field(default_factory=lambda: np.array([1.0, 2.0]))
        labels: tuple = ("a", "b")
        name = "vectors"

    fields = {f.name: f for f in option_fields(Vectors)}
    assert fields["weights"].kind == "floats" and "labels" not in fields
    assert fields["weights"].parse("3,4") == (3.0, 4.0)
    assert fields["weights"].help == "Per-neuron weights."


def test_entry_points_are_scanned_once_per_process_and_again_after_a_registration(
        capsys, monkeypatch):
    import importlib.metadata

    import exactdyn.cli.families as fam_module

    scans = []
    real = importlib.metadata.entry_points

    def counting(**kwargs):
        scans.append(kwargs.get("group"))
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", counting)
    monkeypatch.setattr(fam_module, "_CACHE", [], raising=False)  # a fresh process
    monkeypatch.setattr(fam_module, "_REGISTERED", {})
    code, _, _ = _run(capsys, "solve", "linear1d", "--width", "2", "--t", "1")
    assert code == 0 and scans == ["exactdyn.models"]
    code, _, _ = _run(capsys, "exact", "linear1d", "--width", "2", "--t", "1")
    assert code == 0 and scans == ["exactdyn.models"]
    assert "relax" not in known_families()
    register_family(Relax)
    assert known_families()["relax"].model_type is Relax
    assert len(scans) == 2
