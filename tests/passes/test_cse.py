"""eliminate_common_subexpressions: equal computations merge, effects never do."""

import numpy as np

from tracejit.ir import GraphBuilder, ops
from tracejit.ir.core import VarMeta
from tracejit.passes import eliminate_common_subexpressions as cse

from .util import assert_same_results, const, effect, emit, op_names, random_args, tensor


def test_merges_equal_computations_and_rewires_uses():
    b = GraphBuilder()
    x = b.add_input(tensor([3]))
    e1, e2 = emit(b, "exp", x), emit(b, "exp", x)
    g = b.build([emit(b, "sub", e1, e2), e2])
    merged = cse(g)
    assert op_names(merged) == ["exp", "sub"] and merged.stage == "eliminate_common_subexpressions"
    assert merged.outputs[1] is e1
    assert_same_results(g, merged, random_args(g))


def test_commutative_operands_in_either_order():
    b = GraphBuilder()
    x, y = b.add_input(tensor([3])), b.add_input(tensor([3]))
    g = b.build([emit(b, "mul", x, y), emit(b, "mul", y, x), emit(b, "sub", x, y),
                 emit(b, "sub", y, x)])
    assert op_names(cse(g)) == ["mul", "sub", "sub"]


def test_params_and_constants_compare_by_value():
    b = GraphBuilder()
    x = b.add_input(tensor([2, 3]))
    s0, s1 = emit(b, "sum", x, axes=(0,)), emit(b, "sum", x, axes=(1,))
    c1, c2 = const(b, [1.0, 2.0, 3.0]), const(b, np.array([1.0, 2.0, 3.0]))
    c3 = const(b, [1.0, 2.0, 4.0])
    g = b.build([s0, s1, emit(b, "add", x, c1), emit(b, "add", x, c2), c3])
    assert op_names(cse(g)) == ["sum", "sum", "constant", "constant", "add"]


def test_chains_merge_in_one_pass():
    b = GraphBuilder()
    x = b.add_input(tensor([3]))
    a = emit(b, "tanh", emit(b, "exp", x))
    c = emit(b, "tanh", emit(b, "exp", x))
    g = b.build([emit(b, "add", a, c)])
    assert op_names(cse(g)) == ["exp", "tanh", "add"]


def test_effects_are_not_merged():
    b = GraphBuilder()
    x = b.add_input(tensor([3]))
    g = b.build([effect(b, x), effect(b, x)])
    assert op_names(cse(g)) == ["test_effect", "test_effect"]


def test_device_placement_keeps_values_apart():
    b = GraphBuilder()
    x = b.add_input(tensor([3]))
    on_cpu = b.emit1(ops.EXP, [x], meta=VarMeta(device="/cpu:0"))
    on_gpu = b.emit1(ops.EXP, [x], meta=VarMeta(device="/gpu:0"))
    assert op_names(cse(b.build([on_cpu, on_gpu]))) == ["exp", "exp"]
