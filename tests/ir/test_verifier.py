"""verify(): valid graphs pass, and each broken invariant is caught with a message that
names the equation, the op and the var (as the printer names it)."""

from __future__ import annotations

import numpy as np
import pytest

from tracejit.ir import OPS, Graph, GraphBuilder, OpDef, Var
from tracejit.ir.core import Eqn, Params, tensor_type
from tracejit.ir.errors import ShapeError, VerifyError
from tracejit.ir.opdef import ParamSpec
from tracejit.ir.verifier import same_params, verify

F3 = tensor_type([3], "f32")


def eqn(name: str, ins, outs, **params) -> Eqn:
    """An Eqn built by hand, bypassing GraphBuilder's checks, to make broken graphs."""
    return Eqn(OPS[name], tuple(ins), tuple(outs), Params(params))


def _region_infer(types, params):
    body = params["body"]
    if tuple(types) != tuple(v.type for v in body.inputs):
        raise ShapeError("operands do not match the body", op="_test_region")
    return tuple(v.type for v in body.outputs)


def _graph(value):
    if not isinstance(value, Graph):
        raise TypeError("expected a Graph")
    return value


# NOTE: verify never looks an op up in OPS, so this test-only op stays out of the table.
REGION = OpDef(name="_test_region", infer=_region_infer, impl=None, arity=None,
               params={"body": ParamSpec(_graph)})


def chain() -> tuple[Graph, list[Var]]:
    """a -> b = neg a -> c = add b a; returns the graph and [a, b, c]."""
    b = GraphBuilder()
    x = b.add_input(F3)
    y = b.emit1(OPS["neg"], [x])
    z = b.emit1(OPS["add"], [y, x])
    return b.build([z]), [x, y, z]


def test_valid_graphs_pass():
    graph, (a, b, c) = chain()
    verify(graph)
    verify(graph.replace(outputs=(c, c, a, b)))         # repeated outputs, an input output
    verify(Graph([], [], []))
    verify(graph.replace(eqns=(), outputs=(a,)))        # nothing but an input passed through
    verify(Graph([a], [eqn("sum", [a], [Var(tensor_type([], "f32"))], axes=(0,),
                           keepdims=False)], []))       # a dead result is still valid


def test_valid_nested_graph_passes():
    body, _ = chain()
    x = Var(F3)
    verify(Graph([x], [Eqn(REGION, (x,), (Var(F3),), Params({"body": body}))], []))


def check_fails(graph: Graph, *fragments: str) -> VerifyError:
    with pytest.raises(VerifyError) as info:
        verify(graph)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    return info.value


def test_use_before_definition():
    graph, (a, b, c) = chain()
    swapped = graph.replace(eqns=graph.eqns[::-1])
    err = check_fails(swapped, "add: eqn 0: operand 0 b:f32[3] is used before it is defined "
                               "(by eqn 1)")
    assert err.op == "add"


def test_use_of_a_var_never_defined():
    graph, (a, b, c) = chain()
    stray = Var(F3)
    bad = graph.replace(eqns=(graph.eqns[0], eqn("add", [b, stray], [c])))
    check_fails(bad, "add: eqn 1: operand 1 c:f32[3] is not defined")


def test_var_defined_twice():
    graph, (a, b, c) = chain()
    again = graph.replace(eqns=graph.eqns + (eqn("neg", [a], [b]),))
    check_fails(again, "neg: eqn 2: output 0 b:f32[3] is defined again; it is already "
                       "output 0 of eqn 0")
    over_input = graph.replace(eqns=(eqn("neg", [a], [a]),) + graph.eqns[1:])
    check_fails(over_input, "neg: eqn 0: output 0 a:f32[3] is defined again; it is already "
                            "input 0")
    same_eqn = Graph([a], [Eqn(REGION, (a,), (b, b), Params({"body": Graph(
        [p := Var(F3)], [], [p, p])}))], [b])
    check_fails(same_eqn, "eqn 0: output 1 b:f32[3] is defined again")


def test_duplicate_inputs():
    graph, (a, b, c) = chain()
    check_fails(graph.replace(inputs=(a, a)), "input 1 a:f32[3] is already input 0")


def test_outputs_not_defined():
    graph, (a, b, c) = chain()
    check_fails(graph.replace(outputs=(c, Var(F3))), "graph output 1 d:f32[3] is not defined")


def test_params_not_normalized():
    graph, (a, b, c) = chain()
    s = Var(tensor_type([], "f32"))
    missing_default = Graph([a], [eqn("sum", [a], [s], axes=(0,))], [s])
    check_fails(missing_default, "sum: eqn 0: params [axes=(0,)] are not normalized; "
                                 "make_params gives [axes=(0,), keepdims=false]")
    unsorted = Graph([a], [eqn("sum", [a], [s], axes=[0], keepdims=False)], [s])
    check_fails(unsorted, "are not normalized")
    # NOTE: these compare equal to the normalized values, but are not what make_params gives.
    numpy_int = Graph([a], [eqn("sum", [a], [s], axes=(np.int64(0),), keepdims=False)], [s])
    check_fails(numpy_int, "are not normalized")
    h = Var(tensor_type([3], "f16"))
    string_dtype = Graph([a], [eqn("cast", [a], [h], dtype="float16")], [h])
    check_fails(string_dtype, "cast: eqn 0: params", "not normalized")
    unknown = Graph([a], [eqn("neg", [a], [b], alpha=1.0)], [b])
    check_fails(unknown, "neg: eqn 0: invalid params", "unknown parameter")
    no_dtype = Graph([a], [eqn("cast", [a], [h])], [h])
    check_fails(no_dtype, "missing parameter 'dtype'")


def test_output_types_must_be_inferred_ones():
    graph, (a, b, c) = chain()
    wrong = Var(tensor_type([3], "f64"))
    check_fails(graph.replace(eqns=(eqn("neg", [a], [wrong]),) + graph.eqns[1:]),
                "neg: eqn 0: output 0 b:f64[3] should be f32[3]")
    check_fails(graph.replace(eqns=(eqn("neg", [a], [b, Var(F3)]),) + graph.eqns[1:]),
                "neg: eqn 0: has 2 outputs, the op gives 1")
    i = Var(tensor_type([3], "i32"))
    check_fails(Graph([a, i], [eqn("add", [a, i], [Var(F3)])], []),
                "add: eqn 0: the operands do not fit the op", "one dtype")


def test_nested_graphs_are_verified():
    body, (p, q, r) = chain()
    broken_body = body.replace(eqns=body.eqns[::-1])
    x = Var(F3)
    outer = Graph([x], [eqn("neg", [x], [Var(F3)]),
                        Eqn(REGION, (x,), (Var(F3),), Params({"body": broken_body}))], [])
    check_fails(outer, "_test_region: eqn 1: in the graph of param body: add: eqn 0: "
                       "operand 0 b:f32[3] is used before it is defined")


def test_nested_graphs_in_tuples_are_verified():
    tupled = OpDef(name="_test_branches", infer=lambda types, params: tuple(types), impl=None,
                   arity=1, params={"branches": ParamSpec(lambda v: v)})
    body, (p, q, r) = chain()
    good = Graph([p], [Eqn(tupled, (p,), (Var(F3),), Params({"branches": ((body,), body)}))],
                 [])
    verify(good)
    bad_body = body.replace(outputs=(Var(F3),))
    bad = Graph([p], [Eqn(tupled, (p,), (Var(F3),), Params({"branches": (body, (bad_body,))}))],
                [])
    check_fails(bad, "in the graph of param branches: graph output 0 d:f32[3] is not defined")


def test_same_params_compares_types_too():
    assert same_params(Params({"a": (1, 2.0)}), Params({"a": (1, 2.0)}))
    assert not same_params(Params({"a": (1, 2.0)}), Params({"a": (1, 2)}))
    assert not same_params(Params({"a": 1}), Params({"a": True}))
    assert not same_params(Params({"a": 1}), Params({"b": 1}))
