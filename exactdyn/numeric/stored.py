"""Generated sources to JSON and back, for the on-disk cache (:mod:`exactdyn.diskcache`).

A lowered flow keeps of its derivation a small dataclass of
:class:`~.codegen.CompiledExpressions` (source text, argument names, function name, axis
kinds) and names; :func:`encode` turns one into JSON-ready data and :func:`decode` back,
checking every field's type, so a damaged entry is a ``ValueError`` (and is rebuilt),
never a wrong object.
"""

from __future__ import annotations

import dataclasses

from .codegen import CompiledExpressions


def _enc(value):
    if isinstance(value, CompiledExpressions):
        return {"expressions": [value.source, list(value.arg_names), value.func_name,
                                [list(labels) for labels in value.out_labels]]}
    if isinstance(value, tuple):
        return {"tuple": [_enc(v) for v in value]}
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"cannot store {type(value).__name__}")


def _strings(value, what) -> tuple:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"stored {what} is not a list of strings")
    return tuple(value)


def _dec(value):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"tuple"} and isinstance(value["tuple"], list):
        return tuple(_dec(v) for v in value["tuple"])
    if isinstance(value, dict) and set(value) == {"expressions"}:
        parts = value["expressions"]
        if not isinstance(parts, list) or len(parts) != 4:
            raise ValueError("stored expressions are malformed")
        source, args, name, labels = parts
        if not isinstance(source, str) or not isinstance(name, str) or not name.isidentifier():
            raise ValueError("stored source or function name is malformed")
        args = _strings(args, "argument names")
        if not all(a.isidentifier() for a in args) or f"def {name}(" not in source:
            raise ValueError("stored argument names do not match the source")
        if not isinstance(labels, list):
            raise ValueError("stored axis kinds are malformed")
        return CompiledExpressions(source, args, name,
                                   tuple(_strings(lab, "axis kinds") for lab in labels))
    raise ValueError(f"stored value is malformed: {str(value)[:60]}")


def encode(obj) -> dict:
    """JSON-ready fields of a dataclass of compiled expressions, names and tuples."""
    return {f.name: _enc(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def decode(cls, data):
    """``cls`` rebuilt from :func:`encode`'s output; ``ValueError`` if it does not fit."""
    if not isinstance(data, dict):
        raise ValueError("stored entry is not an object")
    names = {f.name for f in dataclasses.fields(cls)}
    if set(data) != names:
        raise ValueError(f"stored fields {sorted(data)} are not those of {cls.__name__}")
    return cls(**{k: _dec(v) for k, v in data.items()})


def encode_mapping(mapping: dict) -> dict:
    """JSON-ready form of a dict of name -> compiled expressions."""
    return {str(k): _enc(v) for k, v in mapping.items()}


def decode_mapping(data) -> dict:
    """:func:`encode_mapping`'s input back; ``ValueError`` if it does not fit."""
    if not isinstance(data, dict):
        raise ValueError("stored entry is not an object")
    out = {k: _dec(v) for k, v in data.items()}
    if not all(isinstance(v, CompiledExpressions) for v in out.values()):
        raise ValueError("stored entry holds something other than compiled expressions")
    return out
