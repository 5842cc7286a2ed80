"""TF1 ops: every tracejit function, recorded as an Operation of the default graph.

``graph_op(fn)`` turns a tracejit function into a TF1 op constructor: calling it
records ``fn`` and its arguments; the Session replays the call with traced values.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from ... import trace as _trace  # noqa: F401  (initializes the front end)
from ...ir import dtypes as dt
from ...trace import (
    array_ops,
    conv_ops,
    indexing,
    math_ops,
    nn_ops,
    pytree,
    random_ops,
    tracing,
)
from ...trace.autodiff import gradients as _gradients
from ...trace.indexed_slices import IndexedSlices, to_dense
from . import legacy
from .coverage import tensorflow_names
from .graph import Tensor, as_operation, get_default_graph
from .legacy import canonical_kwargs


def graph_arg(value):
    """Compat Variables stand for their value tensor inside ops; an IndexedSlices for
    its dense tensor (TensorFlow's implicit conversion)."""
    if isinstance(value, IndexedSlices):
        return get_default_graph().create_op("IndexedSlicesToDense", to_dense, (value,),
                                             name="IndexedSlicesToDense").structured_outputs()
    if hasattr(value, "_graph_element"):
        return value._graph_element()
    if isinstance(value, (list, tuple)) and any(hasattr(v, "_graph_element") for v in value):
        return type(value)(graph_arg(v) for v in value)
    return value


def recorded_type(fn) -> str:
    """The op type ``graph_op(fn)`` records: the function's name in CamelCase
    (``reduce_mean``: ``ReduceMean``; graph_def_ops.py maps it to TensorFlow's)."""
    return "".join(p.capitalize() for p in fn.__name__.split("_"))


def graph_op(fn, op_type: str | None = None):
    """A TF1 op constructor recording ``fn`` (a tracejit function) in the default graph."""
    kind = op_type or recorded_type(fn)

    @functools.wraps(fn)
    def op(*args, name=None, **kwargs):
        args = tuple(graph_arg(a) for a in args)
        kwargs = canonical_kwargs(fn, {k: graph_arg(v) for k, v in kwargs.items()}, kind)
        created = get_default_graph().create_op(kind, fn, args, kwargs, name=name)
        return created.structured_outputs()

    return op


# The TF1 namespace is derived, not listed: each front-end function whose name
# tensorflow.compat.v1 has in that namespace (the shipped public-name list), so a new
# front-end function appears here with no edit. BEYOND_TF1: spellings kept that the list
# lacks (a NumPy alias, TF2's gelu); OWN: names this module defines itself, graph-aware;
# pre-1.0 renames are legacy.py's.
BEYOND_TF1 = {"tf": ("floor_divide",), "tf.nn": ("gelu",)}
OWN = frozenset({"constant", "convert_to_tensor", "dropout"})
_TF_NAMES = frozenset(tensorflow_names()[1])


def tf1_names(namespace: str, *modules) -> list[str]:
    """The public functions of ``modules`` that TensorFlow 1 has as ``namespace.<name>``."""
    found = set(BEYOND_TF1.get(namespace, ()))
    for module in modules:
        for name in dir(module):
            value = getattr(module, name)
            if (not name.startswith("_") and name not in OWN and callable(value)
                    and not isinstance(value, type) and f"{namespace}.{name}" in _TF_NAMES):
                found.add(name)
    return sorted(found)


_FRONT_END = (math_ops, array_ops, indexing, tracing)
ops = {name: graph_op(next(getattr(m, name) for m in _FRONT_END if hasattr(m, name)))
       for name in tf1_names("tf", *_FRONT_END)}
nn_ops_table = {name: graph_op(getattr(nn_ops, name, None) or getattr(conv_ops, name))
                for name in tf1_names("tf.nn", nn_ops, conv_ops)}


def tf1_argmax(input, axis=None, name=None, dimension=None, output_type=dt.int64):
    """TF1's ``tf.argmax``: ``dimension`` is the deprecated spelling of ``axis``."""
    return math_ops.argmax(input, dimension if axis is None else axis, output_type)


def tf1_argmin(input, axis=None, name=None, dimension=None, output_type=dt.int64):
    """TF1's ``tf.argmin``: ``dimension`` is the deprecated spelling of ``axis``."""
    return math_ops.argmin(input, dimension if axis is None else axis, output_type)


# NOTE: recorded as Argmax/Argmin; module-level functions, so a graph written with them
# can name them (graph_def_calls.py)
tf1_argmax.__name__, tf1_argmin.__name__ = "argmax", "argmin"
ops["argmax"] = graph_op(tf1_argmax)
ops["argmin"] = graph_op(tf1_argmin)
legacy.install(ops)


def _is_text(value) -> bool:
    if isinstance(value, (str, bytes)):
        return True
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(map(_is_text, value))


def _string_constant(value, shape, name):
    """A tf.string constant: bytes the Session returns as they are (names, file paths).
    No op computes on strings yet, so it can be fetched, not fed to other ops."""
    from .shapes import TensorShape
    from .strings import string
    array = np.vectorize(lambda v: v.encode() if isinstance(v, str) else v,
                         otypes=[object])(np.asarray(value, dtype=object))
    if shape is not None:
        array = np.broadcast_to(array, tuple(shape)).copy()
    created = get_default_graph().create_op("Const", None, name=name)
    created.outputs = [Tensor(created, 0, TensorShape(array.shape), string)]
    created.host_value = lambda session: array.copy()
    return created.outputs[0]


def constant(value, dtype=None, shape=None, name="Const", verify_shape=False):
    if _is_text(value) or (dtype is not None and getattr(dtype, "name", dtype) == "string"):
        return _string_constant(value, shape, name)
    array = np.asarray(array_ops.constant(value, dtype, shape))
    created = get_default_graph().create_op("Const", lambda: array_ops.constant(array), (),
                                            name=name)
    return created.structured_outputs()


def convert_to_tensor(value, dtype=None, name=None):
    value = graph_arg(value)
    if isinstance(value, Tensor):
        return value if dtype is None or value.dtype is dt.as_dtype(dtype) else \
            ops["cast"](value, dtype)
    return constant(value, dtype=dtype, name=name or "Const")


def placeholder(dtype, shape=None, name=None):
    """A value to feed at run time; ``None`` dimensions take the fed size."""
    from .shapes import TensorShape
    graph = get_default_graph()
    shape = TensorShape(shape)
    created = graph.create_op("Placeholder", None, name=name or "Placeholder")
    created.outputs = [Tensor(created, 0, shape, dt.as_dtype(dtype))]
    return created.outputs[0]


def placeholder_with_default(input, shape, name=None):
    """``input`` unless fed, when it may take any shape compatible with ``shape``."""
    from .shapes import TensorShape
    tensor = convert_to_tensor(input)
    out = graph_op(array_ops.identity, "PlaceholderWithDefault")(tensor, name=name)
    out._shape = TensorShape(shape)
    return out


# fn(ys) -> (tensors the gradients op must read, host ops it must follow), called by
# tf.gradients before it records the op; gradient_override.py installs its own
BEFORE_GRADIENTS: list = []


def gradients(ys, xs, grad_ys=None, name="gradients", stop_gradients=None, **unused):
    """TF1's ``tf.gradients``: always a list, one gradient per ``x`` (a single ``x``
    gives a one-element list, so ``tf.gradients(y, x)[0]`` is the gradient). An ``x``
    read only through gathers of rows (an embedding) gets an ``IndexedSlices``."""
    xs_list = [graph_arg(x) for x in (xs if isinstance(xs, (list, tuple)) else [xs])]
    ys_list = ys if isinstance(ys, (list, tuple)) else [ys]
    for x in xs_list:
        if isinstance(x, Tensor):
            # NOTE: an x the step would compute eagerly (a tf.constant, a default not
            # fed) is replayed as a traced value, so the ys computed from it are traced
            x.op.differentiated = True
    layout = []     # how the op's flat outputs group into gradients (IndexedSlices, None)

    def differentiate(ys, xs, gys, overrides=None):
        leaves: list = []
        layout[:] = [pytree.flatten(_gradients(ys, xs, gys, indexed_slices=True), leaves)]
        return leaves

    # NOTE: what overriding gradients read comes in as an unused argument, so the step
    # computes it; the host ops among them run first (gradient_override.py)
    needed, hosts = [], []
    for prepare in BEFORE_GRADIENTS:
        more, more_hosts = prepare(ys_list)
        needed += more
        hosts += more_hosts
    created = get_default_graph().create_op(
        "Gradients", differentiate, (ys_list, xs_list, grad_ys),
        {"overrides": needed} if needed else None, name=name, extra_control=hosts)
    return list(pytree.unflatten(layout[0], iter(created.outputs)))


def group(*inputs, name=None):
    """An op that runs all ``inputs`` (as control dependencies) and outputs nothing."""
    flat = []
    for item in inputs:
        flat.extend(item if isinstance(item, (list, tuple)) else [item])
    controls = [as_operation(graph_arg(i)) for i in flat if i is not None]
    return get_default_graph().create_op("NoOp", None, name=name or "group_deps",
                                         extra_control=controls)


def no_op(name=None):
    return get_default_graph().create_op("NoOp", None, name=name or "NoOp")


def tuple_(tensors, name=None, control_inputs=None):
    gate = group(*(list(tensors) + list(control_inputs or [])))
    with get_default_graph().control_dependencies([gate]):
        return [ops["identity"](t) if t is not None else None for t in tensors]


# ---- stateful random numbers ------------------------------------------------------------------
# TF1's random ops give new numbers on every run. Each op has its own seed; a per-graph
# counter Variable, bumped by every run that draws, makes successive runs differ.

def rng_counter(graph):
    counter = getattr(graph, "_rng_counter", None)
    if counter is None:
        from ...trace.variables import Variable
        counter = Variable(np.zeros((), np.int32), name="random_counter", trainable=False)
        graph._rng_counter = counter
    return counter


def op_seed_of(graph, seed):
    if seed is not None:
        return int(seed) & 0x7FFFFFFF
    base = graph.seed if graph.seed is not None else int.from_bytes(os.urandom(3), "little")
    return (base * 7919 + graph.next_random_seed()) & 0x7FFFFFFF


def _random_op(kind, sample):
    def op(shape, *args, seed=None, name=None, **kwargs):
        graph = get_default_graph()
        counter = rng_counter(graph)
        op_seed = op_seed_of(graph, seed)

        def draw(shape, *args, **kwargs):
            count = counter.read_value()
            counter.assign(count + 1)
            key = array_ops.stack([math_ops.cast(op_seed, dt.int32), count])
            return sample(key, tuple(int(d) for d in np.asarray(shape).reshape(-1)),
                          *args, **kwargs)

        created = graph.create_op(kind, draw, (shape,) + args, kwargs, name=name or kind)
        return created.structured_outputs()
    return op


random_normal = _random_op(
    "RandomStandardNormal",
    lambda key, shape, mean=0.0, stddev=1.0, dtype=dt.float32:
        random_ops.normal(key, shape, dtype, mean, stddev))
random_uniform = _random_op(
    "RandomUniform",
    lambda key, shape, minval=0.0, maxval=1.0, dtype=dt.float32:
        random_ops.uniform(key, shape, dtype, minval, maxval))
truncated_normal = _random_op(
    "TruncatedNormal",
    lambda key, shape, mean=0.0, stddev=1.0, dtype=dt.float32:
        random_ops.truncated_normal(key, shape, dtype, mean, stddev))


def dropout(x, keep_prob=None, noise_shape=None, seed=None, name=None, rate=None):
    """TF1's dropout: keep each element with probability ``keep_prob``, scaled by 1/keep_prob."""
    if keep_prob is None:
        keep_prob = 1.0 - rate
    mask_source = random_uniform(ops["shape"](x) if noise_shape is None else noise_shape,
                                 seed=seed)
    keep = ops["less"](mask_source, keep_prob)
    return ops["where"](keep, ops["divide"](x, keep_prob), ops["zeros_like"](x), name=name)


def set_random_seed(seed) -> None:
    """The graph-level seed: random ops and variable initializers become reproducible."""
    from ... import initializers
    get_default_graph().seed = int(seed)
    initializers.set_seed(int(seed))


def _operator(name, reverse=False):
    fn = ops[name]
    if reverse:
        return lambda self, other: fn(other, self)
    return lambda self, other: fn(self, other)


def _install_operators() -> None:
    """Give graph Tensors Python's operators, each recording an op."""
    pairs = {"add": "add", "sub": "subtract", "mul": "multiply", "truediv": "divide",
             "floordiv": "floordiv", "mod": "mod", "pow": "pow", "matmul": "matmul",
             "and": "logical_and", "or": "logical_or", "xor": "logical_xor"}
    for dunder, name in pairs.items():
        setattr(Tensor, f"__{dunder}__", _operator(name))
        setattr(Tensor, f"__r{dunder}__", _operator(name, reverse=True))
    for dunder, name in {"lt": "less", "le": "less_equal", "gt": "greater",
                         "ge": "greater_equal"}.items():
        setattr(Tensor, f"__{dunder}__", _operator(name))
    Tensor.__neg__ = lambda self: ops["negative"](self)
    Tensor.__abs__ = lambda self: ops["abs"](self)
    Tensor.__invert__ = lambda self: ops["logical_not"](self)
    Tensor.__getitem__ = lambda self, index: graph_op(getitem, "StridedSlice")(self, index)


def getitem(x, index):
    """``x[index]`` (what a graph tensor's ``[]`` records, as a StridedSlice)."""
    return x[index]


_install_operators()
