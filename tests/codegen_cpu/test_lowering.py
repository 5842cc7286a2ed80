"""Every op of the table, lowered alone, JIT-compiled and run against its reference.

For each op: the examples of tests/ir/op_examples.py plus awkward shapes (size 0 and 1,
primes, size-1 broadcasts, more than one vector of elements) in every dtype the op
accepts. Integers, bools and movement ops must match exactly (movement bit for bit);
floats within a few units in the last place (transcendentals) or exactly (IEEE
arithmetic, which the kernels compute in the same order as NumPy).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.ir.op_examples import BY_NAME
from tracejit.codegen_cpu.kernels.table import supports
from tracejit.ir import OPS
from tracejit.ir import dtypes as dt
from tracejit.ir.const_value import ConstValue
from tracejit.ir.core import TensorType
from tracejit.ir.errors import TracejitError
from tracejit.ir.opdef import Tag

from .compare import assert_matches
from .lowering_util import EPS, Compiled, index_input, one_eqn, random_input, reference, same_bits

T = TensorType
f16, bf16, f32, f64 = dt.float16, dt.bfloat16, dt.float32, dt.float64
i8, u8, i32, i64, b1 = dt.int8, dt.uint8, dt.int32, dt.int64, dt.bool_

TRANSCENDENTAL_ULPS = 4
EXACT_COPIES = {"reshape", "transpose", "broadcast_to", "expand_dims", "squeeze", "slice",
                "reverse", "concat", "stack", "pad", "tile", "gather", "one_hot", "constant",
                "iota", "fill", "random_bits", "custom_vjp", "stop_gradient"}
UNARY_SHAPES = [(), (0,), (1,), (67,), (3, 5)]
BINARY_SHAPES = [((), ()), ((67,), (67,)), ((3, 1), (1, 7)), ((2, 3, 5), (5,)), ((0, 3), (1, 3))]


def _accepts(name: str, types, params=None) -> bool:
    try:
        one_eqn(name, types, params)
        return True
    except (TracejitError, TypeError, ValueError):
        return False


def _elementwise_cases(name: str):
    op = OPS[name]
    cases = []
    if name in ("select", "clip", "cast"):
        return cases
    for dtype in dt.ALL_DTYPES:
        if op.has(Tag.UNARY):
            shapes = UNARY_SHAPES if dtype in (f32, i32) else UNARY_SHAPES[::2]
            cases += [([T(s, dtype)], {}) for s in shapes]
        else:
            shapes = BINARY_SHAPES if dtype in (f32, i32) else BINARY_SHAPES[1:4]
            cases += [([T(a, dtype), T(b, dtype)], {}) for a, b in shapes]
    return [c for c in cases if _accepts(name, *c)]


def _extra_cases(name: str):
    """Awkward shapes and dtypes beyond OP_EXAMPLES."""
    if OPS[name].has(Tag.ELEMENTWISE):
        cases = _elementwise_cases(name)
        if name == "cast":
            cases = [([T((7, 3), a)], {"dtype": b}) for a in dt.ALL_DTYPES
                     for b in dt.ALL_DTYPES]
        elif name == "select":
            cases = [([T((3, 1), b1), T((1, 67), d), T((), d)], {})
                     for d in (f32, f16, bf16, i8, i64, b1, f64)]
        elif name == "clip":
            cases = [([T((67,), d), T((), d), T((67,), d)], {}) for d in (f32, i32, u8, bf16)]
        return cases
    if name in ("sum", "prod", "max", "min", "mean", "any", "all"):
        shapes = [((7, 13), (0,)), ((7, 13), (1,)), ((2, 3, 5), (0, 2)), ((1000,), (0,)),
                  ((4, 1), (1,)), ((0, 3), (0,)), ((3, 0), (1,)), ((5, 300), (0,)),
                  ((3, 4), ()), ((2, 67, 3), (1,))]
        dtypes = {"any": [b1], "all": [b1], "mean": [f32, f64, f16, bf16]}.get(
            name, [f32, f64, i8, u8, i32, i64, bf16, f16, b1])
        cases = [([T(s, d)], {"axes": a, "keepdims": k}) for s, a in shapes for d in dtypes
                 for k in (False, True) if (s != (5, 300) or d in (f32, i32)) and k == (
                     len(s) == 2)]
        return [c for c in cases if _accepts(name, *c)]
    if name in ("argmax", "argmin"):
        return [([T(s, d)], {"axis": a, "index_dtype": it})
                for s, a in [((7, 13), 0), ((7, 13), 1), ((1,), 0), ((5, 300), 0)]
                for d, it in [(f32, i64), (i8, i32), (u8, i64), (b1, i32), (bf16, i64),
                              (f64, i32)]]
    if name == "matmul":
        flags = [([T((3, 70, 50), d), T((70, 40), d)], {"transpose_a": True})
                 for d in (f32, i32)]
        flags += [([T((2, 50, 60), d), T((2, 33, 50), d)],
                   {"transpose_a": True, "transpose_b": True}) for d in (f64, bf16)]
        flags += [([T((5, 7), i8), T((3, 7), i8)], {"transpose_b": True}),
                  ([T((50, 70), f32), T((90, 70), f32)], {"transpose_b": True})]
        return flags + [([T(a, d), T(b, d)], {}) for a, b in
                [((1, 1), (1, 1)), ((7, 13), (13, 5)), ((3, 0), (0, 4)), ((0, 3), (3, 4)),
                 ((2, 40, 50), (50, 33)), ((2, 1, 3, 4), (5, 4, 6)), ((40, 50), (3, 50, 60))]
                for d in (f32, f64, i32, i8, f16, bf16)
                if d in (f32, f64) or a[-1] * b[-1] < 1000]
    return []


def _movement_cases(name: str):
    extra = {
        "transpose": [([T((3, 5, 7), u8)], {"perm": (2, 1, 0)}),
                      ([T((0, 4), f32)], {"perm": (1, 0)}),
                      ([T((67, 65), f32)], {"perm": (1, 0)})],
        "reshape": [([T((6, 4), i64)], {"shape": (4, 6)}), ([T((3, 67), f16)], {"shape": (201,)}),
                    ([T((2, 3, 4), f32)], {"shape": (4, 3, 2)})],
        "broadcast_to": [([T((1,), b1)], {"shape": (67,)}),
                         ([T((5, 1), bf16)], {"shape": (2, 5, 3)})],
        "slice": [([T((10, 9), i32)], {"starts": (9, 1), "limits": (10, 9), "strides": (3, 4)}),
                  ([T((70,), f32)], {"starts": (0,), "limits": (70,), "strides": (1,)})],
        "reverse": [([T((67, 3), f64)], {"axes": (0, 1)})],
        "tile": [([T((3, 1), f32)], {"reps": (2, 67)}), ([T((5,), i8)], {"reps": (0,)})],
        "concat": [([T((3, 0), f32), T((3, 5), f32), T((3, 1), f32)], {"axis": 1})],
        "stack": [([T((), i64)] * 2, {"axis": 0}), ([T((3, 4), f16)] * 2, {"axis": 2})],
        "pad": [([T((3, 5), bf16), T((), bf16)], {"low": (0, 0), "high": (0, 0)}),
                ([T((0, 2), i32), T((), i32)], {"low": (1, 2), "high": (3, 0)})],
        "gather": [([T((7, 5), f64), T((4,), i8)], {"axis": 1}),
                   ([T((3, 4, 5), u8), T((2, 3), i64)], {"axis": 1})],
        "scatter_add": [([T((6,), i32), T((10,), i32), T((10,), i32)], {"axis": 0}),
                        ([T((3, 4), f16), T((5,), i64), T((3, 5), f16)], {"axis": 1}),
                        ([T((4, 67), f32), T((9,), u8), T((9, 67), f32)], {"axis": 0})],
        "one_hot": [([T((2, 3), i64), T((), i8), T((), i8)], {"depth": 5, "dtype": i8,
                                                             "axis": 1})],
        "iota": [([], {"shape": (300,), "dimension": 0, "dtype": i8}),
                 ([], {"shape": (3, 67), "dimension": 0, "dtype": bf16})],
        "fill": [([], {"shape": (67,), "value": float("nan"), "dtype": f32}),
                 ([], {"shape": (0, 3), "value": 1, "dtype": b1})],
        "constant": [([], {"value": ConstValue(np.arange(70, dtype=np.float16).reshape(7, 10))}),
                     ([], {"value": ConstValue(np.zeros((0,), np.int32))}),
                     ([], {"value": ConstValue(np.array([np.nan, -0.0, 1.0], np.float64))})],
        "random_bits": [([T((2,), i32)], {"shape": ()}), ([T((2,), i32)], {"shape": (0, 3)}),
                        ([T((2,), i32)], {"shape": (1000,)})],
        "custom_vjp": [([T((2,), f32), T((3,), i8), T((2, 2), bf16)],
                        {"num_outputs": 2, "rule": 1})],
        "conv2d": [([T((1, 4, 4, 3), d), T((1, 1, 3, 5), d)], {}) for d in (f32, f64, bf16)]
        + [([T((2, 7, 6, 2), f64), T((3, 2, 2, 3), f64)], {"strides": (2, 3), "pads": (2, 1, 0, 1),
                                                         "dilations": (2, 1)}),
           ([T((1, 9, 9, 1), f16), T((5, 5, 1, 4), f16)], {"pads": (2, 2, 2, 2)})],
        "conv2d_backprop_input": [([T((1, 4, 4, 5), d), T((1, 1, 3, 5), d)],
                                   {"input_shape": (1, 4, 4, 3)}) for d in (f32, f16)]
        + [([T((2, 5, 5, 4), f64), T((5, 5, 2, 4), f64)],
            {"input_shape": (2, 5, 5, 2), "pads": (2, 2, 2, 2)})],
        "conv2d_backprop_filter": [([T((1, 4, 4, 3), d), T((1, 4, 4, 5), d)],
                                    {"filter_shape": (1, 1, 3, 5)}) for d in (f32, bf16)]
        + [([T((2, 5, 5, 2), f64), T((2, 5, 5, 4), f64)],
            {"filter_shape": (5, 5, 2, 4), "pads": (2, 2, 2, 2)})],
        "max_pool2d": [([T((3, 7, 6, 67), d)], {"ksize": (3, 2), "strides": (2, 2),
                                                "pads": (1, 1, 0, 1)}) for d in (f32, f16, f64)],
        "avg_pool2d": [([T((3, 7, 6, 5), d)], {"ksize": (3, 2), "strides": (1, 2),
                                               "pads": (2, 0, 1, 0)}) for d in (f32, bf16)],
        "max_pool2d_select": [([T((2, 6, 6, 4), d)] * 2, {"ksize": (2, 2), "strides": (2, 2)})
                              for d in (f32, f64)],
        "max_pool2d_backprop": [([T((2, 6, 5, 4), d), T((2, 3, 3, 4), d)],
                                 {"ksize": (3, 3), "strides": (2, 2), "pads": (1, 1, 1, 1)})
                                for d in (f32, f16)],
        "avg_pool2d_backprop": [([T((2, 3, 3, 4), d)],
                                 {"input_shape": (2, 6, 5, 4), "ksize": (3, 3),
                                  "strides": (2, 2), "pads": (1, 1, 1, 1)})
                                for d in (f32, f64)],
    }
    return extra.get(name, [])


def cases(name: str):
    return list(BY_NAME.get(name, [])) + _extra_cases(name) + _movement_cases(name)


def _inputs(rng, eqn):
    name = eqn.op.name
    arrays = []
    for k, var in enumerate(eqn.ins):
        t = var.type
        if name == "gather" and k == 1:
            arrays.append(index_input(rng, t, eqn.ins[0].shape[eqn.params["axis"]]))
        elif name == "scatter_add" and k == 1:
            arrays.append(index_input(rng, t, eqn.ins[0].shape[eqn.params["axis"]]))
        elif name == "one_hot" and k == 0:
            arrays.append(index_input(rng, t, eqn.params["depth"]))
        elif name in ("matmul", "sum", "prod", "mean", "scatter_add") or name in ATOL_NN or (
                name == "kernel" and eqn.params["kind"] != "elementwise"):
            arrays.append(random_input(rng, t, specials=False, low=-2, high=2))
        elif name == "pow" and k == 1 and t.dtype.is_integer:
            arrays.append(random_input(rng, t) % 9 - 2)
        else:
            arrays.append(random_input(rng, t))
    return arrays


def _check(eqn, got, want, arrays):
    name = eqn.op.name
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        var = eqn.outs[k]
        what = f"{name} {[str(v.type) for v in eqn.ins]} {dict(eqn.params)} out {k}"
        dtype = var.dtype
        if name in EXACT_COPIES or not dtype.is_float:
            if name in EXACT_COPIES and not (name == "one_hot" and dtype.is_float):
                same_bits(g, w, what)
            else:
                assert_matches(g, w, dtype, what=what)
            continue
        ulps, atol = 0, 0.0
        if OPS[name].has(Tag.TRANSCENDENTAL):
            ulps = 1 if dtype.is_half else TRANSCENDENTAL_ULPS
        if name == "cast" and eqn.ins[0].dtype.is_integer and dtype is bf16:
            ulps = 1    # NOTE: ml_dtypes rounds int32/int64 via float32 (double rounding)
        if name in ("sum", "mean", "prod", "matmul", "kernel", "scatter_add") or name in ATOL_NN:
            ulps = 2
            mags = [np.abs(np.nan_to_num(a.astype(np.float64))) for a in arrays
                    if a.dtype.kind == "f" or a.dtype.itemsize == 2]
            scale = max((float(m.max()) for m in mags if m.size), default=1.0)
            n = max(1, arrays[0].size)
            atol = 4 * EPS[dtype] * n * max(scale, 1.0) ** 2
        assert_matches(g, w, dtype, ulps=ulps, atol=atol, what=what)


# NOTE: control-flow ops are not equations a kernel lowers: the program builder emits
# their branches and loops around their regions (tests/codegen_cpu/test_control_flow.py,
# and the conformance tests run their examples as programs).
OP_NAMES = sorted(name for name, op in OPS.items() if not op.has(Tag.CONTROL_FLOW))
# NOTE: blocked BLAS products (and col2im across blocks) may sum in another order than the
# reference's one big product, so these agree within rounding; pooling gradients add
# windows back in the reference's order and must match exactly.
ATOL_NN = {"conv2d", "conv2d_backprop_input", "conv2d_backprop_filter"}


@pytest.mark.parametrize("name", OP_NAMES)
def test_op_lowers_and_matches_reference(name):
    todo = cases(name)
    assert todo, f"no test cases for {name}"
    eqns = {}
    for i, (types, params) in enumerate(todo):
        eqn, _ = one_eqn(name, types, params)
        assert supports(eqn), f"{name} {types} unsupported"
        eqns[f"{name}_{i}"] = eqn
    compiled = Compiled(eqns)
    rng = np.random.default_rng(len(name))
    for fname, eqn in eqns.items():
        arrays = _inputs(rng, eqn)
        _check(eqn, compiled(fname, arrays), reference(eqn, arrays), arrays)


def test_every_op_of_the_table_has_a_cpu_lowering():
    """A rule keyed by the op (KERNEL_RULES), or a one-equation body of the elementwise
    or reduction kernel: never a gap that only shows when a program uses the op."""
    from tracejit.codegen_cpu.kernels.table import KERNEL_RULES, rule_kind
    from tracejit.ir.opdef import OpDef
    from tracejit.ir.ops import OPS

    missing = sorted(name for name, op in OPS.items() if rule_kind(op) is None)
    assert missing == []
    assert all(isinstance(op, OpDef) for op in KERNEL_RULES)
    kinds = {name: rule_kind(op) for name, op in OPS.items()}
    assert kinds["conv2d"] == kinds["gather"] == kinds["matmul"] == "rule"
    assert kinds["sum"] == "reduction" and kinds["tanh"] == "elementwise"
    assert kinds["scan"] == kinds["while_loop"] == kinds["cond"] == "region"


def test_kernel_body_roles_come_from_the_op_table():
    """Index maps and generators are tags of the op table; the CPU has an index rule for
    every op tagged INDEX_MAP, and fusion reads through the order-keeping ones only."""
    from tracejit.codegen_cpu.loops.body import INDEX_MAP_RULES, is_generator
    from tracejit.ir.opdef import Tag
    from tracejit.ir.ops import OPS
    from tracejit.passes.fusion_rules import fuses_as_index_map

    tagged = {op for op in OPS.values() if op.has(Tag.INDEX_MAP)}
    assert tagged == set(INDEX_MAP_RULES)
    fused = sorted(op.name for op in tagged if fuses_as_index_map(op))
    assert fused == ["broadcast_to", "expand_dims", "reshape", "squeeze"]
    generators = sorted(op.name for op in OPS.values() if is_generator(op))
    assert generators == ["constant", "fill", "iota", "random_bits"]
