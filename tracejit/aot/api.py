"""``tj.aot.compile`` and ``tj.aot.compile_session``: the front ends of ahead-of-time builds.

Both trace (a function for the example arguments, or a Session's step for the fed
shapes), take the variables' current values as constants (freeze.py) and hand the pure
graph to build.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..ir.core import parse_tensor_type
from ..trace.jit import JitFunction
from .build import AotLibrary, build_library
from .freeze import freeze
from .targets import parse_target

__all__ = ["compile", "compile_session", "example_array"]

def example_array(spec) -> np.ndarray:
    """An array standing for an argument: an array as it is, or a type such as
    ``"f32[1,8,8,1]"`` / ``"i32[]"`` as zeros of that type (only its type matters)."""
    if not isinstance(spec, str):
        return np.asarray(spec)
    type_ = parse_tensor_type(spec)
    return np.zeros(type_.shape, dtype=type_.dtype.np_dtype)


def compile(f, *example_args, out: str | Path, target: str = "host",
            cpu: str | None = None, weights: str = "embed", **static) -> AotLibrary:
    """Build ``f`` ahead of time for arguments like ``example_args`` (arrays, or types
    such as ``"f32[1,8,8,1]"``) into ``out`` (``build/digits`` writes ``build/digits.o``,
    ``.so``, ``.h``, ``main.c`` and ``README``). The Variables ``f`` reads are baked in
    at their current values (``weights="file"``: into ``digits.weights``). ``target``:
    ``host``, ``x86-64-v2``..``v4``, ``aarch64-linux-gnu``, ... (targets.py); keyword
    arguments are static arguments of ``f``.

    >>> import tracejit as tj, tempfile, os
    >>> def scale(x):
    ...     return tj.nn.relu(x) * 2.0
    >>> lib = tj.aot.compile(scale, "f32[4]", out=os.path.join(tempfile.mkdtemp(), "scale"))
    >>> sorted(lib.files)[:3]
    ['header', 'main', 'object']
    """
    aot_target = parse_target(target, cpu)
    jitted = f if isinstance(f, JitFunction) else JitFunction(
        f, static_argnames=tuple(static))
    arrays = [example_array(a) for a in example_args]
    traced = jitted.trace(*arrays, **static)
    what = f"function {getattr(f, '__name__', 'f')}"
    graph = freeze(traced, what)
    results = len(graph.outputs)
    labels = ["result"] if results == 1 else [f"result{i}" for i in range(results)]
    return build_library(graph, out, aot_target, weights=weights, source=what,
                         result_labels=labels)


def compile_session(session, fetches, feeds, *, out: str | Path, target: str = "host",
                    cpu: str | None = None, weights: str = "embed") -> AotLibrary:
    """Build what ``session.run(fetches, feed_dict)`` computes ahead of time, as
    tfcompile does for a TF1 graph. ``fetches``: a tensor or a list of them (or names);
    ``feeds``: the placeholders the library takes, a list (their shapes must be fully
    defined) or a dict from each to an example array or a type (``"f32[1,8,8,1]"``).
    Variables are baked in at their values in ``session``.

    >>> import tracejit.compat.v1 as tf, tracejit as tj, tempfile, os
    >>> g = tf.Graph()
    >>> with g.as_default():
    ...     x = tf.placeholder(tf.float32, [None, 3], name="x")
    ...     w = tf.Variable([[1.0], [2.0], [3.0]])
    ...     y = tf.matmul(x, w, name="y")
    ...     sess = tf.Session()
    ...     sess.run(tf.global_variables_initializer())
    >>> lib = tj.aot.compile_session(sess, y, {x: "f32[2,3]"},
    ...                              out=os.path.join(tempfile.mkdtemp(), "linear"))
    >>> [b.name for b in lib.args], [b.name for b in lib.results]
    (['x'], ['y'])
    """
    aot_target = parse_target(target, cpu)
    fetch_list = list(fetches) if isinstance(fetches, (list, tuple)) else [fetches]
    pairs = list(feeds.items()) if isinstance(feeds, dict) else [(t, None) for t in feeds]
    program, tensors = session.step_function(fetch_list, [t for t, _ in pairs])
    arrays = []
    for tensor, (_, example) in zip(tensors, pairs, strict=True):
        if example is None:
            if tensor.shape.has_unknown:
                dims = ",".join(map(str, tensor.shape.probe(1)))
                raise ValueError(f"feed {tensor.name} has shape {tensor.shape}: give the "
                                 f"shape the library takes, as feeds={{{tensor.op.name}: "
                                 f"'{tensor.dtype.short}[{dims}]'}}")
            example = np.zeros(tensor.shape.as_list(), tensor.dtype.np_dtype)
        arrays.append(example_array(example))
    traced = program.trace(*arrays)
    targets = [session.graph.as_graph_element(f) for f in fetch_list]
    what = f"the session's fetches {', '.join(t.name for t in targets)}"
    graph = freeze(traced, what)
    return build_library(graph, out, aot_target, weights=weights, source=what,
                         arg_labels=[t.op.name for t in tensors],
                         result_labels=[t.op.name for t in targets])
