"""``tf.py_func`` and ``tf.numpy_function``: a Python function as an op of the graph.

They are host ops (host_ops.py): when a ``Session.run`` needs one, the Session computes
its inputs (in a step of their own when they come from the graph), calls ``func`` with
them as NumPy values, and runs the rest of the graph with its results fed. That is the
cost: a run that needs a py_func runs as two compiled steps (three with two py_funcs in
a chain), and an op the inputs and the rest both need is computed in each. What the
function returns may have any shape (its static shape is unknown, as in TensorFlow;
``set_shape`` states it) and may be strings, which is what input pipelines use it for.

As in TensorFlow: ``func`` gets an ``np.ndarray`` per tensor (a NumPy scalar for a 0-d
one, ``bytes`` objects for strings) and must return values of exactly the ``Tout``
dtypes (a float64 array for a ``tf.float32`` output is an ``InvalidArgumentError``);
an exception it raises fails the run with ``tf.errors.UnknownError`` naming the op and
the line that created it; and it has no gradient (``tf.gradients`` gives None through
it). A py_func cannot be used inside a ``tf.while_loop``/``tf.cond`` function (its
body is compiled; call it on the loop's results instead).

>>> import numpy as np, tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     x = tf.placeholder(tf.float32, [None])
...     y = tf.py_func(lambda a: np.sort(a)[::-1].copy(), [x], tf.float32)
...     with tf.Session() as sess:
...         sess.run(y * 2, {x: [1.0, 3.0, 2.0]}).tolist()
[6.0, 4.0, 2.0]
"""

from __future__ import annotations

import traceback

import numpy as np

from ...ir import dtypes as dt
from ...ir.errors import ParamError
from ...ir.source import user_location
from .errors import InvalidArgumentError, UnknownError
from .graph import get_default_graph
from .host_ops import as_value, host_op
from .ops import convert_to_tensor, graph_arg
from .strings import string

__all__ = ["py_func", "numpy_function"]


def _dtype(value):
    if value is string or getattr(value, "name", value) == "string":
        return string
    return dt.as_dtype(value)


def _argument(value: np.ndarray):
    """What TensorFlow hands ``func`` for a tensor: the array, a NumPy scalar for 0-d."""
    value = np.asarray(value)
    return value[()] if value.ndim == 0 else value


def _result(value, dtype, index: int, what: str) -> np.ndarray:
    """``value`` as an output of ``dtype``, refused unless its NumPy dtype is exactly
    that (TensorFlow converts nothing)."""
    if dtype is string:
        array = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) \
            else value
        if array.dtype.kind not in "OSU":
            raise TypeError(f"{index}-th value returned by {what} is "
                            f"{dt.as_dtype(array.dtype).name}, but expects string")
        return array
    array = np.asarray(value)
    if array.dtype.kind in "OSU":
        raise TypeError(f"{index}-th value returned by {what} is string, but expects "
                        f"{_tf_name(dtype)}")
    if array.dtype != dtype.np_dtype:
        raise TypeError(f"{index}-th value returned by {what} is "
                        f"{_tf_name(dt.as_dtype(array.dtype))}, but expects {_tf_name(dtype)}")
    return array


def _tf_name(dtype) -> str:
    return {"float32": "float", "float64": "double"}.get(dtype.name, dtype.name)


def _py_func(func, inp, Tout, stateful, name, kind):  # noqa: N803 (TensorFlow's name)
    if not callable(func):
        raise TypeError(f"{kind}: func must be callable, got {func!r}")
    graph = get_default_graph()
    if graph.in_region():
        raise ParamError(f"{kind} cannot run inside a tf.while_loop or tf.cond function "
                         "(the body is compiled code; call it on the loop's results)",
                         op=kind, location=user_location())
    many = isinstance(Tout, (list, tuple))
    dtypes = [_dtype(t) for t in (Tout if many else [Tout])]
    inputs = [convert_to_tensor(graph_arg(v)) for v in (inp or [])]
    location = user_location()
    count = getattr(graph, "py_func_count", 0)
    graph.py_func_count = count + 1
    what = f"pyfunc_{count}"                # TensorFlow's name in its messages

    def compute(session, values):
        try:
            result = func(*[_argument(as_value(t.dtype, v))
                             for t, v in zip(inputs, values, strict=True)])
        except Exception as exc:        # noqa: BLE001 - the user's error, reported as TF does
            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            raise UnknownError(f"{text}\n{traceback.format_exc()}  [[node {op.name}]]",
                               op=op, location=location) from exc
        # NOTE: as TensorFlow counts them: a list or tuple is that many values
        results = list(result) if isinstance(result, (list, tuple)) else [result]
        if len(results) != len(dtypes):
            raise InvalidArgumentError(f"{what} returns {len(results)} values, but expects "
                                       f"to see {len(dtypes)} values.\n  [[node {op.name}]]",
                                       op=op, location=location)
        try:
            return [_result(v, d, i, what) for i, (v, d) in enumerate(zip(results, dtypes,
                                                                         strict=True))]
        except TypeError as exc:
            raise InvalidArgumentError(f"{exc}\n  [[node {op.name}]]", op=op,
                                       location=location) from None

    op_type = "PyFunc" if stateful else "PyFuncStateless"
    op = host_op(op_type, compute, inputs, [(d, None) for d in dtypes],
                 name=name or op_type)
    return list(op.outputs) if many else op.outputs[0]


def py_func(func, inp, Tout, stateful=True, name=None):  # noqa: N803
    """TensorFlow 1's ``tf.py_func`` (see the module's docstring)."""
    return _py_func(func, inp, Tout, stateful, name, "py_func")


def numpy_function(func, inp, Tout, stateful=True, name=None):  # noqa: N803
    """``tf.numpy_function``: ``tf.py_func`` by another name."""
    return _py_func(func, inp, Tout, stateful, name, "numpy_function")
