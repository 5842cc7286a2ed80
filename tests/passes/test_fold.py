"""fold_constants: what folds, into what, and what never does."""

import numpy as np

from tracejit.ir import GraphBuilder, ops
from tracejit.passes import fold_constants
from tracejit.passes.common import FOLD_LIMIT

from .util import assert_same_results, const, effect, emit, op_names, random_args, tensor

BIG = (4096, 4096)      # W1's 16M elements: only the structure is checked at this size


def test_folds_a_constant_expression_into_one_constant():
    b = GraphBuilder()
    x = b.add_input(tensor([3]))
    c = emit(b, "exp", emit(b, "add", const(b, 1.0), const(b, 2.0)))
    g = b.build([emit(b, "mul", x, c)])
    folded = fold_constants(g)
    assert folded.stage == "fold_constants"
    assert op_names(folded) == ["constant", "constant", "constant", "constant", "mul"]
    value = folded.eqns[3].params["value"].array
    assert value == np.exp(np.float32(3.0)) and value.dtype == np.float32
    assert_same_results(g, folded, random_args(g))


def test_the_input_graph_is_left_alone():
    b = GraphBuilder()
    g = b.build([emit(b, "neg", const(b, 1.0))])
    before = g.canonical_key()
    fold_constants(g)
    assert g.canonical_key() == before and op_names(g) == ["constant", "neg"]


def test_uniform_results_become_fill_at_any_size():
    b = GraphBuilder()
    x = b.add_input(tensor(BIG))
    wide = emit(b, "broadcast_to", const(b, 2.0), shape=BIG)
    g = b.build([emit(b, "mul", x, emit(b, "exp", wide))])
    folded = fold_constants(g)
    fills = [e for e in folded.eqns if e.op.name == "fill"]
    assert len(fills) == 2          # the broadcast, and exp of it
    assert fills[-1].params["value"] == float(np.exp(np.float32(2.0)))
    assert fills[-1].params["shape"] == BIG
    assert not any(e.op.name == "constant" and e.outs[0].type.size > 1 for e in folded.eqns)


def test_small_uniform_results_are_fill_and_scalars_are_constant():
    b = GraphBuilder()
    wide = emit(b, "broadcast_to", const(b, 3, "i32"), shape=(2, 3))
    g = b.build([wide, emit(b, "reshape", const(b, [7], "i32"), shape=())])
    folded = fold_constants(g)
    assert [e.op.name for e in folded.eqns if e.outs[0] in g.outputs] == ["fill", "constant"]
    assert_same_results(g, folded, [])


def test_size_limit_keeps_huge_non_uniform_values_symbolic():
    b = GraphBuilder()
    ramp = emit(b, "iota", shape=(FOLD_LIMIT + 1,), dimension=0, dtype="f32")
    g = b.build([emit(b, "exp", ramp)])
    assert op_names(fold_constants(g)) == ["iota", "exp"]
    b = GraphBuilder()
    ramp = emit(b, "iota", shape=(FOLD_LIMIT,), dimension=0, dtype="f32")
    g = b.build([emit(b, "exp", ramp)])
    assert op_names(fold_constants(g)) == ["iota", "constant"]


def test_reductions_of_huge_uniform_values_are_not_materialized():
    b = GraphBuilder()
    wide = emit(b, "fill", shape=BIG, value=1.0, dtype="f32")
    g = b.build([emit(b, "sum", wide, axes=(0, 1))])
    assert op_names(fold_constants(g)) == ["fill", "sum"]


def test_random_bits_fold_with_a_constant_key_only():
    b = GraphBuilder()
    key = const(b, [1, 2], "i32")
    bits = emit(b, "random_bits", key, shape=(4, 5))
    g = b.build([bits])
    folded = fold_constants(g)
    assert op_names(folded) == ["constant", "constant"]
    assert_same_results(g, folded, [])
    b = GraphBuilder()
    key = b.add_input(tensor([2], "i32"))
    g = b.build([emit(b, "random_bits", key, shape=(4, 5))])
    assert op_names(fold_constants(g)) == ["random_bits"]


def test_random_bits_over_the_limit_stay():
    b = GraphBuilder()
    bits = emit(b, "random_bits", const(b, [1, 2], "i32"), shape=(FOLD_LIMIT * 2,))
    assert op_names(fold_constants(b.build([bits]))) == ["constant", "random_bits"]


def test_stateful_ops_are_never_folded():
    b = GraphBuilder()
    g = b.build([effect(b, const(b, 1.0))])
    assert op_names(fold_constants(g)) == ["constant", "test_effect"]


def test_folding_goes_through_the_reference_implementation():
    # int division by zero is 0 in the reference; a second implementation would differ
    b = GraphBuilder()
    q = emit(b, "div", const(b, 7, "i32"), const(b, 0, "i32"))
    g = b.build([emit(b, "cast", q, dtype="f32")])
    folded = fold_constants(g)
    assert folded.eqns[-1].op is ops.CONSTANT
    assert folded.eqns[-1].params["value"].array == np.float32(0)
