"""One table of valid invocations of every op, and the small helpers the op tests share.

``OP_EXAMPLES[op]`` (keyed by the op object) lists ``(input types, params)`` pairs that
the op accepts. Other tests (the printer/parser round trip, pass tests, every backend's
conformance) iterate it, so it stays cheap: NumPy only, no hypothesis, nothing computed
at import beyond a few tuples. ``BY_NAME`` is the same table by op name, for tests that
are parametrized (and read) by name.
"""

from __future__ import annotations

import numpy as np

from tracejit.ir import OPS, ConstValue, GraphBuilder, TensorType, interpret, ops
from tracejit.ir import dtypes as dt
from tracejit.ir.opdef import OpDef
from tracejit.ir.ops_host import register_host_callback

Example = tuple[list[TensorType], dict]


def T(shape, dtype) -> TensorType:
    return TensorType(tuple(shape), dt.as_dtype(dtype))


f16, bf16, f32, f64 = dt.float16, dt.bfloat16, dt.float32, dt.float64
i8, u8, i32, i64, b1 = dt.int8, dt.uint8, dt.int32, dt.int64, dt.bool_

_FLOAT_UNARY = [ops.EXP, ops.EXPM1, ops.LOG, ops.LOG1P, ops.SQRT, ops.RSQRT, ops.RECIPROCAL,
                ops.TANH, ops.SIGMOID, ops.SIN, ops.COS, ops.ERF, ops.FLOOR, ops.CEIL, ops.ROUND,
                ops.ISNAN, ops.ISFINITE]
_NUMERIC_UNARY = [ops.NEG, ops.ABS, ops.SIGN, ops.SQUARE, ops.RELU]
_NUMERIC_BINARY = [ops.ADD, ops.SUB, ops.MUL, ops.DIV, ops.FLOORDIV, ops.MOD, ops.POW]
_ANY_BINARY = [ops.MAXIMUM, ops.MINIMUM, ops.EQUAL, ops.NOT_EQUAL, ops.LESS, ops.LESS_EQUAL,
               ops.GREATER, ops.GREATER_EQUAL]
_LOGICAL = [ops.LOGICAL_AND, ops.LOGICAL_OR, ops.LOGICAL_XOR]

OP_EXAMPLES: dict[OpDef, list[Example]] = {}
for _op in _FLOAT_UNARY:
    OP_EXAMPLES[_op] = [([T((2, 3), f32)], {}), ([T((), bf16)], {})]
for _op in _NUMERIC_UNARY:
    OP_EXAMPLES[_op] = [([T((4,), i32)], {}), ([T((2, 0), f16)], {})]
for _op in _NUMERIC_BINARY:
    OP_EXAMPLES[_op] = [([T((2, 3), f32), T((3,), f32)], {}), ([T((), i8), T((), i8)], {})]
for _op in _ANY_BINARY:
    OP_EXAMPLES[_op] = [([T((2, 1), f64), T((1, 3), f64)], {}), ([T((2,), b1)] * 2, {})]
for _op in _LOGICAL:
    OP_EXAMPLES[_op] = [([T((3,), b1), T((2, 3), b1)], {})]

OP_EXAMPLES.update({
    ops.LOGICAL_NOT: [([T((3,), b1)], {})],
    ops.STOP_GRADIENT: [([T((2, 2), f32)], {}), ([T((), i64)], {})],
    ops.SELECT: [([T((2, 3), b1), T((2, 3), f32), T((), f32)], {})],
    ops.CAST: [([T((2,), f32)], {"dtype": i32}), ([T((), u8)], {"dtype": bf16})],
    ops.CLIP: [([T((5,), f32), T((), f32), T((), f32)], {}),
             ([T((2, 2), i64), T((2, 1), i64), T((2,), i64)], {})],
    # reductions
    ops.SUM: [([T((2, 3), f32)], {"axes": (1,)}), ([T((2, 3, 4), i8)], {"axes": (0, 2),
                                                                         "keepdims": True})],
    ops.PROD: [([T((3, 2), i64)], {"axes": (0, 1)})],
    ops.MEAN: [([T((4, 5), f16)], {"axes": (0,)}), ([T((0, 2), f64)], {"axes": (0,)})],
    ops.MAX: [([T((2, 3), f32)], {"axes": (1,), "keepdims": True}), ([T((3,), b1)],
                                                                    {"axes": (0,)})],
    ops.MIN: [([T((2, 3), u8)], {"axes": (0, 1)})],
    ops.ANY: [([T((2, 3), b1)], {"axes": (1,)})],
    ops.ALL: [([T((2, 3), b1)], {"axes": ()})],
    ops.ARGMAX: [([T((2, 3), f32)], {"axis": 1}), ([T((4,), i8)], {"axis": 0,
                                                                  "index_dtype": i32})],
    ops.ARGMIN: [([T((2, 3), bf16)], {"axis": 0})],
    # movement
    ops.RESHAPE: [([T((2, 3), f32)], {"shape": (3, 2)}), ([T((1,), i32)], {"shape": ()})],
    ops.TRANSPOSE: [([T((2, 3, 4), f32)], {"perm": (2, 0, 1)})],
    ops.BROADCAST_TO: [([T((3, 1), f32)], {"shape": (2, 3, 4)})],
    ops.EXPAND_DIMS: [([T((2, 3), f32)], {"axes": (0, 3)})],
    ops.SQUEEZE: [([T((1, 3, 1), i64)], {"axes": (0, 2)})],
    ops.SLICE: [([T((5, 6), f32)], {"starts": (1, 0), "limits": (4, 6), "strides": (2, 3)})],
    ops.REVERSE: [([T((2, 3), u8)], {"axes": (1,)})],
    ops.CONCAT: [([T((2, 3), f32), T((4, 3), f32)], {"axis": 0}), ([T((1,), b1)], {"axis": 0})],
    ops.STACK: [([T((2,), f32)] * 3, {"axis": 1})],
    ops.PAD: [([T((2, 3), f32), T((), f32)], {"low": (1, 0), "high": (0, 2)})],
    ops.TILE: [([T((2, 3), i32)], {"reps": (2, 1)})],
    ops.SCATTER_ADD: [([T((5, 3), f32), T((2, 2), i32), T((2, 2, 3), f32)], {"axis": 0}),
                    ([T((4, 6), f64), T((3,), i64), T((4, 3), f64)], {"axis": 1})],
    ops.GATHER: [([T((5, 3), f32), T((2, 2), i32)], {"axis": 0}),
               ([T((4,), bf16), T((), i64)], {"axis": 0})],
    ops.ONE_HOT: [([T((3,), i32), T((), f32), T((), f32)], {"depth": 4, "dtype": f32}),
                ([T((2, 2), u8), T((), b1), T((), b1)], {"depth": 3, "axis": 0,
                                                         "dtype": b1})],
    # scans and sorting (ops_cumulative.py, ops_sort.py)
    ops.CUMSUM: [([T((2, 3), f32)], {"axis": 1}),
               ([T((3, 2, 4), i32)], {"axis": 0, "exclusive": True, "reverse": True}),
               ([T((5,), bf16)], {"axis": 0, "reverse": True})],
    ops.CUMPROD: [([T((2, 3), f64)], {"axis": 0, "exclusive": True}),
                ([T((4,), i8)], {"axis": 0})],
    ops.TOP_K: [([T((2, 5), f32)], {"k": 3}), ([T((3,), u8)], {"k": 3, "descending": False}),
              ([T((2, 2, 4), f16)], {"k": 0})],
    # linalg
    ops.MATMUL: [([T((2, 3), f32), T((3, 4), f32)], {}),
               ([T((5, 1, 2, 3), bf16), T((4, 3, 2), bf16)], {}),
               ([T((3, 2), f32), T((4, 3), f32)], {"transpose_a": True, "transpose_b": True}),
               ([T((2, 3, 5), f64), T((3, 4), f64)], {"transpose_a": True}),
               ([T((5, 3), f64), T((4, 3), f64)], {"transpose_b": True})],
    ops.INT8_MATMUL: [([T((5, 7), i8), T((7, 3), i8)], {}),
                    ([T((2, 6, 3), u8), T((4, 6), u8)], {"transpose_a": True,
                                                         "transpose_b": True})],
    # creation
    ops.CONSTANT: [([], {"value": ConstValue(np.arange(6, dtype=np.float32).reshape(2, 3))}),
                 ([], {"value": ConstValue(np.array(True))})],
    ops.IOTA: [([], {"shape": (2, 3), "dimension": 1, "dtype": i32})],
    ops.FILL: [([], {"shape": (2, 2), "value": 1.5, "dtype": f16}),
             ([], {"shape": (), "value": -3, "dtype": i8})],
    # random
    ops.RANDOM_BITS: [([T((2,), i32)], {"shape": (3, 4)})],
    # convolution and pooling (ops_nn.py): NHWC images, HWIO filters
    ops.CONV2D: [([T((2, 5, 6, 3), f32), T((3, 3, 3, 4), f32)],
                {"strides": (2, 1), "pads": (1, 1, 0, 2), "dilations": (1, 2)}),
               ([T((1, 4, 4, 2), bf16), T((2, 2, 2, 3), bf16)], {})],
    ops.INT8_CONV2D: [([T((2, 5, 6, 3), i8), T((3, 3, 3, 4), i8)],
                     {"strides": (2, 1), "pads": (1, 1, 0, 2), "dilations": (1, 2),
                      "pad_value": -7}),
                    ([T((1, 4, 4, 2), u8), T((2, 2, 2, 3), u8)], {"pads": (1, 0, 0, 1),
                                                                  "pad_value": 200})],
    ops.CONV2D_BACKPROP_INPUT: [([T((2, 3, 4, 4), f32), T((3, 3, 3, 4), f32)],
                               {"input_shape": (2, 5, 6, 3), "strides": (2, 1),
                                "pads": (1, 1, 0, 2), "dilations": (1, 2)})],
    ops.CONV2D_BACKPROP_FILTER: [([T((2, 5, 6, 3), f32), T((2, 3, 4, 4), f32)],
                                {"filter_shape": (3, 3, 3, 4), "strides": (2, 1),
                                 "pads": (1, 1, 0, 2), "dilations": (1, 2)})],
    ops.MAX_POOL2D: [([T((2, 5, 5, 3), f32)], {"ksize": (2, 2), "strides": (2, 2),
                                             "pads": (0, 1, 0, 1)}),
                   ([T((1, 4, 4, 1), f16)], {"ksize": (3, 2)})],
    ops.MAX_POOL2D_BACKPROP: [([T((2, 5, 5, 3), f32), T((2, 3, 3, 3), f32)],
                             {"ksize": (2, 2), "strides": (2, 2), "pads": (0, 1, 0, 1)})],
    ops.MAX_POOL2D_SELECT: [([T((2, 5, 4, 3), f32)] * 2,
                           {"ksize": (3, 2), "strides": (2, 1), "pads": (1, 1, 0, 0)})],
    ops.AVG_POOL2D: [([T((2, 5, 5, 3), f32)], {"ksize": (3, 3), "strides": (2, 2),
                                             "pads": (1, 1, 1, 1)})],
    ops.AVG_POOL2D_BACKPROP: [([T((2, 3, 3, 3), f32)],
                             {"input_shape": (2, 5, 5, 3), "ksize": (3, 3), "strides": (2, 2),
                              "pads": (1, 1, 1, 1)})],
    # host_callback (ops_host.py): a function registered here, doing nothing
    ops.HOST_CALLBACK: [([T((2, 3), f32), T((), i32), T((2,), b1)],
                         {"callback": register_host_callback(lambda *arrays: None)}),
                        ([T((4,), bf16)], {"callback": register_host_callback(print)})],
    # autodiff (declared in ops_autodiff.py): inputs are xs then ys; outputs equal ys
    ops.CUSTOM_VJP: [([T((3,), f32), T((2, 3), f32)], {"num_outputs": 1, "rule": 1})],
})


def _kernel_examples() -> list[Example]:
    """``kernel`` (declared in ops_kernel.py) wraps a body graph; two tiny bodies."""
    if "kernel" not in OPS:
        return []
    inner = GraphBuilder("fused_exp")
    x = inner.add_input(T((3,), f32))
    elementwise = inner.build([inner.emit1(ops.NEG, [inner.emit1(ops.EXP, [x])])],
                              stage="body")
    inner = GraphBuilder("fused_sum")
    a, b = inner.add_input(T((2, 3), f32)), inner.add_input(T((2, 3), f32))
    total = inner.emit1(ops.SUM, [inner.emit1(ops.MUL, [a, b])], {"axes": (1,)})
    reduction = inner.build([total], stage="body")
    return [([T((3,), f32)], {"body": elementwise, "kind": "elementwise"}),
            ([T((2, 3), f32)] * 2, {"body": reduction, "kind": "reduction"})]


OP_EXAMPLES[ops.KERNEL] = _kernel_examples()
if not OP_EXAMPLES[ops.KERNEL]:
    del OP_EXAMPLES[ops.KERNEL]


def _region(name, types, body):
    b = GraphBuilder(name)
    ins = [b.add_input(t) for t in types]
    return b.build(list(body(b, *ins)), stage="region")


def control_examples(dtype=f32) -> dict:
    """cond, while_loop and scan (ops_control.py) over small regions of ``dtype``."""
    f32, np_float = dtype, dtype.np_dtype     # noqa: F841 (the regions' float type)
    v = T((3,), f32)
    add = _region("add", [v, v], lambda b, x, y: [b.emit1(ops.ADD, [x, y])])
    mul = _region("mul", [v, v], lambda b, x, y: [b.emit1(ops.MUL, [x, y])])
    sub = _region("sub", [v, v], lambda b, x, y: [b.emit1(ops.SUB, [x, y])])

    def const(b, value, dtype):
        return b.emit1(ops.CONSTANT, [], {"value": ConstValue(np.asarray(value, dtype))})

    # NOTE: one output each (the table's tests read one result); the loops' tests
    # (tests/ir/test_control_flow.py) cover several carried values and outputs.
    # while max(x) < 10: x = x + |y| + 1   (y is a loop invariant)
    below = _region("below", [v, v], lambda b, x, y: [
        b.emit1(ops.LESS, [b.emit1(ops.MAX, [x], {"axes": (0,)}), const(b, 10, np_float)])])
    step = _region("step", [v, v], lambda b, x, y: [
        b.emit1(ops.ADD, [b.emit1(ops.ADD, [x, b.emit1(ops.ABS, [y])]),
                          const(b, 1, np_float)])])
    # c' = c * x[i] + w
    cell = _region("cell", [T((), i32), v, v, v], lambda b, i, c, x, w: [
        b.emit1(ops.ADD, [b.emit1(ops.MUL, [c, x]), w])])
    # y[i] = x[i] * w + i
    stack = _region("stack", [T((), i32), v, v], lambda b, i, x, w: [
        b.emit1(ops.ADD, [b.emit1(ops.MUL, [x, w]), b.emit1(ops.CAST, [i], {"dtype": f32})])])
    return {
        ops.COND: [([T((), b1), v, v], {"branches": (add, mul)}),
                   ([T((), i32), v, v], {"branches": (add, mul, sub)})],
        ops.WHILE_LOOP: [([v, v], {"cond": below, "body": step, "num_carried": 1}),
                         ([v, v], {"cond": below, "body": step, "num_carried": 1,
                                   "max_trips": 2})],
        ops.SCAN: [([v, T((4, 3), f32), v], {"body": cell, "length": 4, "num_carried": 1,
                                             "num_xs": 1}),
                   ([T((2, 3), f32), v], {"body": stack, "length": 2, "num_carried": 0,
                                          "num_xs": 1, "reverse": True})],
    }


OP_EXAMPLES.update(control_examples())
BY_NAME: dict[str, list[Example]] = {op.name: examples for op, examples in OP_EXAMPLES.items()}


# ---- helpers for the op tests ------------------------------------------------------------

def random_array(rng: np.random.Generator, shape, dtype, *, low: float = -5.0,
                 high: float = 5.0, specials: bool = False, wide: bool = False) -> np.ndarray:
    """Values of ``dtype``: integers span the whole range of 8-bit types (of every type
    if ``wide``), else [-1000, 1000]; floats are uniform in [low, high), with NaN,
    infinities and signed zeros mixed in if ``specials``."""
    dtype = dt.as_dtype(dtype)
    shape = tuple(shape)
    if dtype.is_bool:
        return rng.random(shape) < 0.5
    if dtype.is_integer:
        info = np.iinfo(dtype.np_dtype)
        lo, hi = (info.min, info.max) if dtype.bits <= 8 or wide else (-1000, 1000)
        return rng.integers(max(lo, info.min), hi, size=shape, endpoint=True,
                            dtype=np.int64).astype(dtype.np_dtype)
    x = rng.uniform(low, high, size=shape)
    if specials and x.size:
        picks = rng.random(shape) < 0.15
        x[picks] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0], size=int(picks.sum()))
    with np.errstate(over="ignore"):    # 1e20 in float16 is inf, on purpose
        return x.astype(dtype.np_dtype)


def run_op(op: OpDef, args, params=None):
    """Evaluate a one-equation graph ``op(*args)`` with the reference interpreter, checking
    the result's shape and dtype against the op's shape rule. An op with several outputs
    (top_k) gives a tuple of them."""
    builder = GraphBuilder()
    arrays = [np.asarray(a) for a in args]
    ins = [builder.add_input(T(a.shape, a.dtype)) for a in arrays]
    outs = builder.emit(op, ins, params or {})
    results = interpret(builder.build(list(outs)), arrays, check=True)
    return results[0] if len(results) == 1 else tuple(results)


def infer(op: OpDef, types, params=None) -> TensorType:
    """The output type of ``op`` on ``types`` through GraphBuilder (which raises on misuse)."""
    builder = GraphBuilder()
    ins = [builder.add_input(t) for t in types]
    return builder.emit1(op, ins, params or {}).type


TOLERANCE = {dt.float16: 1e-2, dt.bfloat16: 2e-2, dt.float32: 1e-5, dt.float64: 1e-12}


def assert_close(actual: np.ndarray, expected, dtype, *, atol: float | np.ndarray = 0.0):
    """Compare a result of ``dtype`` with a float64 (or exact) expectation.

    The expectation is first rounded to ``dtype``, so both sides overflow to inf alike.
    Integers and bools must match exactly; NaNs must sit in the same places."""
    dtype = dt.as_dtype(dtype)
    assert actual.dtype == dtype.np_dtype, (actual.dtype, dtype)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if not dtype.is_float:
        np.testing.assert_array_equal(actual, expected.astype(dtype.np_dtype))
        return
    with np.errstate(all="ignore"):
        want = expected.astype(dtype.np_dtype).astype(np.float64)
        got = actual.astype(np.float64)
        # NOTE: by hand rather than assert_allclose, which rejects an array atol.
        ok = (got == want) | (np.isnan(got) & np.isnan(want)) \
            | (np.abs(got - want) <= atol + TOLERANCE[dtype] * np.abs(want))
    if not ok.all():
        raise AssertionError(f"{int((~ok).sum())} of {ok.size} {dtype.name} values differ; "
                             f"first: got {got[~ok][:5]}, expected {want[~ok][:5]}")


def assert_same_bits(actual: np.ndarray, expected: np.ndarray) -> None:
    """Exact equality of dtype, shape and every bit (movement ops must not touch values)."""
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.tobytes() == np.ascontiguousarray(expected).tobytes()
