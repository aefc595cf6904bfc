"""Gallery: examples/xu_ziyin_mechanisms.py (Xu & Ziyin, after Fig. 1) and its key numbers."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "xu_ziyin_mechanisms.py"


def _load():
    sys.path.insert(0, str(SCRIPT.parent))  # the examples' shared _out.py
    try:
        spec = importlib.util.spec_from_file_location("xu_ziyin_mechanisms", SCRIPT)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return mod


def test_xu_ziyin_mechanisms_key_numbers():
    k = _load().key_numbers()
    al = k["alignment"]
    assert (al["label"], al["predicted"]) == ("alignment", "alignment")
    assert al["zeta0"] == pytest.approx(-0.0145, abs=5e-5)
    assert al["zeta_end"] == pytest.approx(1.0, abs=1e-5)
    dis = k["disalignment"]
    assert (dis["label"], dis["mechanisms"]) == ("disalignment", "disalignment")
    assert dis["zeta0"] > 0.95 and dis["zeta_end"] == pytest.approx(0.3185, abs=1e-3)
    flip = k["disalignment, then alignment"]
    assert flip["mechanisms"] == "disalignment, then alignment"
    assert flip["zeta_end"] < -0.95  # teacher -1: sign(c) zeta rises to +0.958
    assert k["rescaling"]["label"] == "rescaling"
    assert k["diagram_labels"] == ["alignment", "disalignment", "kernel", "rescaling"]
    for name in ("alignment", "disalignment", "disalignment, then alignment", "rescaling"):
        assert k[name]["label"] == k[name]["predicted"]
