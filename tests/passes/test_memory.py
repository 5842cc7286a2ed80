"""plan_memory: lifetimes, reuse of dead buffers, in-place updates, donated arguments."""

import numpy as np
import pytest

from tracejit.ir import GraphBuilder
from tracejit.passes import fuse_kernels, plan_memory

from .plan_check import check_plan
from .util import emit, tensor

F32_64 = 64 * 4


def chain(ops_, shape=(64,), out=True):
    b = GraphBuilder()
    x = b.add_input(tensor(shape))
    v = x
    for name, params in ops_:
        v = emit(b, name, v, **params)
    return b.build([v] if out else [])


def test_lifetimes():
    g = chain([("exp", {}), ("neg", {}), ("tanh", {})])
    plan = plan_memory(g)
    check_plan(g, plan)
    assert [(vp.first, vp.last) for vp in plan.values] == [(-1, 0), (0, 1), (1, 2), (2, 3)]


def test_elementwise_chain_runs_in_place():
    g = chain([("exp", {}), ("neg", {}), ("tanh", {}), ("sin", {})])
    plan = plan_memory(g)
    check_plan(g, plan)
    assert plan.inplace == ((1, 0, 0), (2, 0, 0))       # neg and tanh overwrite their input
    kinds = sorted(b.kind for b in plan.buffers)
    assert kinds == ["arena", "output"]                 # sin's result goes to the caller
    assert plan.bytes_without_reuse == 4 * F32_64 and plan.bytes_with_reuse == 2 * F32_64


def test_dead_buffers_are_reused_without_in_place():
    perms = [("transpose", {"perm": (1, 0)})] * 5
    g = chain(perms, shape=(8, 8))
    plan = plan_memory(g)
    check_plan(g, plan)
    assert not plan.inplace                             # a transpose reads other indices
    assert [b.kind for b in plan.buffers] == ["arena", "arena", "output"]
    assert plan.peak_live_bytes == 2 * F32_64


def test_best_fit_and_no_small_value_pins_a_big_buffer():
    b = GraphBuilder()
    x = b.add_input(tensor([1000]))
    big = emit(b, "exp", x)                                 # 4000 bytes
    small = emit(b, "reshape", emit(b, "exp", emit(b, "reshape", x, shape=(10, 100))),
                 shape=(1000,))
    s = emit(b, "sum", emit(b, "add", big, small), axes=(0,))      # big, small die here
    scalar = emit(b, "neg", emit(b, "reshape", s, shape=(1,)))
    g = b.build([scalar])
    plan = plan_memory(g)
    check_plan(g, plan)
    reshaped = plan.value(g.eqns[-2].outs[0])
    assert plan.buffers[reshaped.buffer].nbytes == 4        # a new 4-byte buffer


def test_reductions_and_reduction_kernels_do_not_run_in_place():
    b = GraphBuilder()
    x = b.add_input(tensor([8, 8]))
    g = b.build([emit(b, "exp", emit(b, "sum", emit(b, "exp", x), axes=(1,), keepdims=True))])
    fused = fuse_kernels(g)
    plan = plan_memory(fused)
    check_plan(fused, plan)
    assert fused.eqns[0].params["kind"] == "reduction" and not plan.inplace


def test_elementwise_kernels_overwrite_a_dying_input():
    b = GraphBuilder()
    x = b.add_input(tensor([8, 8]))
    t = emit(b, "transpose", x, perm=(1, 0))
    y = emit(b, "transpose", emit(b, "neg", emit(b, "exp", t)), perm=(1, 0))
    g = fuse_kernels(b.build([y]))
    plan = plan_memory(g)
    check_plan(g, plan)
    assert [e.op.name for e in g.eqns] == ["transpose", "kernel", "transpose"]
    assert plan.inplace == ((1, 0, 0),)                 # the kernel writes over t
    assert [b.kind for b in plan.buffers] == ["arena", "output"]


def sgd_step():
    b = GraphBuilder("sgd")
    w, grad = b.add_input(tensor([256])), b.add_input(tensor([256]))
    lr = emit(b, "constant", value=np.float32(0.01))
    return b.build([emit(b, "sub", w, emit(b, "mul", lr, grad))])


def test_donated_variable_is_updated_in_place():
    g = sgd_step()
    plan = plan_memory(g, donated={0})
    check_plan(g, plan, donated={0})
    assert plan.output_aliases == {0: 0}
    assert not [b for b in plan.buffers if b.kind == "output"]
    plan = plan_memory(g)
    check_plan(g, plan)
    assert plan.output_aliases == {} and [b.kind for b in plan.buffers].count("output") == 1


def test_a_donated_buffer_is_reused_once_its_argument_is_dead():
    g = sgd_step()
    plan = plan_memory(g, donated={1})                  # the gradient is given up
    check_plan(g, plan, donated={1})
    mul = plan.value(g.eqns[1].outs[0])
    assert mul.inplace and plan.buffers[mul.buffer].kind == "donated"


def test_an_argument_returned_as_is_keeps_its_buffer():
    b = GraphBuilder()
    x = b.add_input(tensor([4]))
    g = b.build([x, emit(b, "exp", x)])
    plan = plan_memory(g, donated={0})
    check_plan(g, plan, donated={0})
    assert plan.output_aliases == {0: 0} and not plan.inplace


@pytest.mark.parametrize("donated_shape", [[16], [4, 4], [20]])
def test_a_result_never_becomes_a_donated_argument_of_another_type(donated_shape):
    # Same bytes in another shape, or more bytes: the memory may hold temporaries, but
    # the result cannot be that argument's array.
    b = GraphBuilder()
    w = b.add_input(tensor(donated_shape))          # given up and never read
    x = b.add_input(tensor([16]))
    g = b.build([emit(b, "exp", x)])
    plan = plan_memory(g, donated={0})
    check_plan(g, plan, donated={0})
    assert plan.output_aliases == ({0: 0} if w.type == g.outputs[0].type else {})


def test_bad_donation_is_an_error():
    with pytest.raises(ValueError, match="out of range"):
        plan_memory(sgd_step(), donated={2})


def test_plan_prints_its_buffers():
    text = str(plan_memory(sgd_step(), donated={0}))
    assert "donated 1024 bytes (argument 0)" in text
