"""Issue 14, "help that disagrees with behaviour": plain numbers in messages, the CLI's own
flag names in its errors, ``--widths`` help that says what the default is, and ``exact``
of a TwoLayer with gelu as the README's scale-convergence section says."""

import numpy as np
import pytest

import exactdyn as ed
from exactdyn.cli import family_parser, main
from exactdyn.regimes.two_layer import default_widths


@pytest.mark.parametrize("call, plain", [
    (lambda: ed.solve(ed.Linear1D(width=2), [np.float64(-1.0), 0.0]), "got -1.0"),
    (lambda: ed.Linear1D(width=2, sigma_u=np.float64(-2.5)), "got -2.5"),
    (lambda: ed.TwoLayer(4, "1d-sine", beta1=np.float64(-1.0)), "got -1.0"),
    (lambda: ed.regimes.luo_exponents(1.0, np.float64(-1.0), 1.0, 4), "got [-1.0]"),
])
def test_messages_show_plain_numbers_not_numpy_reprs(call, plain):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert "np.float64" not in str(info.value) and "array(" not in str(info.value)
    assert plain in str(info.value) or "-1.0" in str(info.value)


def test_exact_linear_error_names_the_cli_flags(capsys):
    code = main(["exact", "linear", "--teacher-svals", "3,2,1"])
    err = capsys.readouterr().err
    assert code == 2 and "--init decoupled" in err and "LinearNet.decoupled" not in err
    with pytest.raises(ValueError, match=r"LinearNet\.decoupled"):  # Python keeps its names
        ed.exact(ed.LinearNet(seed=0), [0.0, 1.0])


def test_widths_help_says_what_the_default_is():
    text = family_parser("classify", "two-layer").format_help()
    assert "16..m by factors of 4" not in text
    assert "m/4, m/2, m" in " ".join(text.split())
    # mirrored: even widths of at least 4, e.g. the width 64 -> [16, 32, 64]
    assert default_widths(64) == (16, 32, 64) and default_widths(10) == (4, 10)


def test_exact_two_layer_with_gelu_as_the_readme_says():
    net = ed.TwoLayer(6, "1d-sine", activation="gelu", beta1=1e-2, beta2=1e-2, n=8)
    tr = ed.exact(net, [0.0, 1.0, 2.0])
    assert tr["a"].shape == (3, 6)
    rep = ed.verify(net, np.linspace(0.0, 2.0, 3))  # order 1 (gelu''(0) != 0), converging
    assert rep.passed and 0.8 <= rep["state"].order <= 1.3
    with pytest.raises(ValueError, match="sigma'\\(0\\) != 0"):
        ed.exact(ed.TwoLayer(4, "1d-sine", activation="softplus", beta1=1e-2, beta2=1e-2),
                 [0.0, 1.0])
