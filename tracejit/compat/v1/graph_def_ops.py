"""TensorFlow's op types and tracejit's functions: the one table that reads a GraphDef's
nodes (``import_graph_def``) and names the ops of the graphs we write
(``graph_export.py``).

A row maps a TensorFlow op type (``MatMul``, ``Conv2D``) to the tracejit function that
computes it (``math_ops.matmul``, ``nn_ops.conv2d``) and how the node's inputs and
attributes become that function's arguments. Exporting reads the same rows backwards:
the ``tf.*`` constructors record an op under a type derived from the function's name
(``Matmul``, ``Conv2d``), which the first row with that function names as TensorFlow
does. The nodes that are not computations (placeholders, constants, variables, no-ops)
are ``graph_def_nodes.py``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...ir import dtypes as dt
from ...ir.errors import ParamError
from ...ir.source import user_location
from ...trace import array_ops as a
from ...trace import indexing
from ...trace import math_ops as m
from ...trace import nn_ops as nn
from ...trace.tracing import cast, static_ints
from .graph_def_values import attr_python
from .ops import recorded_type


class Attrs:
    """A NodeDef's attributes, decoded when asked (``where`` names the node in errors)."""

    def __init__(self, node, where: str):
        self._attr = node.attr
        self.where = where

    def get(self, key: str, default=None):
        if key not in self._attr:
            return default
        return attr_python(self._attr[key], self.where)

    def __contains__(self, key: str) -> bool:
        return key in self._attr


@dataclass(frozen=True)
class OpRow:
    """One TensorFlow op type: ``compute(inputs, attrs)`` builds its result(s) from the
    node's traced inputs (a list) and attributes; ``function`` is the tracejit function
    whose recorded ``tf.*`` ops export under this type (None: import only)."""
    tf_type: str
    compute: Callable
    function: Callable | None = None


def ints(value, what: str) -> list[int]:
    """A node input that must be known while tracing (an axis, a shape), as ints."""
    return list(static_ints(value, what, "import_graph_def"))


def scalar(value, what: str):
    """A known scalar input (a range bound, a pad value) as a Python number."""
    try:
        return np.asarray(value).item()
    except TypeError:
        raise ParamError(f"{what} must be known while tracing (a constant), not a value "
                         "computed at run time", op="import_graph_def",
                         location=user_location()) from None


def _unary(tf_type: str, fn) -> OpRow:
    return OpRow(tf_type, lambda xs, at: fn(xs[0]), fn)


def _binary(tf_type: str, fn) -> OpRow:
    return OpRow(tf_type, lambda xs, at: fn(xs[0], xs[1]), fn)


def _reduce(tf_type: str, fn) -> OpRow:
    def compute(xs, at):
        x = xs[0]
        result = fn(x, ints(xs[1], "reduction_indices"), keepdims=bool(at.get("keep_dims")))
        # NOTE: TensorFlow's Mean of integers is an integer (the sum divided, truncated)
        return cast(result, x.dtype) if result.dtype is not x.dtype and \
            fn is m.reduce_mean else result
    return OpRow(tf_type, compute, fn)


def _matmul(xs, at):
    return m.matmul(xs[0], xs[1], bool(at.get("transpose_a")), bool(at.get("transpose_b")))


def _batch_matmul(xs, at):
    return m.matmul(xs[0], xs[1], bool(at.get("adj_x")), bool(at.get("adj_y")))


def _conv2d(xs, at):
    padding = at.get("padding")
    if padding == "EXPLICIT":
        padding = at.get("explicit_paddings")
    return nn.conv2d(xs[0], xs[1], at.get("strides"), padding, at.get("data_format", "NHWC"),
                     at.get("dilations"))


def _pool(fn):
    def compute(xs, at):
        ksize, strides = at.get("ksize"), at.get("strides")
        if len(xs) == 3:            # MaxPoolV2: the window and strides are inputs
            ksize, strides = ints(xs[1], "ksize"), ints(xs[2], "strides")
        return fn(xs[0], ksize, strides, at.get("padding"), at.get("data_format", "NHWC"))
    return compute


def _fused_batch_norm(outputs: int):
    """Inference mode: normalize by the given mean and variance; the ``outputs - 1``
    other outputs are the statistics used (as TensorFlow returns them when
    ``is_training`` is false)."""
    return lambda xs, at: _batch_norm_inference(xs, at)[:outputs]


def _batch_norm_inference(xs, at):
    if at.get("is_training", True):
        raise ParamError(f"{at.where}: FusedBatchNorm with is_training=True (batch "
                         "statistics) is not supported; export the graph for inference",
                         op="import_graph_def", location=user_location())
    x, scale, offset, mean, variance = xs[:5]
    if at.get("data_format", "NHWC") == "NCHW":
        scale, offset, mean, variance = (a.reshape(v, (-1, 1, 1))
                                         for v in (scale, offset, mean, variance))
    epsilon = at.get("epsilon", 1e-4)
    y = nn.batch_normalization(x, cast(mean, x.dtype), cast(variance, x.dtype),
                               cast(offset, x.dtype), cast(scale, x.dtype), epsilon)
    return [y, xs[3], xs[4], xs[3], xs[4], xs[4]]


def _strided_slice(xs, at):
    """TensorFlow's masks as a Python index: each set bit of ``begin_mask``/``end_mask``
    drops that bound, ``shrink_axis_mask`` takes one element, ``new_axis_mask`` adds an
    axis, ``ellipsis_mask`` stands for the dimensions not named."""
    begin, end = ints(xs[1], "begin"), ints(xs[2], "end")
    strides = ints(xs[3], "strides") if len(xs) > 3 else [1] * len(begin)
    masks = {key: int(at.get(key, 0)) for key in
             ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")}
    index = []
    for i, (b, e, s) in enumerate(zip(begin, end, strides, strict=True)):
        bit = 1 << i
        if masks["ellipsis_mask"] & bit:
            index.append(Ellipsis)
        elif masks["new_axis_mask"] & bit:
            index.append(None)
        elif masks["shrink_axis_mask"] & bit:
            index.append(b)
        else:
            index.append(slice(None if masks["begin_mask"] & bit else b,
                               None if masks["end_mask"] & bit else e, s))
    return indexing.getitem(xs[0], tuple(index))


def _pad(xs, at, mode="CONSTANT"):
    value = scalar(xs[2], "constant_values") if len(xs) > 2 else 0
    return a.pad(xs[0], np.asarray(ints(xs[1], "paddings")).reshape(-1, 2).tolist(),
                 at.get("mode", mode), value)


def _one_hot(xs, at):
    return a.one_hot(xs[0], scalar(xs[1], "depth"), xs[2], xs[3], at.get("axis", -1),
                     xs[2].dtype)


def _range(xs, at):
    start, limit, delta = (scalar(v, what) for v, what in zip(xs, ("start", "limit", "delta"),
                                                              strict=True))
    return a.range(start, limit, delta, dtype=at.get("Tidx", xs[0].dtype))


def _gather(xs, at):
    if at.get("batch_dims", 0):
        raise ParamError(f"{at.where}: GatherV2 with batch_dims is not supported",
                         op="import_graph_def", location=user_location())
    return a.gather(xs[0], xs[1], ints(xs[2], "axis")[0] if len(xs) > 2 else 0)


def _fill(xs, at):
    return a.broadcast_to(xs[1], ints(xs[0], "dims"))


ROWS: tuple[OpRow, ...] = (
    # ---- element by element (the first row of a function names its export) ----
    _binary("AddV2", m.add), _binary("Add", m.add), _binary("Sub", m.subtract),
    _binary("Mul", m.multiply), _binary("RealDiv", m.divide), _binary("Maximum", m.maximum),
    _binary("Minimum", m.minimum), _binary("Pow", m.pow),
    _binary("SquaredDifference", m.squared_difference), _binary("FloorDiv", m.floordiv),
    _binary("FloorMod", m.mod), _binary("TruncateDiv", m.truncatediv),
    _binary("Equal", m.equal), _binary("NotEqual", m.not_equal), _binary("Less", m.less),
    _binary("LessEqual", m.less_equal), _binary("Greater", m.greater),
    _binary("GreaterEqual", m.greater_equal), _binary("LogicalAnd", m.logical_and),
    _binary("LogicalOr", m.logical_or),
    _unary("Relu", m.relu), _unary("Relu6", nn.relu6), _unary("Elu", nn.elu),
    _unary("Softplus", nn.softplus), _unary("Sigmoid", m.sigmoid), _unary("Tanh", m.tanh),
    _unary("Exp", m.exp), _unary("Expm1", m.expm1), _unary("Log", m.log),
    _unary("Log1p", m.log1p), _unary("Neg", m.negative), _unary("Abs", m.abs),
    _unary("Sign", m.sign), _unary("Square", m.square), _unary("Sqrt", m.sqrt),
    _unary("Rsqrt", m.rsqrt), _unary("Reciprocal", m.reciprocal), _unary("Inv", m.reciprocal),
    _unary("Floor", m.floor), _unary("Ceil", m.ceil), _unary("Round", m.round),
    _unary("Sin", m.sin), _unary("Cos", m.cos), _unary("Erf", m.erf),
    _unary("IsNan", m.isnan), _unary("IsFinite", m.isfinite),
    _unary("LogicalNot", m.logical_not), _unary("Identity", a.identity),
    _unary("Snapshot", a.identity), _unary("StopGradient", a.stop_gradient),
    _unary("Softmax", nn.softmax), _unary("LogSoftmax", nn.log_softmax),
    OpRow("LeakyRelu", lambda xs, at: nn.leaky_relu(xs[0], at.get("alpha", 0.2)),
          nn.leaky_relu),
    OpRow("AddN", lambda xs, at: m.add_n(xs), m.add_n),
    OpRow("ClipByValue", lambda xs, at: m.clip_by_value(*xs), m.clip_by_value),
    OpRow("Select", lambda xs, at: m.where(*xs), m.where),
    OpRow("SelectV2", lambda xs, at: m.where(*xs)),
    OpRow("Cast", lambda xs, at: cast(xs[0], at.get("DstT")), cast),
    # ---- linear algebra and networks ----
    OpRow("MatMul", _matmul, m.matmul),
    OpRow("BatchMatMul", _batch_matmul), OpRow("BatchMatMulV2", _batch_matmul),
    OpRow("BatchMatMulV3", _batch_matmul),
    OpRow("BiasAdd", lambda xs, at: nn.bias_add(xs[0], xs[1], at.get("data_format", "NHWC")),
          nn.bias_add),
    OpRow("BiasAddV1", lambda xs, at: nn.bias_add(xs[0], xs[1])),
    OpRow("Conv2D", _conv2d, nn.conv2d),
    OpRow("MaxPool", _pool(nn.max_pool), nn.max_pool), OpRow("MaxPoolV2", _pool(nn.max_pool)),
    OpRow("AvgPool", _pool(nn.avg_pool), nn.avg_pool),
    OpRow("FusedBatchNorm", _fused_batch_norm(5)),
    OpRow("FusedBatchNormV2", _fused_batch_norm(5)),
    OpRow("FusedBatchNormV3", _fused_batch_norm(6)),
    # ---- reductions ----
    _reduce("Mean", m.reduce_mean), _reduce("Sum", m.reduce_sum), _reduce("Max", m.reduce_max),
    _reduce("Min", m.reduce_min), _reduce("Prod", m.reduce_prod), _reduce("All", m.reduce_all),
    _reduce("Any", m.reduce_any),
    OpRow("ArgMax", lambda xs, at: m.argmax(xs[0], ints(xs[1], "axis")[0],
                                            at.get("output_type", dt.int64)), m.argmax),
    OpRow("ArgMin", lambda xs, at: m.argmin(xs[0], ints(xs[1], "axis")[0],
                                            at.get("output_type", dt.int64)), m.argmin),
    # ---- shapes and movement ----
    OpRow("Shape", lambda xs, at: a.shape(xs[0], at.get("out_type", dt.int32)), a.shape),
    OpRow("Size", lambda xs, at: a.size(xs[0], at.get("out_type", dt.int32)), a.size),
    OpRow("Rank", lambda xs, at: a.rank(xs[0]), a.rank),
    OpRow("Reshape", lambda xs, at: a.reshape(xs[0], ints(xs[1], "shape")), a.reshape),
    OpRow("Squeeze", lambda xs, at: a.squeeze(xs[0], at.get("squeeze_dims") or None),
          a.squeeze),
    OpRow("ExpandDims", lambda xs, at: a.expand_dims(xs[0], ints(xs[1], "dim")[0]),
          a.expand_dims),
    OpRow("ConcatV2", lambda xs, at: a.concat(xs[:-1], ints(xs[-1], "axis")[0]), a.concat),
    OpRow("Concat", lambda xs, at: a.concat(xs[1:], ints(xs[0], "concat_dim")[0])),
    OpRow("Pack", lambda xs, at: a.stack(xs, at.get("axis", 0)), a.stack),
    OpRow("Unpack", lambda xs, at: a.unstack(xs[0], at.get("num"), at.get("axis", 0)),
          a.unstack),
    OpRow("Split", lambda xs, at: a.split(xs[1], at.get("num_split"), ints(xs[0], "axis")[0]),
          a.split),
    OpRow("SplitV", lambda xs, at: a.split(xs[0], ints(xs[1], "size_splits"),
                                           ints(xs[2], "axis")[0])),
    OpRow("Transpose", lambda xs, at: a.transpose(xs[0], ints(xs[1], "perm")), a.transpose),
    OpRow("Tile", lambda xs, at: a.tile(xs[0], ints(xs[1], "multiples")), a.tile),
    OpRow("Pad", _pad, a.pad), OpRow("PadV2", _pad),
    OpRow("MirrorPad", _pad),
    OpRow("Slice", lambda xs, at: a.slice(xs[0], ints(xs[1], "begin"), ints(xs[2], "size")),
          a.slice),
    OpRow("StridedSlice", _strided_slice),
    OpRow("GatherV2", _gather, a.gather), OpRow("Gather", _gather),
    OpRow("OneHot", _one_hot, a.one_hot),
    OpRow("Fill", _fill, a.fill),
    OpRow("ZerosLike", lambda xs, at: a.zeros_like(xs[0]), a.zeros_like),
    OpRow("OnesLike", lambda xs, at: a.ones_like(xs[0]), a.ones_like),
    OpRow("Range", _range, a.range),
)

#: The computing rows by TensorFlow op type.
COMPUTE_ROWS = {row.tf_type: row for row in ROWS}


def _export_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for row in ROWS:
        if row.function is not None:
            names.setdefault(recorded_type(row.function), row.tf_type)
    # NOTE: ``x[...]`` records StridedSlice, tf.nn.max_pool MaxPool, already TF's names
    return names


#: TensorFlow's op type for the type a ``tf.*`` constructor recorded (``Matmul``:
#: ``MatMul``), where they differ; ``graph_export.py`` writes these.
TF_TYPE_OF_RECORDED = {recorded: tf for recorded, tf in _export_names().items()
                       if recorded != tf}
