"""eliminate_dead_code: unused equations go, effects and the signature stay."""

from tracejit.ir import GraphBuilder
from tracejit.passes import eliminate_dead_code

from .util import assert_same_results, effect, emit, op_names, random_args, tensor


def test_removes_what_no_output_needs():
    b = GraphBuilder()
    x = b.add_input(tensor([4]))
    b.add_input(tensor([4]))                    # an argument nothing reads
    dead = emit(b, "exp", x)
    emit(b, "add", dead, x)
    y = emit(b, "neg", x)
    g = b.build([y])
    clean = eliminate_dead_code(g)
    assert op_names(clean) == ["neg"] and clean.stage == "eliminate_dead_code"
    assert clean.inputs == g.inputs            # the signature keeps unused arguments
    assert_same_results(g, clean, random_args(g))


def test_effects_are_roots():
    b = GraphBuilder()
    x = b.add_input(tensor([4]))
    effect(b, emit(b, "exp", x))                # nothing reads it, but it is an effect
    g = b.build([emit(b, "neg", x)])
    assert op_names(eliminate_dead_code(g)) == ["exp", "test_effect", "neg"]


def test_outputs_that_are_inputs_and_repeated_outputs():
    b = GraphBuilder()
    x = b.add_input(tensor([2]))
    y = emit(b, "neg", x)
    g = b.build([x, y, y])
    clean = eliminate_dead_code(g)
    assert op_names(clean) == ["neg"] and clean.outputs == (x, y, y)
