r"""A model class's constructor fields as command-line options, and back.

The one convention shared by the command line's generated options
(:mod:`exactdyn.cli.families`) and a report's regeneration command
(:mod:`exactdyn.report.argv`): a field ``x_var`` of a model class is the option
``--x-var``; its type comes from the annotation (or the default) and its help from the
class docstring's NumPy-style ``Parameters`` section. So a new family — one frozen
dataclass following :class:`~exactdyn.models.base.Model` — gets
``exactdyn solve|exact|verify|report NAME`` with no edit to the command line.

Field kinds: ``int``, ``float``, ``str``, ``bool`` and ``floats`` (a vector: a sequence or
array annotation, read as comma-separated numbers such as ``3,2,1``); ``Optional`` /
``X | None`` fields also take the word ``none``. Fields whose name starts with ``_``
(an explicit init, caches) and fields of any other type (matrices, objects) are not
options; a required one of those makes the class unusable from the command line, said by
:func:`unsupported_fields`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass

KINDS = ("int", "float", "str", "bool", "floats")

_SCALARS = {int: "int", float: "float", str: "str", bool: "bool"}
_VECTOR_WORDS = ("list", "tuple", "Sequence", "ndarray", "ArrayLike", "Iterable")


@dataclass(frozen=True)
class OptionField:
    """One constructor field of a model class, as an option.

    Attributes
    ----------
    name : str
        The Python name (``x_var``).
    kind : str
        One of :data:`KINDS`.
    default : object
        The constructor's default; :data:`REQUIRED` when there is none.
    optional : bool
        Whether ``None`` is a valid value (the option then accepts ``none``).
    help : str
        The docstring's description, on one line, markup removed.
    """

    name: str
    kind: str
    default: object
    optional: bool
    help: str

    @property
    def flag(self) -> str:
        """The option: ``--`` and the name with ``_`` as ``-``."""
        return "--" + self.name.replace("_", "-")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def parse(self, text: str):
        """The value of ``text`` typed on the command line (``ValueError`` naming the flag)."""
        if self.optional and text.strip().lower() == "none":
            return None
        try:
            if self.kind == "int":
                return int(text)
            if self.kind == "float":
                return float(text)
            if self.kind == "str":
                return text
            if self.kind == "bool":
                word = text.strip().lower()
                if word in ("true", "yes", "1"):
                    return True
                if word in ("false", "no", "0"):
                    return False
                raise ValueError(text)
            items = text.split(",")
            if any(x.strip() == "" for x in items):
                raise ValueError(text)
            return tuple(float(x) for x in items)
        except ValueError:
            want = {"int": "an integer", "float": "a number", "str": "text",
                    "bool": "true or false", "floats": "comma-separated numbers like 3,2,1"}
            extra = " or none" if self.optional else ""
            raise ValueError(f"{self.flag} must be {want[self.kind]}{extra}; "
                             f"got {text!r}") from None

    def text(self, value) -> str | None:
        """``value`` as the command line types it, or ``None`` when it cannot be typed
        (a matrix, a non-finite number, an object)."""
        if value is None:
            return "none" if self.optional else None
        if self.kind == "bool":
            return "true" if value else "false" if isinstance(value, (bool, int)) else None
        if self.kind == "str":
            return value if isinstance(value, str) else None
        if self.kind == "int":
            try:
                return str(int(value)) if int(value) == value else None
            except (TypeError, ValueError):
                return None
        if self.kind == "float":
            try:
                x = float(value)
            except (TypeError, ValueError):
                return None
            return repr(x) if math.isfinite(x) else None
        try:
            import numpy as np

            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            return None
        if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
            return None
        return ",".join(repr(float(x)) for x in arr)


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of a field the constructor requires.
REQUIRED = _Required()


def _docstring_help(cls) -> dict:
    """Field name -> its description in the class docstring's ``Parameters`` section."""
    doc = inspect.getdoc(cls) or ""
    lines = doc.splitlines()
    out: dict = {}
    try:
        start = next(i for i, line in enumerate(lines[:-1])
                     if line.strip() == "Parameters" and set(lines[i + 1].strip()) == {"-"})
    except StopIteration:
        return out
    names: list = []
    body: list = []

    def flush():
        text = _plain(" ".join(body))
        for n in names:
            out[n] = text

    for i in range(start + 2, len(lines)):
        line = lines[i]
        if line.strip() and not line.startswith(" "):
            if i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}:
                break  # the next section (Notes, Examples, ...)
            flush()
            head = line.split(" : ")[0] if " : " in line else line
            names = [n.strip() for n in head.split(",") if n.strip()]
            body = []
        elif line.strip():
            body.append(line.strip())
    flush()
    return out


_LATEX = ((r"\geq", ">="), (r"\ge", ">="), (r"\leq", "<="), (r"\le", "<="),
          (r"\neq", "!="), (r"\ne", "!="), (r"\sim", "~"),
          (r"\infty", "inf"), (r"\cdot", "*"), (r"\times", "x"), (r"\lVert", "|"),
          (r"\rVert", "|"), (r"\top", "T"), (r"\,", " "), (r"\;", " "))


def _plain(text: str) -> str:
    """Docstring markup removed for a terminal: roles, math, double backquotes and the
    common LaTeX commands (``\\ge`` as ``>=``, ``\\frac{a}{b}`` as ``a/b``)."""
    text = re.sub(r":(?:math|class|func|meth|attr|mod|data):`~?([^`]*)`", r"\1", text)
    text = text.replace("``", "")
    text = re.sub(r"\\mathbb\s*\{?([A-Za-z])\}?", r"\1", text)
    for command, plain in _LATEX:
        text = re.sub(re.escape(command) + r"(?![A-Za-z])", plain, text)
    text = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"(\1)/(\2)", text)
    text = re.sub(r"\\(?:mathrm|text|operatorname)\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"([_^])\{([^{}]*)\}", r"\1\2", text)
    text = text.replace("\\", "")
    return " ".join(text.split())


def _kind_of_annotation(annotation) -> tuple:
    """``(kind or None, optional)`` of a type annotation (a type or its text)."""
    if isinstance(annotation, str):
        parts = [p.strip() for p in annotation.split("|")]
        optional = "None" in parts or annotation.startswith("Optional[")
        parts = [p for p in parts if p != "None"]
        if annotation.startswith("Optional[") and annotation.endswith("]"):
            parts = [annotation[len("Optional["):-1].strip()]
        if len(parts) != 1:
            return None, optional
        word = parts[0]
        for t, kind in _SCALARS.items():
            if word == t.__name__:
                return kind, optional
        if any(word.split("[")[0].split(".")[-1] == v for v in _VECTOR_WORDS):
            return "floats", optional
        return None, optional
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        optional = len(rest) < len(args)
        if len(rest) != 1:
            return None, optional
        kind, _ = _kind_of_annotation(rest[0])
        return kind, optional
    if annotation in _SCALARS:
        return _SCALARS[annotation], False
    base = origin or annotation
    if isinstance(base, type) and (issubclass(base, (list, tuple)) or base is Sequence
                                   or base.__name__ == "ndarray"):
        return "floats", False
    return None, False


def _kind_of_default(default) -> str | None:
    if isinstance(default, bool):
        return "bool"
    for t, kind in _SCALARS.items():
        if type(default) is t:
            return kind
    if isinstance(default, (list, tuple)) and default and \
            all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in default):
        return "floats"
    if type(default).__name__ == "ndarray" and getattr(default, "ndim", 0) == 1 and \
            getattr(default, "size", 0) > 0 and default.dtype.kind in "iuf":
        return "floats"
    return None


def _parameters(cls) -> list:
    """``(name, annotation, default)`` of the constructor's named parameters."""
    if dataclasses.is_dataclass(cls):
        out = []
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = REQUIRED
            out.append((f.name, f.type, default))
        return out
    sig = inspect.signature(cls.__init__)
    return [(p.name, p.annotation if p.annotation is not p.empty else None,
             REQUIRED if p.default is p.empty else p.default)
            for p in list(sig.parameters.values())[1:]
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _all_fields(cls) -> list:
    """``(OptionField or None, name, required)`` of every constructor parameter."""
    helps = _docstring_help(cls)
    out = []
    for name, annotation, default in _parameters(cls):
        if name.startswith("_"):
            out.append((None, name, default is REQUIRED))
            continue
        kind, optional = (None, False) if annotation is None else \
            _kind_of_annotation(annotation)
        if kind is None and default is not REQUIRED and default is not None:
            kind = _kind_of_default(default)
        if kind == "floats" and default is not REQUIRED and default is not None and \
                _kind_of_default(default) != "floats":
            kind = None  # a tuple of words or objects (a record), not a vector
        if default is None:
            optional = True
        if kind is None:
            out.append((None, name, default is REQUIRED))
            continue
        out.append((OptionField(name, kind, default, optional, helps.get(name, "")), name,
                    default is REQUIRED))
    return out


def option_fields(cls) -> tuple:
    """The :class:`OptionField` of every constructor field of ``cls`` that the command
    line can type, in the constructor's order."""
    if not isinstance(cls, type):
        raise TypeError(f"cls must be a model class, got {cls!r}")
    return tuple(f for f, _, _ in _all_fields(cls) if f is not None)


def unsupported_fields(cls) -> tuple:
    """Names of the *required* constructor fields the command line cannot type (a class
    with any is not available from the command line)."""
    return tuple(name for f, name, required in _all_fields(cls) if f is None and required)


def field_args(model) -> list | None:
    """The options (``["--x-var", "2.0", ...]``) that rebuild ``model`` through its
    class's constructor, or ``None`` when they cannot: a field that is not an option
    holds a value other than its default (an explicit init, a matrix), a value cannot be
    typed, or the rebuilt model differs (its ``params`` or its initial state)."""
    cls = type(model)
    args: list = []
    kwargs: dict = {}
    for f, name, _ in _all_fields(cls):
        value = getattr(model, name, REQUIRED)
        if value is REQUIRED:
            return None
        if f is None:
            default = dict((n, d) for n, _, d in _parameters(cls))[name]
            if default is REQUIRED or not _same(value, default):
                return None
            continue
        text = f.text(value)
        if text is None:
            return None
        # "--x=-1e-16" in one word: argparse reads a separate "-1e-16" as an option
        args += [f"{f.flag}={text}"] if text.startswith("-") else [f.flag, text]
        kwargs[name] = f.parse(text)
    try:
        again = cls(**kwargs)
    except (TypeError, ValueError):
        return None
    if not _same(again.params, model.params):
        return None
    before, after = model.initial_state(), again.initial_state()
    if before.keys() != after.keys() or not all(_same(before[k], after[k]) for k in before):
        return None
    return args


def _same(a, b) -> bool:
    import numpy as np

    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object)))
    except (TypeError, ValueError):
        return a is b
