"""The command line's model families: each one's options, model builder and commands.

Every family the command line offers is a :class:`CliFamily`. The built-in ones are
written here with the options their users know (matrices from files, named inits); every
other model class exported by :mod:`exactdyn` (``__all__``) or declared by an installed
package under the entry-point group ``exactdyn.models`` gets a *generated* family, its
options read from the class's constructor fields and docstring
(:mod:`exactdyn.models.fields`). So a new family — a model module, optionally a closed
form and a taxonomy, and one line in ``exactdyn/__init__.py`` — gets
``exactdyn solve|exact|verify|report|classify NAME`` without an edit here.

Which commands a family offers follows from the registries: ``exact`` and ``verify`` need a
registered closed form (:func:`exactdyn.closed_form.register_closed_form`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..models.fields import unsupported_fields
from .common import add_field_options, given_fields

COMMANDS = ("solve", "exact", "verify", "report", "classify")


@dataclass(frozen=True)
class CliFamily:
    """One model family of the command line.

    Attributes
    ----------
    name : str
        The command-line name (``deep-linear``).
    model_type : type
        The model class.
    summary : str
        One line for the list of families in ``exactdyn COMMAND --help``.
    add_options : callable(parser)
        Adds the family's own options (hyperparameters, init, data).
    build : callable(args) -> model
        The model the parsed options describe (``ValueError`` on bad input).
    add_classify_options, classify_options : callable, optional
        Extra options of ``classify`` and their keyword arguments for
        :func:`exactdyn.classify`.
    classify_times : bool
        Whether ``classify`` takes ``--t``/``--t-span`` (classify the closed-form or
        integrated trajectory at those times instead of the model's own protocol).
    kernel_tol : bool
        Whether the family's taxonomy takes ``--kernel-tol``.
    commands : tuple
        The commands offered; ``None``: every one the registries allow.
    phase_diagram : bool
        Whether ``exactdyn phase-diagram`` offers it.
    generated : bool
        Whether the options were generated from the model class's fields.
    slow_regime : bool
        Whether classifying trains the model again (a report says so before it starts).
    """

    name: str
    model_type: type
    summary: str
    add_options: Callable
    build: Callable
    add_classify_options: Callable | None = None
    classify_options: Callable | None = None
    classify_times: bool = True
    kernel_tol: bool = True
    commands: tuple | None = None
    phase_diagram: bool = False
    generated: bool = False
    slow_regime: bool = False

    def offers(self, command: str) -> bool:
        """Whether ``exactdyn COMMAND`` takes this family."""
        if self.commands is not None:
            return command in self.commands
        if command in ("exact", "verify"):
            from ..closed_form import has_closed_form

            return has_closed_form(self.model_type)
        return command in COMMANDS


# ---------------------------------------------------------------- generated options


def generated_family(cls, name: str | None = None) -> CliFamily:
    """The family of a model class whose options are all its constructor's fields."""
    if not isinstance(cls, type):
        raise TypeError(f"cls must be a model class, got {cls!r}")
    cls_name = getattr(cls, "name", None)
    if name is None:
        if not isinstance(cls_name, str) or not cls_name:
            raise ValueError(f"{cls.__name__} needs a class attribute name (a non-empty str) "
                             "to be a command-line family")
        name = cls_name.replace("_", "-")
    missing = unsupported_fields(cls)
    if missing:
        raise ValueError(f"{cls.__name__} cannot be built from the command line: its required "
                         f"field(s) {', '.join(missing)} are not numbers, text, flags or "
                         "number lists")
    doc = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
    return CliFamily(name=name, model_type=cls, summary=f"{doc} ({cls.__name__})",
                     add_options=lambda p: add_field_options(p, cls),
                     build=lambda args: cls(**given_fields(args, cls)),
                     kernel_tol=False, phase_diagram=True, generated=True)


# ---------------------------------------------------------------- built-in families


def _linear1d_options(p) -> None:
    from ..models.linear1d import Linear1D

    add_field_options(p, Linear1D, "linear1d hyperparameters (Xu & Ziyin; docs: mathematics)")
    g = p.add_argument_group("explicit init (instead of the random one)")
    g.add_argument("--u0", help="explicit init of u, comma-separated (with --w0)")
    g.add_argument("--w0", help="explicit init of w, comma-separated (with --u0)")


def _linear1d_build(args):
    from ..models.linear1d import Linear1D
    from .common import _floats

    kwargs = given_fields(args, Linear1D)
    if (args.u0 is None) != (args.w0 is None):
        raise ValueError("--u0 and --w0 go together (an explicit init needs both)")
    if args.u0 is None:
        return Linear1D(**kwargs)
    for random_only in ("sigma_u", "sigma_w", "seed"):
        if random_only in kwargs:
            raise ValueError(f"--{random_only.replace('_', '-')} draws the random init; "
                             "--u0 and --w0 give the init explicitly")
    u0, w0 = _floats("--u0", args.u0), _floats("--w0", args.w0)
    width = kwargs.pop("width", None)
    if width is not None and width != len(u0):
        raise ValueError(f"--width {width} disagrees with --u0 of length {len(u0)}")
    return Linear1D.from_init(u0, w0, **kwargs)


def _matrix_data_options(p, teacher: bool = True) -> None:
    m = p.add_argument_group("data (second moments)")
    if teacher:
        m.add_argument("--teacher-svals", default=None,
                       help="teacher singular values (Sigma_yx = diag(s), out x in), e.g. 3,2,1")
        m.add_argument("--sigma-yx", default=None,
                       help="file with Sigma_yx (out x in; .npy or text)")
    m.add_argument("--sigma-xx", default=None,
                   help="file with Sigma_xx (in x in, positive definite; default identity)")


def _linear_options(p) -> None:
    from ..models.linear import LinearNet

    _matrix_data_options(p)
    add_field_options(p, LinearNet, "linear hyperparameters (Saxe et al.; W2 W1 x)")
    from .linear import add_init_options

    add_init_options(p)


def _single_neuron_options(p) -> None:
    from ..models.linear import SingleNeuron

    _matrix_data_options(p, teacher=False)
    add_field_options(p, SingleNeuron, "single-neuron hyperparameters (Kunin et al.; a w.x)")
    p.add_argument_group("teacher").add_argument(
        "--beta", help="teacher beta*, comma-separated (default e_1)")


def _deep_linear_options(p) -> None:
    from ..models.deep_linear import DeepLinear

    _matrix_data_options(p)
    add_field_options(p, DeepLinear, "deep-linear hyperparameters (Jacot et al.; W_L...W_1 x)")
    from .deep_linear import add_init_options

    add_init_options(p)


def _linear_build(args):
    from .common import _floats
    from .linear import linear_model

    return linear_model(args, _floats)


def _deep_linear_build(args):
    from .deep_linear import model_from_args

    return model_from_args(args)


def add_linear1d_taxonomy_options(p, prefix: str = "") -> None:
    """``--ntk`` and ``--zeta-tol`` of the linear1d taxonomy (classify, phase-diagram)."""
    p.add_argument("--ntk", choices=("plain", "weighted"), default=None,
                   help=f"{prefix}the NTK of the kernel test, plain grad f . grad f (Xu & "
                   "Ziyin, default) or rate-weighted (ours)")
    p.add_argument("--zeta-tol", type=float, default=None,
                   help=f"{prefix}a change of the cosine zeta that counts as (dis)alignment "
                   "(default 0.1)")


def _linear1d_classify(args) -> dict:
    return {k: getattr(args, k) for k in ("ntk", "zeta_tol") if getattr(args, k) is not None}


def _builtin() -> list:
    from ..models.cnn import TwoLayerCNN
    from ..models.deep_linear import DeepLinear
    from ..models.linear import LinearNet, SingleNeuron
    from ..models.linear1d import Linear1D
    from ..models.twolayer import TwoLayer
    from . import cnn, twolayer

    return [
        CliFamily("linear1d", Linear1D, "one-hidden-layer linear network on 1-D data "
                  "(Xu & Ziyin)", _linear1d_options, _linear1d_build,
                  add_linear1d_taxonomy_options, _linear1d_classify, phase_diagram=True),
        CliFamily("linear", LinearNet, "two-layer linear network W2 W1 x (Saxe et al.)",
                  _linear_options, _linear_build, phase_diagram=True),
        CliFamily("single-neuron", SingleNeuron, "single neuron a w.x (Kunin et al.)",
                  _single_neuron_options, _linear_build, phase_diagram=True),
        CliFamily("deep-linear", DeepLinear, "deep linear network W_L...W_1 x (Jacot et al.; "
                  "Saxe et al.)", _deep_linear_options, _deep_linear_build,
                  phase_diagram=True),
        CliFamily("two-layer", TwoLayer, "two-layer network (1/alpha) sum a_k sigma(w_k.x) "
                  "(Luo et al.; Boursier & Flammarion)", twolayer.add_options,
                  twolayer.model_from_args, twolayer.add_classify_options,
                  twolayer.classify_options, classify_times=False, kernel_tol=False,
                  slow_regime=True),
        CliFamily("cnn", TwoLayerCNN, "two-layer CNN (Zhou et al.)", cnn.add_options,
                  cnn.model_from_args, commands=("solve", "exact", "verify", "report")),
    ]


# ---------------------------------------------------------------- discovery

_REGISTERED: dict = {}


def register_family(family) -> CliFamily:
    """Offer a family on the command line: a :class:`CliFamily`, or a model class whose
    options are generated from its fields (what the entry-point group
    ``exactdyn.models`` does for an installed package)."""
    fam = family if isinstance(family, CliFamily) else generated_family(family)
    _REGISTERED[fam.name] = fam
    _CACHE.clear()
    return fam


def _exported_model_classes() -> list:
    import exactdyn

    out = []
    for attr in getattr(exactdyn, "__all__", ()):
        obj = getattr(exactdyn, attr, None)
        if isinstance(obj, type) and all(hasattr(obj, m) for m in (
                "initial_state", "with_init_scaled", "params")) and \
                isinstance(getattr(obj, "name", None), str):
            out.append(obj)
    return out


def _entry_point_classes() -> list:
    from importlib.metadata import entry_points

    out = []
    for ep in entry_points(group="exactdyn.models"):
        try:
            out.append(ep.load())
        except Exception as exc:  # a broken plugin must not break the built-in families
            import warnings

            warnings.warn(f"exactdyn.models entry point {ep.name!r} failed to load: {exc}",
                          stacklevel=2)
    return out


#: ``[(key, families)]``: the last answer of :func:`known_families` and what it was built
#: from (``exactdyn.__all__`` and :func:`register_family`'s families), so the entry points
#: are scanned once per process, not once per lookup; a change of either (a registration,
#: a test exporting a class) builds the answer again.
_CACHE: list = []


def known_families() -> dict:
    """Command-line name -> :class:`CliFamily`: the built-in families, then a generated
    one for every other model class exported by :mod:`exactdyn` or an entry point, then
    those passed to :func:`register_family` (computed once per process and again after a
    registration)."""
    import exactdyn

    key = (tuple(getattr(exactdyn, "__all__", ())), tuple(_REGISTERED.items()))
    if _CACHE and _CACHE[0][0] == key:
        return dict(_CACHE[0][1])
    out = {f.name: f for f in _builtin()}
    known = {f.model_type for f in out.values()}
    for cls in _exported_model_classes() + _entry_point_classes():
        if cls in known:
            continue
        fam = generated_family(cls)
        out.setdefault(fam.name, fam)
        known.add(cls)
    out.update(_REGISTERED)
    _CACHE[:] = [(key, out)]
    return dict(out)
