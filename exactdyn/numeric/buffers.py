"""Buffers for the temporaries of generated right-hand sides, one set per thread and dtype.

A right-hand side printed with ``into`` (:func:`exactdyn.numeric.indexed.lower_indexed`)
takes, after its result views ``_out``, a dict ``_b`` in which it keeps its array
temporaries between calls (pre-activations, σ'(h)·e, ...), so a call allocates nothing
but its result. Such a dict may be used by one call at a time, with one set of argument
shapes and dtypes. A lowered flow is shared, cached per model, by every integration of
that model, threads too; so it keeps one dict per (thread, dtype) here. A call never
re-enters itself within a thread (a right-hand side does not call a right-hand side), and
two threads never share a dict. The result a caller keeps (scipy's integrators keep the
last derivative as the first stage of the next step; the kink scheme keeps velocities) is
a new array every call, never a buffer.
"""

from __future__ import annotations

from threading import get_ident


class ThreadBuffers:
    """The buffer dicts of one generated function: :meth:`get` returns this thread's dict
    for a dtype, created empty the first time (the generated code fills it)."""

    __slots__ = ("_dicts",)

    def __init__(self):
        self._dicts: dict = {}

    def get(self, dtype=None) -> dict:
        """This thread's buffer dict for arguments of ``dtype`` (any hashable key)."""
        key = (get_ident(), dtype)
        found = self._dicts.get(key)
        if found is None:
            found = self._dicts[key] = {}
        return found

    def clear(self) -> None:
        """Drop every buffer (they are allocated again by the next calls)."""
        self._dicts.clear()

    def __reduce__(self):
        # buffers are scratch memory: a copy (pickle, deepcopy) starts with none
        return (ThreadBuffers, ())
