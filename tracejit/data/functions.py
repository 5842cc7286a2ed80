"""The functions a dataset applies to its elements (``map``, ``filter``, ...).

A function gets the element's components as arguments: a tuple element is unpacked
(``lambda x, y: ...``), any other element is passed whole. By default it is compiled
with tracejit's ``jit`` -- traced once per signature of the element (the shapes and
dtypes of its components), then each call is one program call. Elements with string
components, and functions given ``compile=False``, run as plain Python. Either way the
result is normalized to NumPy arrays, and every result must have the structure and
dtypes of the first (the error names the function and what changed).
"""

from __future__ import annotations

import threading

import numpy as np

from ..trace.jit import JitFunction
from . import structure as st

__all__ = ["ElementFunction", "call_with_element", "AUTOTUNE", "parallelism"]

AUTOTUNE = -1
"""``num_parallel_calls``/``buffer_size`` that tracejit picks (the CPU count)."""

# Stand-in sizes for dimensions that vary when a function's output spec is found by
# tracing, as the TF1 graph does it: primes, so nothing lines up by accident.
_PROBE_SIZES = (7, 11)


def call_with_element(fn, element):
    """``fn(*element)`` for a tuple element (not a namedtuple), ``fn(element)`` else."""
    if type(element) is tuple:
        return fn(*element)
    return fn(element)


def parallelism(num_parallel_calls) -> int:
    """How many threads ``num_parallel_calls`` asks for (None: none, run inline)."""
    import os
    if num_parallel_calls is None:
        return 0
    if num_parallel_calls == AUTOTUNE:
        return os.cpu_count() or 1
    count = int(num_parallel_calls)
    if count < 1:
        raise ValueError(f"num_parallel_calls must be positive or AUTOTUNE (-1), got "
                         f"{num_parallel_calls}")
    return count


def _compilable(leaves) -> bool:
    return all(isinstance(a, np.ndarray) and a.dtype.kind in "biuf" for a in leaves)


class ElementFunction:
    """``fn`` as a dataset applies it: ``self(element) -> normalized result``."""

    def __init__(self, fn, what: str, compile: bool = True, whole_element: bool = False):
        if not callable(fn):
            raise TypeError(f"{what} expects a function, got {type(fn).__name__}")
        self.fn = fn
        self.whole_element = whole_element      # fn(element), never fn(*element)
        self.what = what
        self.name = getattr(fn, "__name__", type(fn).__name__)
        self.jitted = JitFunction(self._call_user, executor=None) if compile else None
        if self.jitted is not None:
            self.jitted.__name__ = self.name
        self._lock = threading.Lock()
        self._first: tuple | None = None          # (treedef, dtypes) of the first result
        self._seen: set = set()                   # element signatures already compiled

    def _call_user(self, *args):
        return self.fn(*args)

    def __call__(self, element):
        treedef, leaves = st.flatten(element)
        if self.jitted is not None and _compilable(leaves):
            signature = (treedef, tuple((a.shape, a.dtype) for a in leaves))
            if signature not in self._seen:
                # NOTE: the first call of a signature compiles: one thread at a time, so
                # parallel calls compile it once
                with self._lock:
                    result = self._run(element)
                    self._seen.add(signature)
            else:
                result = self._run(element)
        elif self.whole_element:
            result = self.fn(element)
        else:
            result = call_with_element(self.fn, element)
        return self._checked(result)

    def _run(self, element):
        try:
            return call_with_element(self.jitted, element)
        except Exception as err:
            err.add_note(f"(in the function given to {self.what}, {self.name}, compiled with "
                         "tracejit.jit; pass compile=False to run it as plain Python)")
            raise

    def _checked(self, result):
        try:
            result = st.normalize(result)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{self.what}: {self.name} returned a value that is not an "
                            f"array or a structure of arrays: {err}") from None
        treedef, leaves = st.flatten(result)
        found = (treedef, tuple(a.dtype for a in leaves))
        first = self._first
        if first is None:
            self._first = found
        elif found != first:
            if treedef != first[0]:
                st.check_same_structure(first[0], treedef,
                                        f"{self.what}: {self.name} returned a result of "
                                        "another structure than for earlier elements")
            raise TypeError(f"{self.what}: {self.name} returned dtypes "
                            f"{[d.name for d in found[1]]}, earlier elements gave "
                            f"{[d.name for d in first[1]]}")
        return result

    def output_spec(self, input_spec):
        """The spec of the results for elements of ``input_spec``: traced at two sizes
        of each varying dimension (dimensions that differ vary), or, for a function run
        as Python, called on zeros of the input's shape."""
        treedef, specs = st.flatten(input_spec)
        varying = any(s.shape is None or None in s.shape for s in specs)
        results = []
        for size in (_PROBE_SIZES if varying else _PROBE_SIZES[:1]):
            probe = st.unflatten(treedef, [_zeros(s, size) for s in specs])
            leaves = st.flatten(probe)[1]
            if self.jitted is not None and _compilable(leaves):
                traced = call_with_element(self.jitted.trace, probe)
                out = st.unflatten(traced.out_tree,
                                   [st.TensorSpec(tuple(v.shape), np.dtype(v.dtype.np_dtype))
                                    for v in traced.graph.outputs[:len(traced.out_weak)]])
            else:
                out = st.spec_of(self.fn(probe) if self.whole_element
                                 else call_with_element(self.fn, probe))
            results.append(out)
        if len(results) == 1:
            return results[0]
        return st.map_structure(st.most_specific, *results)


def _zeros(spec: st.TensorSpec, size: int) -> np.ndarray:
    shape = () if spec.shape is None else tuple(size if d is None else d for d in spec.shape)
    if spec.dtype == st.STRING:
        return np.full(shape, b"", dtype=object)
    return np.zeros(shape, spec.dtype)
