"""Start-up (issue 15, item 4): ``import exactdyn`` and ``exactdyn --help`` import none of
the heavy dependencies; the public names still resolve to the same objects, lazily.

The budget is stated as *what is imported* (deterministic), not as a time: the README's
start-up table gives the measured times with the command that measures them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import exactdyn as ed

HEAVY = ("sympy", "scipy", "matplotlib", "mpmath", "gmpy2", "dask", "numpy")


def _imported(code: str) -> list:
    probe = (f"import sys\n{code}\nimport json\n"
             f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    return json.loads(out)


def test_import_exactdyn_imports_no_heavy_dependency():
    assert _imported("import exactdyn") == []


def test_cli_help_and_version_import_no_heavy_dependency():
    for argv in (["--help"], ["--version"]):
        code = (f"from exactdyn.cli import main\ntry:\n    main({argv!r})\n"
                "except SystemExit:\n    pass")
        assert _imported(code) == []


def test_the_first_use_imports_what_it_needs():
    # Building a model needs numpy only; its symbolic network needs sympy.
    assert _imported("import exactdyn as ed\ned.Linear1D(width=2)") == ["numpy"]
    assert "sympy" in _imported("import exactdyn as ed\ned.Linear1D(width=2).network()")
    assert "sympy" in _imported("import exactdyn as ed\ned.gradient_flow(ed.Linear1D(width=2))")


def test_every_public_name_resolves_and_functions_win_over_their_modules():
    for name in ed.__all__:
        assert getattr(ed, name) is not None
    # exactdyn.solve is the function even after its module is imported (as when every name
    # was imported eagerly); the module stays reachable through sys.modules.
    import exactdyn.report.content  # noqa: F401
    import exactdyn.solve  # noqa: F401

    for name in ("solve", "verify", "report", "closed_form", "cite"):
        assert callable(getattr(ed, name)) and not isinstance(getattr(ed, name), type(sys))
        assert f"exactdyn.{name}" in sys.modules
    assert ed.regimes.classify is ed.classify  # a submodule by attribute
    assert set(ed.__all__) <= set(dir(ed))


def test_an_unknown_attribute_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no_such_name"):
        ed.no_such_name  # noqa: B018


def test_public_submodules_are_exported_as_the_modules_themselves():
    # exactdyn.diskcache's cache_dir / set_enabled / clear are documented in getting
    # started; like probe it is a public name (in __all__, hence on the API page).
    for name in ("probe", "diskcache"):
        assert name in ed.__all__
        module = getattr(ed, name)
        assert module is sys.modules[f"exactdyn.{name}"]
        for attr in module.__all__:
            assert callable(getattr(module, attr)) or isinstance(getattr(module, attr), type)
    assert set(ed.diskcache.__all__) == {"cache_dir", "clear", "set_enabled"}


@pytest.mark.parametrize("make", [
    "ed.Linear1D(width=64)", "ed.LinearNet(in_dim=5, hidden=8, out_dim=3)",
    "ed.SingleNeuron(in_dim=3)",
    "ed.DeepLinear(depth=3, width=8, in_dim=3, out_dim=3, sigma_yx=np.diag([3.0, 2.0, 1.0]))"])
def test_a_second_process_solves_a_cached_family_without_sympy(tmp_path, make):
    # The first process derives the flow (sympy) and writes the lowering to the on-disk
    # cache; the next one compiles it from disk: no sympy, no matplotlib, and no
    # scipy.integrate (the explicit integrators are exactdyn's own, numeric.runge_kutta).
    import os

    env = dict(os.environ, EXACTDYN_CACHE_DIR=str(tmp_path))
    code = ("import sys, json\nimport numpy as np\nimport exactdyn as ed\n"
            f"traj = ed.solve({make}, np.linspace(0, 5, 11))\n"
            "print(json.dumps([sorted(m for m in ('sympy', 'matplotlib', 'scipy.integrate') "
            "if m in sys.modules), float(traj['loss'][-1])]))")
    runs = [json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                      text=True, check=True, env=env).stdout.strip()
                       .splitlines()[-1]) for _ in range(2)]
    assert "sympy" in runs[0][0]  # cold: derived
    assert runs[1][0] == []  # warm: read from disk
    assert runs[1][1] == runs[0][1]  # the same numbers
    assert any(f.name.startswith("lowered-") for f in tmp_path.iterdir())


_NETWORK = """
import sympy as sp  # a user's network is written in sympy (which imports mpmath)
i, d = sp.symbols("i d", integer=True)
u, v = sp.IndexedBase("u"), sp.IndexedBase("v")
b = sp.Symbol("beta_star")
net = ed.Network("diag", params=[u, v], index=i, width=d,
                 loss=(sp.Sum(u[i]**2 - v[i]**2, (i, 0, d - 1)) - b)**2 / 2, hyper=[b])
model = net.random_init(16, scale=0.5, seed=1, beta_star=0.7)
"""


@pytest.mark.parametrize("make", [
    "model = ed.Linear1D(width=8, seed=0)",
    "model = ed.LinearNet(in_dim=5, hidden=8, out_dim=3)",
    "model = ed.DeepLinear(depth=3, width=8, in_dim=3, out_dim=3, "
    "sigma_yx=np.diag([3.0, 2.0, 1.0]))",
    _NETWORK], ids=["Linear1D", "LinearNet", "DeepLinear", "Network"])
def test_a_warm_first_solve_imports_neither_scipy_integrate_nor_mpmath(tmp_path, make):
    # Issue 15 item 4: a second process's first solve of a cached family costs little
    # above its steady state. What made it cost ~0.5 s was importing scipy.integrate
    # (scipy.optimize, sparse, linalg, special with it) and mpmath; the float64 path needs
    # neither. Stated as what is imported, never as a time (docs/benchmarks.md has those).
    import os

    env = dict(os.environ, EXACTDYN_CACHE_DIR=str(tmp_path))
    code = ("import sys, json\nimport numpy as np\nimport exactdyn as ed\n" + make +
            "\nbefore = set(sys.modules)\n"
            "traj = ed.solve(model, np.linspace(0, 2, 5))\n"
            "new = set(sys.modules) - before\n"
            "print(json.dumps({'new': sorted(m for m in new if m.split('.')[0] in "
            "('scipy', 'mpmath', 'gmpy2', 'sympy', 'matplotlib')), "
            "'scipy.integrate': 'scipy.integrate' in sys.modules, "
            "'mpmath': 'mpmath' in sys.modules, 'sympy': 'sympy' in sys.modules, "
            "'loss': float(traj['loss'][-1])}))")
    runs = [json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                      text=True, check=True, env=env).stdout.strip()
                       .splitlines()[-1]) for _ in range(2)]
    assert any(f.name.startswith("lowered-") for f in tmp_path.iterdir())  # cached
    warm = runs[1]
    assert warm["new"] == []  # the solve imported nothing heavy
    assert not warm["scipy.integrate"]
    # Only the user's own sympy (the Network case) brings mpmath along.
    assert warm["mpmath"] == warm["sympy"] == ("sp.Sum" in make)
    assert warm["loss"] == runs[0]["loss"]  # the cold run's numbers, bit for bit
# ---- building TwoLayer / TwoLayerCNN and a float64 exact() without sympy (issue 15, item 4)

_CNN_DATA = ("rng = np.random.default_rng(0)\n"
             "images, y = rng.normal(size=(4, 6, 6, 1)), rng.normal(size=4)\n")


def _imported_with(code: str, env_extra: dict | None = None) -> list:
    """The heavy modules ``code`` leaves imported, in a fresh process (numpy imported
    first: the cases below build arrays)."""
    import os

    probe = (f"import sys\nimport numpy as np\n{code}\nimport json\n"
             f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    env = dict(os.environ, **(env_extra or {}))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, env=env).stdout.strip().splitlines()[-1]
    return json.loads(out)


@pytest.mark.parametrize("make", [
    *(f"ed.TwoLayer(16, '1d-sine', activation={a!r}, n=8)" for a in
      ("relu", "leaky_relu", "tanh", "sigmoid", "softplus", "silu", "gelu", "x_tanh",
       "x2_tanh", "linear")),
    _CNN_DATA + "ed.TwoLayerCNN(2, 3, images, y, scale=0.5)",
    _CNN_DATA + "ed.TwoLayerCNN(2, 3, images, y, scale=0.5, activation='relu')"])
def test_building_a_two_layer_network_imports_no_sympy(make):
    # a named activation's float64 forms come from a table; its sympy expression is built
    # only when the symbolic network, a derivation or a report asks for it
    code = f"import exactdyn as ed\nmodel = {make.splitlines()[-1]}\n"
    prefix = "\n".join(make.splitlines()[:-1])
    assert "sympy" not in _imported_with(prefix + "\n" + code)
    # ... which still works, and then imports sympy
    code += "model.act.expr\nmodel.network()\n"
    assert "sympy" in _imported_with(prefix + "\n" + code)


def test_a_user_defined_activation_still_builds_through_sympy():
    assert "sympy" in _imported_with(
        "import exactdyn as ed\nm = ed.TwoLayer(4, '1d-sine', activation='x + x**2/2', n=5)\n"
        "assert m.multiplicity == 1")


@pytest.mark.parametrize("make", [
    "ed.Linear1D(width=8)",
    "ed.LinearNet.decoupled(np.diag([3.0, 2.0, 1.0]))",
    "ed.SingleNeuron(in_dim=3)",
    "ed.DeepLinear.decoupled(3, 3, np.diag([3.0, 2.0, 1.0]), [0.05, 0.02, 0.01])"])
def test_a_float64_exact_of_a_closed_form_family_imports_no_sympy(make):
    # the closed-form registry imports only the family's module (exactdyn/closed_form/
    # <family>.py), and that module imports sympy only for the symbolic form
    code = (f"import exactdyn as ed\ntraj = ed.exact({make}, np.linspace(0, 2, 5))\n"
            "assert np.all(np.isfinite(traj['loss']))\n")
    assert "sympy" not in _imported_with(code)
    # the symbolic form (residual, report) still works, and imports sympy
    assert "sympy" in _imported_with(code + f"ed.closed_form({make}).residual()\n")


@pytest.mark.parametrize("make", [
    "ed.TwoLayer(16, '1d-sine', activation='tanh', n=8, beta1=1e-3, beta2=1e-3)",
    "ed.TwoLayer(16, '1d-sine', activation='relu', n=8, beta1=1e-3, beta2=1e-3)",
    _CNN_DATA + "ed.TwoLayerCNN(2, 3, images, y, scale=1e-3)"])
def test_a_float64_exact_of_a_two_layer_network_with_a_warm_cache_imports_no_sympy(
        tmp_path, make):
    # the early-stage closed forms (linearized; ReLU early alignment) evaluate the
    # network's observables with its generated sources: derived with sympy by the first
    # process on an empty cache, read from disk by the next
    prefix = "\n".join(make.splitlines()[:-1])
    code = (f"{prefix}\nimport exactdyn as ed\n"
            f"traj = ed.exact({make.splitlines()[-1]}, np.linspace(0, 2, 5))\n"
            "print(repr(float(traj['loss'][-1])))\n")
    env = {"EXACTDYN_CACHE_DIR": str(tmp_path)}
    _imported_with(code, env)  # cold: derives the observables' sources
    assert "sympy" not in _imported_with(code, env)


def test_the_closed_form_registry_finds_a_family_without_importing_the_others():
    code = ("import exactdyn as ed\ned.exact(ed.Linear1D(width=4), [0.0, 1.0])\n"
            "import json\n"
            "print(json.dumps(sorted(m for m in sys.modules "
            "if m.startswith('exactdyn.closed_form.'))))\n")
    out = subprocess.run([sys.executable, "-c", "import sys\n" + code], capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    imported = set(json.loads(out))
    assert "exactdyn.closed_form.linear1d" in imported
    others = {"linear", "linear_symbolic", "deep_linear", "twolayer", "early_alignment", "cnn",
              "network", "linear1d_symbolic"}
    assert not imported & {f"exactdyn.closed_form.{m}" for m in others}


def test_a_subclass_defined_outside_the_package_finds_its_base_familys_closed_form():
    # the registry walks the model's MRO: a user's subclass of Linear1D (module __main__)
    # gets Linear1D's closed form; a type with none gets False after every module is tried
    code = ("import exactdyn as ed\nfrom exactdyn.closed_form import has_closed_form\n"
            "class Mine(ed.Linear1D):\n    pass\n"
            "traj = ed.exact(Mine(width=4), [0.0, 1.0])\n"
            "assert traj['loss'][-1] == ed.exact(ed.Linear1D(width=4), [0.0, 1.0])['loss'][-1]\n"
            "assert not has_closed_form(int)\n")
    _imported_with(code)
