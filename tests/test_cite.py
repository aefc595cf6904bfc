"""exactdyn.cite: BibTeX of the papers behind each model."""

import re

import numpy as np
import pytest

import exactdyn as ed
from exactdyn.cite import MODEL_PAPERS, PAPERS


def keys(bib):
    return re.findall(r"^@\w+\{([^,]+),", bib, flags=re.M)


def balanced(entry):
    depth = 0
    for ch in entry:
        depth += ch == "{"
        depth -= ch == "}"
        if depth < 0:
            return False
    return depth == 0


def test_every_entry_is_well_formed():
    for key, entry in PAPERS.items():
        assert keys(entry) == [key]
        assert balanced(entry), key
        for field in ("title", "author", "year"):
            assert re.search(rf"^\s+{field}\s*=", entry, flags=re.M), (key, field)
    assert all(k in PAPERS for ks in MODEL_PAPERS.values() for k in ks)


def test_every_exported_family_has_papers():
    families = {n for n in ed.__all__ if isinstance(getattr(ed, n), type)
                and hasattr(getattr(ed, n), "initial_state")}
    assert {"Linear1D", "LinearNet", "SingleNeuron", "DeepLinear", "TwoLayer",
            "TwoLayerCNN"} <= families
    for name in families & set(MODEL_PAPERS):
        assert len(keys(ed.cite(name))) >= 2


@pytest.mark.parametrize("spelling", ["linear1d", "Linear1D", "LINEAR1D", "linear_1d", "Linear-1D"])
def test_names_are_normalized(spelling):
    assert keys(ed.cite(spelling)) == ["exactdyn", "xu2024feature"]


def test_model_instance_class_and_cli_names_agree():
    m = ed.Linear1D(width=2)
    assert ed.cite(m) == ed.cite(ed.Linear1D) == ed.cite("linear1d")
    assert ed.cite("two-layer") == ed.cite("two_layer") == ed.cite(ed.TwoLayer)
    assert ed.cite("cnn") == ed.cite(ed.TwoLayerCNN)
    assert ed.cite("single-neuron") == ed.cite(ed.SingleNeuron)
    assert "kunin2024get" in keys(ed.cite(ed.SingleNeuron))
    assert keys(ed.cite("deep-linear"))[1:] == ["jacot2021saddle", "saxe2014exact"]


def test_none_lists_the_package_and_every_paper():
    bib = ed.cite()
    assert keys(bib) == ["exactdyn", *PAPERS]
    assert ed.__version__ in bib


def test_returns_a_str_that_displays_as_bibtex():
    bib = ed.cite("linear")
    assert isinstance(bib, str)
    assert repr(bib) == str(bib)
    assert bib._repr_markdown_().startswith("```bibtex\n@software{exactdyn,")


def test_a_model_without_papers_gets_the_package_entry():
    class MyNet:
        def initial_state(self):
            return {}
    assert keys(ed.cite(MyNet())) == ["exactdyn"]


def test_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="model_or_name='resnet'.*allowed: .*linear1d"):
        ed.cite("resnet")
    with pytest.raises(TypeError, match="model_or_name must be"):
        ed.cite(np.zeros(3))
