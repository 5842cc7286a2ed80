"""``tf.Print`` and ``tf.print``: print values as the compiled step computes them.

Both record an Operation that replays as tracejit's ``host_callback`` op
(ir/ops_host.py): the program calls back into Python where it reaches the op -- every
``Session.run`` that needs it, every iteration of a loop body it is in -- and prints to
stderr (``tf.print``: ``output_stream``). ``tf.Print`` returns ``input_`` (its gradient
passes through), as TensorFlow 1 does; ``tf.print`` returns an Operation to run or to
put in ``tf.control_dependencies``.

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     x = tf.constant([1.0, 2.5, 3.0, 4.0])
...     y = tf.Print(x, [x, tf.reduce_sum(x)], "x, sum: ")     # stderr: x, sum: [1 2.5 3...][10.5]
...     with tf.Session() as sess:
...         sess.run(y).tolist()
[1.0, 2.5, 3.0, 4.0]
"""

from __future__ import annotations

import sys
import threading

import numpy as np

from ...ir import ops as ir_ops
from ...ir.errors import DTypeError
from ...ir.ops_host import register_host_callback
from ...ir.source import user_location
from ...trace.tracing import bind, current_trace, to_tensor
from ...trace.values import Tracer
from .graph import Tensor
from .ops import convert_to_tensor, graph_arg, graph_op
from .print_format import format_v2, summarize_value
from .strings import string

__all__ = ["Print", "print_v2"]


def _numeric(values, op: str) -> list[Tensor]:
    tensors = [convert_to_tensor(graph_arg(v)) for v in values]
    for t in tensors:
        if t.dtype is string:
            raise DTypeError(f"{op} cannot print the string tensor {t.name}: string values "
                             "are computed on the host, outside the compiled step; fetch "
                             "it and print it in Python", op=op, location=user_location())
    return tensors


def _call_back(x, *data, callback: int):
    values = [to_tensor(v) for v in (x, *data)]
    trace = current_trace()
    if trace is not None and not any(isinstance(v, Tracer) for v in values):
        # NOTE: constants only: recorded in the step all the same, so that it prints on
        # every run, not once while the step is traced
        values[0] = Tracer(trace.var_of(values[0]), trace)
    return bind(ir_ops.HOST_CALLBACK, values, {"callback": callback})


class _Counter:
    """How many times an op has printed (``first_n``), across runs and threads."""

    def __init__(self, limit):
        self.limit = -1 if limit is None else int(limit)
        self.count = 0
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if 0 <= self.limit <= self.count:
                return False
            self.count += 1
            return True


def Print(input_, data, message=None, first_n=None, summarize=None, name=None):  # noqa: N802
    """TensorFlow 1's ``tf.Print``: ``input_``, printing ``message`` and each tensor of
    ``data`` (``[v1 v2 v3...]``, at most ``summarize`` elements, default 3) to stderr
    whenever it is computed, the first ``first_n`` times only when that is given."""
    x = _numeric([input_], "Print")[0]
    items = _numeric(list(data or []), "Print")
    limit = 3 if summarize is None else int(summarize)
    counter = _Counter(first_n)

    def show(_, *values):
        if counter.take():
            text = "".join(f"[{summarize_value(v, limit)}]" for v in values)
            print(f"{message or ''}{text}", file=sys.stderr, flush=True)

    callback = register_host_callback(show)
    return graph_op(_call_back, "Print")(x, *items, callback=callback, name=name or "Print")


def print_v2(*inputs, output_stream=None, summarize=3, sep=" ", end="\n", name=None):
    """TensorFlow's ``tf.print`` in a graph: an Operation that prints ``inputs`` (tensors
    in NumPy's layout with at most ``summarize`` elements at each end of a dimension;
    Python strings and numbers as they are) when it runs."""
    pieces = []         # a Python value to print as it is, or the index of a tensor
    tensors = []
    for item in inputs:
        item = graph_arg(item)
        if isinstance(item, Tensor) or isinstance(item, np.ndarray):
            pieces.append(len(tensors))
            tensors.append(item)
        else:
            pieces.append(str(item))
    tensors = _numeric(tensors, "print")
    limit = -1 if summarize is None else int(summarize)

    def show(_, *values):
        text = sep.join(format_v2(values[p], limit) if isinstance(p, int) else p
                        for p in pieces)
        # NOTE: sys.stderr as it is when printing (TensorFlow's default), not as it was
        # when the op was made
        stream = sys.stderr if output_stream is None else output_stream
        if isinstance(stream, str) and stream.startswith("file://"):
            with open(stream[len("file://"):], "a") as file:
                print(text, end=end, file=file)
            return
        if isinstance(stream, str):       # TensorFlow's names: "stdout", "stderr", ...
            stream = sys.stdout if "stdout" in stream else sys.stderr
        print(text, end=end, file=stream, flush=True)

    callback = register_host_callback(show)
    anchor = tensors[0] if tensors else convert_to_tensor(0)
    out = graph_op(_call_back, "PrintV2")(anchor, *tensors, callback=callback,
                                          name=name or "PrintV2")
    return out.op
