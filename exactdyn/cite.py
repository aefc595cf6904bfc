"""BibTeX of the papers behind each model: ``exactdyn.cite(model_or_name)``."""

from __future__ import annotations

__all__ = ["cite", "BibTeX", "PAPERS", "MODEL_PAPERS"]

SOFTWARE = """@software{exactdyn,
  title   = {exactdyn: exact gradient-flow dynamics of small neural networks},
  author  = {{The exactdyn developers}},
  version = {%(version)s},
  year    = {2026},
  license = {MIT},
  note    = {Python package}
}"""

#: BibTeX entries by key.
PAPERS = {
    "xu2024feature": """@article{xu2024feature,
  title   = {When does feature learning happen? Perspective from an analytically solvable model},
  author  = {Xu, Yizhou and Ziyin, Liu},
  journal = {arXiv preprint arXiv:2401.07085},
  year    = {2024},
  note    = {ICLR 2025 as ``Three mechanisms of feature learning in a linear network''}
}""",
    "saxe2014exact": """@inproceedings{saxe2014exact,
  title     = {Exact solutions to the nonlinear dynamics of learning in deep linear neural networks},
  author    = {Saxe, Andrew M. and McClelland, James L. and Ganguli, Surya},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2014},
  note      = {arXiv:1312.6120}
}""",
    "fukumizu1998effect": """@inproceedings{fukumizu1998effect,
  title     = {Effect of batch learning in multilayer neural networks},
  author    = {Fukumizu, Kenji},
  booktitle = {Proceedings of the 5th International Conference on Neural Information Processing (ICONIP)},
  pages     = {67--70},
  year      = {1998}
}""",
    "tarmoun2021understanding": """@inproceedings{tarmoun2021understanding,
  title     = {Understanding the dynamics of gradient flow in overparameterized linear models},
  author    = {Tarmoun, Salma and Fran{\\c{c}}a, Guilherme and Haeffele, Benjamin D. and Vidal, Ren{\\'e}},
  booktitle = {Proceedings of the 38th International Conference on Machine Learning (ICML)},
  series    = {Proceedings of Machine Learning Research},
  volume    = {139},
  year      = {2021}
}""",
    "braun2022exact": """@inproceedings{braun2022exact,
  title     = {Exact learning dynamics of deep linear networks with prior knowledge},
  author    = {Braun, Lukas and Domin{\\'e}, Cl{\\'e}mentine and Fitzgerald, James and Saxe, Andrew},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2022}
}""",
    "kunin2024get": """@inproceedings{kunin2024get,
  title     = {Get rich quick: exact solutions reveal how unbalanced initializations promote rapid feature learning},
  author    = {Kunin, Daniel and Ravent{\\'o}s, Allan and Domin{\\'e}, Cl{\\'e}mentine and Chen, Feng and Klindt, David and Saxe, Andrew and Ganguli, Surya},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2024},
  note      = {arXiv:2406.06158}
}""",
    "jacot2021saddle": """@article{jacot2021saddle,
  title   = {Saddle-to-saddle dynamics in deep linear networks and small initializations},
  author  = {Jacot, Arthur and Ged, Fran{\\c{c}}ois and {\\c{S}}im{\\c{s}}ek, Berfin and Hongler, Cl{\\'e}ment and Gabriel, Franck},
  journal = {arXiv preprint arXiv:2106.15933},
  year    = {2021}
}""",
    "luo2021phase": """@article{luo2021phase,
  title   = {Phase diagram for two-layer {ReLU} neural networks at infinite-width limit},
  author  = {Luo, Tao and Xu, Zhi-Qin John and Ma, Zheng and Zhang, Yaoyu},
  journal = {Journal of Machine Learning Research},
  volume  = {22},
  number  = {71},
  pages   = {1--47},
  year    = {2021},
  note    = {arXiv:2007.07497}
}""",
    "chen2023phase": """@article{chen2023phase,
  title   = {Phase diagram of initial condensation for two-layer neural networks},
  author  = {Chen, Zhengan and Li, Yuqing and Luo, Tao and Zhou, Zhangchen and Xu, Zhi-Qin John},
  journal = {arXiv preprint arXiv:2303.06561},
  year    = {2023}
}""",
    "zhou2022towards": """@inproceedings{zhou2022towards,
  title     = {Towards understanding the condensation of neural networks at initial training},
  author    = {Zhou, Hanxu and Zhou, Qixuan and Luo, Tao and Zhang, Yaoyu and Xu, Zhi-Qin John},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2022},
  note      = {arXiv:2105.11686}
}""",
    "boursier2024early": """@article{boursier2024early,
  title   = {Early alignment in two-layer networks training is a two-edged sword},
  author  = {Boursier, Etienne and Flammarion, Nicolas},
  journal = {Journal of Machine Learning Research},
  year    = {2025},
  note    = {arXiv:2401.10791}
}""",
    "maennel2018gradient": """@article{maennel2018gradient,
  title   = {Gradient descent quantizes {ReLU} network features},
  author  = {Maennel, Hartmut and Bousquet, Olivier and Gelly, Sylvain},
  journal = {arXiv preprint arXiv:1803.08367},
  year    = {2018}
}""",
    "zhou2023understanding": """@article{zhou2023understanding,
  title   = {Understanding the initial condensation of convolutional neural networks},
  author  = {Zhou, Zhangchen and Zhou, Hanxu and Li, Yuqing and Xu, Zhi-Qin John},
  journal = {arXiv preprint arXiv:2305.09947},
  year    = {2023}
}""",
    "jorba2005software": """@article{jorba2005software,
  title   = {A software package for the numerical integration of {ODEs} by means of high-order {Taylor} methods},
  author  = {Jorba, {\\`A}ngel and Zou, Maorong},
  journal = {Experimental Mathematics},
  volume  = {14},
  number  = {1},
  pages   = {99--117},
  year    = {2005}
}""",
}

#: Keys of :data:`PAPERS` behind each model family (by class name).
MODEL_PAPERS = {
    "Linear1D": ("xu2024feature",),
    "LinearNet": ("saxe2014exact", "fukumizu1998effect", "braun2022exact",
                  "tarmoun2021understanding"),
    "SingleNeuron": ("kunin2024get",),
    "DeepLinear": ("jacot2021saddle", "saxe2014exact"),
    "TwoLayer": ("luo2021phase", "chen2023phase", "zhou2022towards", "boursier2024early",
                 "maennel2018gradient"),
    "TwoLayerCNN": ("zhou2023understanding",),
}

# Other spellings of the family names: the CLI's (``two-layer``, ``cnn``), the models'
# ``name`` attributes (``two_layer``) and lower case.
_ALIASES = {
    "linear1d": "Linear1D", "linear": "LinearNet", "linearnet": "LinearNet",
    "singleneuron": "SingleNeuron", "deeplinear": "DeepLinear", "twolayer": "TwoLayer",
    "cnn": "TwoLayerCNN", "twolayercnn": "TwoLayerCNN",
}


class BibTeX(str):
    """A string of BibTeX entries that shows as itself (not quoted) at the prompt and in
    notebooks, so ``ed.cite(model)`` can be read and copied as it is."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return "```bibtex\n" + str(self) + "\n```"


def _family(model_or_name) -> str | None:
    """The class name of ``model_or_name``'s family, or ``None`` for a model without
    papers (a user-defined network)."""
    if isinstance(model_or_name, str):
        key = model_or_name.replace("-", "").replace("_", "").replace(" ", "").lower()
        if key in _ALIASES:
            return _ALIASES[key]
        allowed = sorted(set(_ALIASES) | set(MODEL_PAPERS))
        raise ValueError(f"cite: model_or_name={model_or_name!r} is not a model family; "
                         f"allowed: {', '.join(allowed)}, a model instance or class, or None")
    cls = model_or_name if isinstance(model_or_name, type) else type(model_or_name)
    for klass in cls.__mro__:
        if klass.__name__ in MODEL_PAPERS:
            return klass.__name__
    if hasattr(model_or_name, "initial_state") or hasattr(model_or_name, "network"):
        return None
    raise TypeError(f"cite: model_or_name must be a model (instance or class), a family name "
                    f"or None, not {type(model_or_name).__name__}")


def cite(model_or_name=None) -> BibTeX:
    """BibTeX of exactdyn and of the papers behind a model.

    Parameters
    ----------
    model_or_name : model, model class, str or None
        A model instance or class (:class:`~exactdyn.Linear1D`, ...), or a family name as
        the command line spells it (``"linear1d"``, ``"linear"``, ``"single-neuron"``,
        ``"deep-linear"``, ``"two-layer"``, ``"cnn"``; case, ``-`` and ``_`` do not
        matter). ``None`` (default): every paper the package implements, plus the Taylor
        integrator's method (Jorba & Zou 2005).

    Returns
    -------
    BibTeX
        A ``str``: the entry for exactdyn itself, then one entry per paper, separated by
        blank lines. It displays as plain BibTeX at the prompt and in notebooks; ``print``
        it or write it to a ``.bib`` file. A model with no papers of its own (a
        user-defined network) gets exactdyn's entry alone.

    Raises
    ------
    ValueError
        For an unknown family name.
    TypeError
        For anything that is not a model, a model class, a string or ``None``.

    Examples
    --------
    >>> import exactdyn as ed
    >>> print(ed.cite("linear1d"))          # doctest: +ELLIPSIS
    @software{exactdyn,
    ...
    @article{xu2024feature,
    ...
    """
    from ._version import __version__

    if model_or_name is None:
        keys = list(PAPERS)
    else:
        family = _family(model_or_name)
        keys = list(MODEL_PAPERS[family]) if family else []
    entries = [SOFTWARE % {"version": __version__}] + [PAPERS[k] for k in keys]
    return BibTeX("\n\n".join(entries) + "\n")
