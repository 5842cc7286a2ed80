"""fuse_kernels: the kernels it must form (W1, W2 of BENCHMARKS.md, matmul epilogues,
reductions with prologue and epilogue, multi-output siblings) and the ones it must not."""

import numpy as np
import pytest

from tracejit.ir import GraphBuilder
from tracejit.passes import fuse_kernels
from tracejit.passes.fusion_rules import INLINE_CONSTANT_LIMIT

from .kernel_check import check_fused
from .util import (
    assert_same_results,
    const,
    effect,
    emit,
    kernels,
    op_names,
    optimize_fused,
    random_args,
    tensor,
)

N_BIG = 16 * 2 ** 20     # 16M elements: structure only, never run


def w1(n):
    """y = tanh(a*x + b) * (1/(1+exp(-x))) + x*x, as the tracer records it."""
    b = GraphBuilder("w1")
    a, x, bias = (b.add_input(tensor([n])) for _ in range(3))
    t = emit(b, "tanh", emit(b, "add", emit(b, "mul", a, x), bias))
    e = emit(b, "exp", emit(b, "neg", x))
    s = emit(b, "div", const(b, 1.0), emit(b, "add", const(b, 1.0), e))
    return b.build([emit(b, "add", emit(b, "mul", t, s), emit(b, "mul", x, x))])


def w2(n):
    """sum(x*x - 0.5*x)"""
    b = GraphBuilder("w2")
    x = b.add_input(tensor([n]))
    d = emit(b, "sub", emit(b, "mul", x, x), emit(b, "mul", const(b, 0.5), x))
    return b.build([emit(b, "sum", d, axes=(0,))])


def bodies_ops(graph):
    return [op_names(k.params["body"]) for k in kernels(graph)]


def fused(g):
    out = fuse_kernels(g)
    assert out.stage == "fuse_kernels"
    check_fused(out)
    assert_same_results(g, out, random_args(g))
    return out


def test_w1_is_one_elementwise_kernel():
    big = optimize_fused(w1(N_BIG))
    assert op_names(big) == ["kernel"] and big.eqns[0].params["kind"] == "elementwise"
    assert big.eqns[0].ins == big.inputs            # three reads
    assert len(big.eqns[0].outs) == 1               # one write
    small = w1(1000)
    assert_same_results(small, optimize_fused(small), random_args(small))


def test_w2_is_one_reduction_kernel():
    big = optimize_fused(w2(N_BIG))
    assert op_names(big) == ["kernel"] and big.eqns[0].params["kind"] == "reduction"
    assert bodies_ops(big) == [["mul", "constant", "mul", "sub", "sum"]]
    small = w2(1000)
    assert_same_results(small, optimize_fused(small), random_args(small))


def mlp_layer(bias_shape=(16,)):
    b = GraphBuilder("layer")
    x, w, bias = (b.add_input(tensor([8, 32])), b.add_input(tensor([32, 16])),
                  b.add_input(tensor(bias_shape)))
    y = emit(b, "relu", emit(b, "add", emit(b, "matmul", x, w), bias))
    return b.build([y])


def test_matmul_bias_relu_is_one_epilogue_kernel():
    g = fused(mlp_layer())
    assert op_names(g) == ["kernel"] and g.eqns[0].params["kind"] == "matmul_epilogue"
    assert bodies_ops(g) == [["matmul", "add", "relu"]]


def test_a_lone_matmul_stays_a_blas_call():
    b = GraphBuilder()
    x, w = b.add_input(tensor([4, 5])), b.add_input(tensor([5, 3]))
    assert op_names(fused(b.build([emit(b, "matmul", x, w)]))) == ["matmul"]


def test_matmul_operands_are_not_fused_into_it():
    b = GraphBuilder()
    x, w = b.add_input(tensor([4, 5])), b.add_input(tensor([5, 3]))
    y = emit(b, "tanh", emit(b, "matmul", emit(b, "exp", x), w))
    g = fused(b.build([y]))
    assert op_names(g) == ["kernel", "kernel"]
    assert [k.params["kind"] for k in kernels(g)] == ["elementwise", "matmul_epilogue"]


def test_siblings_share_one_multi_output_kernel():
    b = GraphBuilder()
    x = b.add_input(tensor([64]))
    g = fused(b.build([emit(b, "exp", x), emit(b, "log", x)]))
    assert op_names(g) == ["kernel"] and len(g.eqns[0].outs) == 2


def test_mean_and_mean_of_squares_are_one_reduction():
    b = GraphBuilder()
    x = b.add_input(tensor([8, 64]))
    m = emit(b, "mean", x, axes=(1,))
    sq = emit(b, "mean", emit(b, "square", x), axes=(1,))
    g = fused(b.build([m, sq]))
    assert op_names(g) == ["kernel"] and g.eqns[0].params["kind"] == "reduction"
    assert len(g.eqns[0].outs) == 2


def test_reduction_with_prologue_and_epilogue():
    b = GraphBuilder()
    x = b.add_input(tensor([8, 64]))
    norm = emit(b, "sqrt", emit(b, "sum", emit(b, "square", x), axes=(1,), keepdims=True))
    g = fused(b.build([emit(b, "mul", norm, const(b, 2.0))]))
    assert bodies_ops(g) == [["square", "sum", "sqrt", "constant", "mul"]]


def test_softmax_is_three_passes_without_recomputation():
    b = GraphBuilder()
    x = b.add_input(tensor([8, 10]))
    m = emit(b, "max", x, axes=(1,), keepdims=True)
    e = emit(b, "exp", emit(b, "sub", x, m))
    g = fused(b.build([emit(b, "div", e, emit(b, "sum", e, axes=(1,), keepdims=True))]))
    assert [k.params["kind"] for k in kernels(g)] == ["reduction", "reduction", "elementwise"]
    assert sum(ops.count("exp") for ops in bodies_ops(g)) == 1
    assert len(kernels(g)[1].outs) == 2         # exp(x - m) is kept, not recomputed


def test_a_value_needed_by_two_kernels_is_computed_once():
    b = GraphBuilder()
    x, w = b.add_input(tensor([4, 4])), b.add_input(tensor([4, 4]))
    t = emit(b, "exp", x)
    g = fused(b.build([emit(b, "sum", t, axes=(0, 1)), emit(b, "matmul", t, w)]))
    assert sum(ops.count("exp") for ops in bodies_ops(g)) == 1
    assert op_names(g) == ["kernel", "matmul"]


def test_computed_values_are_never_broadcast_into_a_bigger_loop():
    b = GraphBuilder()
    x, bias = b.add_input(tensor([64, 32])), b.add_input(tensor([32]))
    g = fused(b.build([emit(b, "add", x, emit(b, "neg", bias))]))
    assert len(kernels(g)) == 2                 # neg runs 32 times, not 64 * 32


def test_index_maps_are_copied_into_each_reader():
    b = GraphBuilder()
    x, bias, w = b.add_input(tensor([4, 3])), b.add_input(tensor([3])), b.add_input(tensor([3, 3]))
    wide = emit(b, "broadcast_to", bias, shape=(4, 3))
    g = fused(b.build([emit(b, "exp", emit(b, "add", x, wide)), emit(b, "matmul", wide, w)]))
    assert op_names(g) == ["broadcast_to", "kernel", "matmul"]
    assert "broadcast_to" in bodies_ops(g)[0]
    assert kernels(g)[0].ins == (g.inputs[0], g.inputs[1])


def test_reshapes_join_kernels():
    b = GraphBuilder()
    x = b.add_input(tensor([4, 6]))
    r = emit(b, "reshape", emit(b, "exp", x), shape=(24,))
    g = fused(b.build([emit(b, "sum", emit(b, "neg", r), axes=(0,))]))
    assert bodies_ops(g) == [["exp", "reshape", "neg", "sum"]]


def test_constants_are_inlined_up_to_a_limit():
    b = GraphBuilder()
    n = INLINE_CONSTANT_LIMIT + 1
    x = b.add_input(tensor([n]))
    g = fused(b.build([emit(b, "mul", emit(b, "add", x, const(b, 1.0)), const(b, np.ones(n)))]))
    assert op_names(g) == ["constant", "kernel"]
    assert bodies_ops(g) == [["constant", "add", "mul"]]


def test_other_ops_split_kernels():
    b = GraphBuilder()
    x = b.add_input(tensor([4, 6]))
    t = emit(b, "transpose", emit(b, "exp", x), perm=(1, 0))
    g = fused(b.build([effect(b, emit(b, "neg", t))]))
    assert op_names(g) == ["kernel", "transpose", "kernel", "test_effect"]


def test_random_bits_stay_outside():
    b = GraphBuilder()
    key = b.add_input(tensor([2], "i32"))
    bits = emit(b, "random_bits", key, shape=(8,))
    g = fused(b.build([emit(b, "neg", bits)]))
    assert op_names(g) == ["random_bits", "kernel"]


def test_kernels_never_depend_on_each_other_in_a_cycle():
    # Found by the random-program test: merging n with the select's kernel is fine on
    # its own, but with {sum, add} already a kernel it made two kernels feed each other.
    b = GraphBuilder()
    x = b.add_input(tensor([]))
    e = emit(b, "sum", x, axes=())
    n = emit(b, "neg", x)
    p = emit(b, "select", emit(b, "less", x, x), x, e)
    g = fused(b.build([emit(b, "add", e, n), p]))
    assert len(kernels(g)) >= 2


def test_the_input_graph_is_left_alone():
    g = w1(8)
    before = (g.canonical_key(), g.eqns)
    fuse_kernels(g)
    assert (g.canonical_key(), g.eqns) == before

def test_kernels_print_and_parse_back():
    from tracejit.ir.parser import parse_graph
    from tracejit.ir.printer import print_graph

    for g in (w1(8), w2(8), mlp_layer()):
        fused_graph = optimize_fused(g)
        assert parse_graph(print_graph(fused_graph)) == fused_graph


def w4(batch, sizes):
    """The MLP training step of BENCHMARKS.md W4: ReLU layers, softmax cross-entropy,
    SGD with learning rate 0.01; returns the loss and the new parameters."""
    autodiff = pytest.importorskip("tracejit.passes.autodiff")
    b = GraphBuilder("w4")
    x, labels = b.add_input(tensor([batch, sizes[0]])), b.add_input(tensor([batch, sizes[-1]]))
    params = []
    for n_in, n_out in zip(sizes, sizes[1:], strict=False):
        params += [b.add_input(tensor([n_in, n_out])), b.add_input(tensor([n_out]))]
    h = x
    for k in range(0, len(params), 2):
        h = emit(b, "add", emit(b, "matmul", h, params[k]), params[k + 1])
        h = emit(b, "relu", h) if k + 2 < len(params) else h
    z = emit(b, "sub", h, emit(b, "max", h, axes=(1,), keepdims=True))
    lse = emit(b, "log", emit(b, "sum", emit(b, "exp", z), axes=(1,), keepdims=True))
    picked = emit(b, "sum", emit(b, "mul", labels, emit(b, "sub", z, lse)), axes=(1,))
    loss = emit(b, "neg", emit(b, "mean", picked, axes=(0,)))
    grads = autodiff.add_gradients(b, [loss], params)
    lr = const(b, 0.01)
    new = [emit(b, "sub", p, emit(b, "mul", lr, g)) for p, g in zip(params, grads, strict=True)]
    return b.build([loss, *new])


def test_w4_training_step_is_matmuls_and_kernels():
    g = optimize_fused(w4(128, (784, 512, 512, 10)), debug=True)
    check_fused(g)
    readers = {}
    for e in g.eqns:
        for v in e.ins:
            readers.setdefault(id(v), []).append(e)
    blas = [e for e in g.eqns if e.op.name == "matmul" or (
        e.op.name == "kernel" and e.params["kind"] == "matmul_epilogue")]
    assert len(blas) == 8                       # 3 forward, 3 weight and 2 input gradients
    # Only matmuls and fused kernels: the backward pass's x.T @ dy is a matmul with a
    # transpose flag (a BLAS argument), not a transposed copy.
    assert all(e.op.name in ("kernel", "matmul") for e in g.eqns), \
        [e.op.name for e in g.eqns]
    assert any(e.params.get("transpose_a") or e.params.get("transpose_b") for e in g.eqns
               if e.op.name == "matmul") or any(
        k.params.get("transpose_a") or k.params.get("transpose_b")
        for e in g.eqns if e.op.name == "kernel" for k in e.params["body"].eqns
        if k.op.name == "matmul")
    small = w4(4, (6, 5, 5, 3))
    assert_same_results(small, optimize_fused(small), random_args(small))
