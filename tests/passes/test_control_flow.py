"""Passes on graphs with control flow: every pass reaches into regions, a constant branch
index inlines its branch, loops are never folded whole, loop-invariant code moves out;
each change is checked for the same values before and after."""

from __future__ import annotations

import numpy as np

from tests.ir.op_examples import T, b1, f32, i32
from tests.ir.test_control_flow import ADD, MUL, const, region
from tracejit.codegen_cpu.pipeline import CPU_PASSES
from tracejit.ir import GraphBuilder, interpret, ops
from tracejit.ir.verifier import verify
from tracejit.passes import optimize
from tracejit.passes.fold import fold_constants
from tracejit.passes.hoist import hoist_loop_invariants

V = T((3,), f32)


def same_values(before, after, args):
    verify(after)
    for got, want in zip(interpret(after, args), interpret(before, args), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def names(graph):
    return [e.op.name for e in graph.eqns]


def test_a_cond_on_a_constant_index_becomes_its_branch():
    b = GraphBuilder()
    x, y = b.add_input(V), b.add_input(V)
    (out,) = b.emit(ops.COND, [const(b, True, np.bool_), x, y], {"branches": (ADD, MUL)})
    g = b.build([out])
    folded = fold_constants(g)
    assert "cond" not in names(folded) and "mul" in names(folded)
    same_values(g, folded, [np.arange(3, dtype=np.float32), np.full(3, 2, np.float32)])
    # a branch that returns an operand as it is: the output is that operand
    keep = region("keep", [V, V], lambda b, x, y: [y])
    b = GraphBuilder()
    x, y = b.add_input(V), b.add_input(V)
    (out,) = b.emit(ops.COND, [const(b, 7, np.int32), x, y], {"branches": (ADD, keep)})
    g = optimize(b.build([out]))
    assert g.outputs[0] is g.inputs[1]


def test_loops_are_not_folded_whole_even_on_constants():
    body = region("double", [T((), i32), V], lambda b, i, c: [b.emit1(ops.ADD, [c, c])])
    b = GraphBuilder()
    (out,) = b.emit(ops.SCAN, [const(b, np.ones(3), np.float32)],
                    {"body": body, "length": 3, "num_carried": 1})
    g = optimize(b.build([out]))
    assert "scan" in names(g)
    np.testing.assert_array_equal(interpret(g, [])[0], np.full(3, 8, np.float32))


def test_every_pass_reaches_into_regions():
    def messy(b, i, c, w):
        dead = b.emit1(ops.EXP, [c])                         # noqa: F841 (dead code)
        one = b.emit1(ops.MUL, [const(b, 2.0, np.float32), const(b, 0.5, np.float32)])
        a1 = b.emit1(ops.ADD, [c, w])
        a2 = b.emit1(ops.ADD, [c, w])                        # a common subexpression
        return [b.emit1(ops.MUL, [b.emit1(ops.MUL, [a1, a2]), one])]
    body = region("messy", [T((), i32), V, V], messy)
    b = GraphBuilder()
    c, w = b.add_input(V), b.add_input(V)
    (out,) = b.emit(ops.SCAN, [c, w], {"body": body, "length": 2, "num_carried": 1})
    g = b.build([out])
    opt = optimize(g)
    inner = opt.eqns[-1].params["body"]
    assert sorted(names(inner)) == ["add", "mul"]
    same_values(g, opt, [np.full(3, 0.1, np.float32), np.full(3, 0.2, np.float32)])
    fused = optimize(g, device_passes=CPU_PASSES)
    assert names(fused.eqns[-1].params["body"]) == ["kernel"]


def test_loop_invariant_code_moves_out_of_both_regions():
    # while n < 4: n += 1; x = x + exp(w) * 2   (exp(w) * 2 is invariant)
    def step(b, n, x, w):
        scaled = b.emit1(ops.MUL, [b.emit1(ops.EXP, [w]), const(b, 2.0, np.float32)])
        return [b.emit1(ops.ADD, [n, const(b, 1, np.int32)]), b.emit1(ops.ADD, [x, scaled])]

    def test(b, n, x, w):
        limit = b.emit1(ops.CAST, [b.emit1(ops.SUM, [w], {"axes": (0,)})], {"dtype": i32})
        return [b.emit1(ops.LESS, [n, limit])]
    body = region("step", [T((), i32), V, V], step)
    cond = region("test", [T((), i32), V, V], test)
    b = GraphBuilder()
    n, x, w = b.add_input(T((), i32)), b.add_input(V), b.add_input(V)
    outs = b.emit(ops.WHILE_LOOP, [n, x, w], {"cond": cond, "body": body, "num_carried": 2})
    g = b.build(list(outs))
    hoisted = hoist_loop_invariants(g)
    assert set(names(hoisted)[:-1]) == {"exp", "constant", "mul", "sum", "cast"}
    loop = hoisted.eqns[-1]
    assert [n for n in names(loop.params["body"]) if n != "constant"] == ["add", "add"]
    assert "exp" not in names(loop.params["body"]) and "sum" not in names(loop.params["cond"])
    same_values(g, hoisted, [np.int32(0), np.zeros(3, np.float32),
                             np.array([0.5, 1.0, 1.5], np.float32)])
    assert optimize(g) == optimize(hoisted)


def test_hoisting_climbs_out_of_nested_loops():
    def inner_body(b, i, c, w):
        return [b.emit1(ops.ADD, [c, b.emit1(ops.TANH, [w])])]
    inner = region("inner", [T((), i32), V, V], inner_body)

    def outer_body(b, i, c, w):
        return b.emit(ops.SCAN, [c, w], {"body": inner, "length": 2, "num_carried": 1})
    outer = region("outer", [T((), i32), V, V], outer_body)
    b = GraphBuilder()
    c, w = b.add_input(V), b.add_input(V)
    (out,) = b.emit(ops.SCAN, [c, w], {"body": outer, "length": 3, "num_carried": 1})
    g = b.build([out])
    opt = optimize(g)
    assert names(opt) == ["tanh", "scan"]
    same_values(g, opt, [np.zeros(3, np.float32), np.array([0.1, 0.2, 0.3], np.float32)])


def test_the_cond_gradient_keeps_the_untaken_branch_out_of_the_forward():
    b = GraphBuilder()
    p, x = b.add_input(T((), b1)), b.add_input(V)
    double = region("double", [V], lambda b, x: [b.emit1(ops.ADD, [x, x])])
    square = region("square", [V], lambda b, x: [b.emit1(ops.MUL, [x, x])])
    (out,) = b.emit(ops.COND, [p, x], {"branches": (double, square)})
    g = optimize(b.build([out]))
    assert names(g) == ["cond"]


def test_a_product_with_an_invariant_transposed_matrix_reads_a_copy_made_once():
    def step(b, i, c, w):
        return [b.emit1(ops.TANH, [b.emit1(ops.MATMUL, [c, w], {"transpose_b": True})])]
    body = region("cell", [T((), i32), T((2, 4), f32), T((4, 4), f32)], step)
    b = GraphBuilder()
    c, w = b.add_input(T((2, 4), f32)), b.add_input(T((4, 4), f32))
    (out,) = b.emit(ops.SCAN, [c, w], {"body": body, "length": 3, "num_carried": 1})
    g = b.build([out])
    opt = optimize(g)
    assert names(opt) == ["transpose", "scan"]
    inner = [e for e in opt.eqns[-1].params["body"].eqns if e.op is ops.MATMUL]
    assert len(inner) == 1 and not inner[0].params["transpose_b"]
    rng = np.random.default_rng(0)
    same_values(g, opt, [rng.standard_normal((2, 4)).astype(np.float32),
                         rng.standard_normal((4, 4)).astype(np.float32)])
