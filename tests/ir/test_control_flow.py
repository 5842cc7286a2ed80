"""The control-flow ops in the IR: shape rules and their errors, the reference meaning,
the text form of nested regions, the verifier, and graph equality through regions."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ir.op_examples import T, b1, f32, i32
from tracejit.ir import GraphBuilder, interpret, ops
from tracejit.ir.const_value import ConstValue
from tracejit.ir.errors import ShapeError, VerifyError
from tracejit.ir.parser import parse_graph
from tracejit.ir.printer import print_graph
from tracejit.ir.verifier import verify


def region(name, types, body):
    b = GraphBuilder(name)
    ins = [b.add_input(t) for t in types]
    return b.build(list(body(b, *ins)), stage="region")


def const(b, value, dtype):
    return b.emit1(ops.CONSTANT, [], {"value": ConstValue(np.asarray(value, dtype))})


V = T((3,), f32)
ADD = region("add", [V, V], lambda b, x, y: [b.emit1(ops.ADD, [x, y])])
MUL = region("mul", [V, V], lambda b, x, y: [b.emit1(ops.MUL, [x, y])])
SUB = region("sub", [V, V], lambda b, x, y: [b.emit1(ops.SUB, [x, y])])
# while n < 10: n += 1; x = x * 0.5 + y
BELOW = region("below", [T((), i32), V, V], lambda b, n, x, y: [
    b.emit1(ops.LESS, [n, const(b, 10, np.int32)])])
STEP = region("step", [T((), i32), V, V], lambda b, n, x, y: [
    b.emit1(ops.ADD, [n, const(b, 1, np.int32)]),
    b.emit1(ops.ADD, [b.emit1(ops.MUL, [x, const(b, 0.5, np.float32)]), y])])
# c' = c + x[i];  y[i] = c * i
CELL = region("cell", [T((), i32), V, V], lambda b, i, c, x: [
    b.emit1(ops.ADD, [c, x]), b.emit1(ops.MUL, [c, b.emit1(ops.CAST, [i], {"dtype": f32})])])


def one(op, types, params, args):
    b = GraphBuilder()
    ins = [b.add_input(t) for t in types]
    g = b.build(list(b.emit(op, ins, params)))
    verify(g)
    return g, interpret(g, args, check=True)


def test_cond_runs_the_selected_branch_and_clamps_integer_indices():
    x, y = np.array([1, 2, 3], np.float32), np.array([4, 5, 6], np.float32)
    for pred, want in ((True, x * y), (False, x + y)):
        _, (out,) = one(ops.COND, [T((), b1), V, V], {"branches": (ADD, MUL)},
                        [np.bool_(pred), x, y])
        np.testing.assert_array_equal(out, want)
    for index, want in ((-3, x + y), (1, x * y), (2, x - y), (9, x - y)):
        _, (out,) = one(ops.COND, [T((), i32), V, V], {"branches": (ADD, MUL, SUB)},
                        [np.int32(index), x, y])
        np.testing.assert_array_equal(out, want)


def test_while_loop_carries_several_values_and_reads_invariants():
    x, y = np.ones(3, np.float32), np.array([1, 2, 3], np.float32)
    _, (n, out) = one(ops.WHILE_LOOP, [T((), i32), V, V],
                      {"cond": BELOW, "body": STEP, "num_carried": 2}, [np.int32(4), x, y])
    want = x
    for _ in range(6):
        want = want * np.float32(0.5) + y
    assert n == 10
    np.testing.assert_allclose(out, want, rtol=1e-6)
    # a condition false at once runs no iteration
    _, (n, out) = one(ops.WHILE_LOOP, [T((), i32), V, V],
                      {"cond": BELOW, "body": STEP, "num_carried": 2}, [np.int32(50), x, y])
    assert n == 50 and (out == x).all()


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_stacks_per_iteration_outputs_in_position(reverse):
    xs = np.arange(12, dtype=np.float32).reshape(4, 3)
    _, (c, ys) = one(ops.SCAN, [V, T((4, 3), f32)],
                     {"body": CELL, "length": 4, "num_carried": 1, "num_xs": 1,
                      "reverse": reverse}, [np.zeros(3, np.float32), xs])
    carry, want = np.zeros(3, np.float32), np.zeros((4, 3), np.float32)
    for i in (range(3, -1, -1) if reverse else range(4)):
        want[i] = carry * i
        carry = carry + xs[i]
    np.testing.assert_array_equal(c, carry)
    np.testing.assert_array_equal(ys, want)


def test_shape_rules_name_what_is_wrong():
    b = GraphBuilder()
    n, x = b.add_input(T((), i32)), b.add_input(V)
    wide = b.add_input(T((4,), f32))
    with pytest.raises(ShapeError, match="branch 1 returns"):
        bad = region("bad", [V, V], lambda b, x, y: [b.emit1(ops.SUM, [x], {"axes": (0,)})])
        b.emit(ops.COND, [b.add_input(T((), b1)), x, x], {"branches": (ADD, bad)})
    with pytest.raises(ShapeError, match="scalar"):
        b.emit(ops.COND, [x, x, x], {"branches": (ADD, MUL)})
    grow = region("grow", [T((), i32), V, V], lambda b, n, x, y: [
        n, b.emit1(ops.CONCAT, [x, const(b, [1.0], np.float32)], {"axis": 0})])
    with pytest.raises(ShapeError, match=r"carried value 1 is f32\[3\] before the body and "
                                         r"f32\[4\] after it"):
        b.emit(ops.WHILE_LOOP, [n, x, x], {"cond": BELOW, "body": grow, "num_carried": 2})
    with pytest.raises(ShapeError, match=r"takes \(i32\[\], f32\[3\], f32\[3\]\) but is given"):
        b.emit(ops.WHILE_LOOP, [n, wide, x], {"cond": BELOW, "body": STEP, "num_carried": 2})
    with pytest.raises(ShapeError, match="leading axis must be the scan length 5"):
        b.emit(ops.SCAN, [x, b.add_input(T((4, 3), f32))],
               {"body": CELL, "length": 5, "num_carried": 1, "num_xs": 1})


def test_nested_regions_print_parse_and_compare_structurally():
    inner = region("inner", [T((), i32), V, V], lambda b, n, x, y: b.emit(
        ops.WHILE_LOOP, [n, x, y], {"cond": BELOW, "body": STEP, "num_carried": 2}))
    outer_b = GraphBuilder("outer")
    p, n, x, y = (outer_b.add_input(t) for t in (T((), b1), T((), i32), V, V))
    keep = region("keep", [T((), i32), V, V], lambda b, n, x, y: [n, x])
    outs = outer_b.emit(ops.COND, [p, n, x, y], {"branches": (keep, inner)})
    g = outer_b.build(list(outs))
    verify(g)
    text = print_graph(g)
    assert "func inner(" in text and "func below(" in text and text.count("{") >= 5
    again = parse_graph(text)
    assert again == g and hash(again) == hash(g) and print_graph(again) == text
    args = [np.bool_(True), np.int32(7), np.ones(3, np.float32), np.ones(3, np.float32)]
    for got, want in zip(interpret(again, args), interpret(g, args), strict=True):
        np.testing.assert_array_equal(got, want)
    # equality looks inside regions: another constant in the innermost body differs
    other = parse_graph(text.replace("[10]", "[11]"))
    assert other != g


def test_verifier_checks_inside_regions():
    broken = region("broken", [V, V], lambda b, x, y: [b.emit1(ops.ADD, [x, y])])
    # re-type the region's output behind the builder's back
    out = broken.outputs[0]
    out.type = T((4,), f32)
    b = GraphBuilder()
    x = b.add_input(V)
    g = b.build([x])
    from tracejit.ir.core import Eqn, Graph, Params
    bad = Graph(g.inputs, [Eqn(ops.COND, (b.add_input(T((), b1)), x, x), (b.add_input(V),),
                               Params({"branches": (ADD, broken)}))], g.outputs)
    with pytest.raises(VerifyError):
        verify(bad)
