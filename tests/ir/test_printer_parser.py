"""The IR text form: print and parse are exact inverses, for every op and every param kind.

``assert_round_trip`` checks both directions in both modes: the parsed graph equals the
original, prints to the very same text, and (with locations) carries the same metadata.
"""

from __future__ import annotations

import importlib
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracejit.ir import OPS, ConstValue, Graph, GraphBuilder, OpDef, Tag, Var, VarMeta, dtypes
from tracejit.ir.core import Eqn, Params, tensor_type
from tracejit.ir.errors import ParseError, ShapeError, TracejitError
from tracejit.ir.opdef import ParamSpec, bool_param, dtype_param, float_param
from tracejit.ir.parser import parse_graph
from tracejit.ir.printer import print_graph
from tracejit.ir.source import SourceLoc
from tracejit.ir.verifier import verify


def metas(graph: Graph) -> list:
    """Every defined var's metadata, nested graphs included, in definition order."""
    out = [v.meta for v in graph.inputs]
    for eqn in graph.eqns:
        out.extend(v.meta for v in eqn.outs)
        for value in eqn.params.values():
            for nested in value if isinstance(value, tuple) else (value,):
                if isinstance(nested, Graph):
                    out.extend(metas(nested))
    return out


def assert_round_trip(graph: Graph) -> str:
    for locations in (False, True):
        text = print_graph(graph, locations=locations)
        parsed = parse_graph(text)
        assert parsed == graph, text
        assert print_graph(parsed, locations=locations) == text
        assert (parsed.name, parsed.stage) == (graph.name, graph.stage)
        if locations:
            assert metas(parsed) == metas(graph)
        else:   # the device is part of equality; the rest is only printed with locations
            assert [m.device for m in metas(parsed)] == [m.device for m in metas(graph)]
    return print_graph(graph)


def f32(*shape):
    return tensor_type(shape, "f32")


# ---- test-only ops: a fusion-like region holding a Graph, and one of every param kind --

def _exact(*types):
    def convert(value):
        if not isinstance(value, types):
            raise TypeError(f"expected {types}, got {value!r}")
        return value
    return convert


def _region_infer(types, params):
    body = params["body"]
    if tuple(types) != tuple(v.type for v in body.inputs):
        raise ShapeError("operands do not match the body's inputs", op="_test_region")
    return tuple(v.type for v in body.outputs)


REGION = OpDef(name="_test_region", infer=_region_infer, impl=None, arity=None,
               params={"body": ParamSpec(_exact(Graph))})
KINDS = OpDef(name="_test_kinds", infer=lambda types, params: tuple(types), impl=None,
              arity=1, params={
                  "text": ParamSpec(_exact(str), ""), "opt": ParamSpec(_exact(int, type(None))),
                  "pairs": ParamSpec(_exact(tuple), ()), "scale": ParamSpec(float_param, 1.0),
                  "value": ParamSpec(_exact(ConstValue, type(None)), None),
                  "dtype": ParamSpec(dtype_param, dtypes.float32),
                  "flag": ParamSpec(bool_param, False), "graphs": ParamSpec(_exact(tuple), ())})


@pytest.fixture
def test_ops():
    # NOTE: the parser finds ops in OPS, so the test ops live there only for one test.
    added = {REGION.name: REGION, KINDS.name: KINDS}
    assert not set(added) & set(OPS)
    OPS.update(added)
    yield
    for name in added:
        OPS.pop(name, None)


def kinds_graph(**params) -> Graph:
    b = GraphBuilder()
    x = b.add_input(f32(2))
    return b.build([b.emit1(KINDS, [x], {"opt": None, **params})])


# ---- every op, from the shared table of examples -----------------------------------------

def op_examples() -> dict:
    try:
        module = importlib.import_module("tests.ir.op_examples")
    except ModuleNotFoundError as exc:
        if exc.name != "tests.ir.op_examples":
            raise
        pytest.skip("tests/ir/op_examples.py is not written yet")
    return module.BY_NAME


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_round_trips(name):
    examples = op_examples()
    assert examples.get(name), f"OP_EXAMPLES has no example for {name}"
    for in_types, params in examples[name]:
        b = GraphBuilder()
        ins = [b.add_input(t, VarMeta(name=f"in{i}")) for i, t in enumerate(in_types)]
        meta = VarMeta(SourceLoc("model.py", 7, "forward"), "y", "/cpu:0")
        outs = b.emit(OPS[name], ins, params, meta)
        graph = b.build(outs)
        verify(graph)
        assert_round_trip(graph)


# ---- hand-built graphs ---------------------------------------------------------------------

def test_golden_text_with_shared_and_repeated_vars():
    b = GraphBuilder()
    x, y = b.add_input(f32(2, 3)), b.add_input(tensor_type([2, 3], "i32"))
    s = b.emit1(OPS["add"], [x, x])
    c = b.emit1(OPS["cast"], [y], {"dtype": "bf16"})
    r = b.emit1(OPS["sum"], [s], {"axes": (1,)})
    graph = b.build([r, s, s, x, c])
    assert assert_round_trip(graph) == (
        "func main(a:f32[2,3], b:i32[2,3]) stage=traced {\n"
        "  c:f32[2,3] = add a a\n"
        "  d:bf16[2,3] = cast[dtype=bf16] b\n"
        "  e:f32[2] = sum[axes=(1,), keepdims=false] c\n"
        "  return e, c, c, a, d\n"
        "}")


def test_many_vars_get_longer_names_and_empty_graphs_print():
    b = GraphBuilder("loop body")
    v = b.add_input(f32())
    for _ in range(60):
        v = b.emit1(OPS["neg"], [v])
    text = assert_round_trip(b.build([v], stage="cse"))
    assert text.startswith('func "loop body"(a:f32[]) stage=cse {')
    assert "\n  bi:f32[] = neg bh\n" in text and text.endswith("return bi\n}")
    empty = Graph([], [], [], name="nothing")
    assert assert_round_trip(empty) == "func nothing() stage=traced {\n  return\n}"


def test_metadata_in_braces_and_location_comments():
    b = GraphBuilder()
    weird = SourceLoc("dir with space/a:1 in b.py", 12, "fn")
    x = b.add_input(f32(3), VarMeta(SourceLoc("m.py", 3, "<module>"), 'x "in"\n', "/gpu:0"))
    y = b.emit1(OPS["exp"], [x], meta=VarMeta(weird, "y", "/job:worker/task:1/cpu:0"))
    z = b.emit1(OPS["neg"], [y], meta=VarMeta(SourceLoc(" lead.py", -1, "two words"), "é\t∑"))
    graph = b.build([z])
    assert assert_round_trip(graph) == (
        'func main(a:f32[3]{device="/gpu:0"}) stage=traced {\n'
        '  b:f32[3]{device="/job:worker/task:1/cpu:0"} = exp a\n'
        "  c:f32[3] = neg b\n  return c\n}")
    lines = print_graph(graph, locations=True).splitlines()
    assert lines[0] == ('func main(a:f32[3]{device="/gpu:0", name="x \\"in\\"\\n", '
                        'loc=loc("m.py", 3, "<module>")}) stage=traced {')
    assert lines[1].endswith("= exp a  # dir with space/a:1 in b.py:12 in fn")
    assert lines[2] == ('  c:f32[3]{name="é\\t∑"} = neg b  '
                        '# loc(" lead.py", -1, "two words")')


def test_outputs_of_one_eqn_with_different_sources(test_ops):
    # NOTE: a region returning two values stands in for any op with two outputs.
    body = GraphBuilder("body")
    p = body.add_input(f32(2))
    body_graph = body.build([body.emit1(OPS["neg"], [p]), p])
    for first, second in [(SourceLoc("a.py", 1, "f"), None), (None, SourceLoc("b.py", 2, "g")),
                          (SourceLoc("a.py", 1, "f"), SourceLoc("b.py", 2, "g"))]:
        b = GraphBuilder()
        x = b.add_input(f32(2))
        u, v = b.emit(REGION, [x], {"body": body_graph})
        u.meta, v.meta = VarMeta(first), VarMeta(second)
        assert_round_trip(b.build([v, u]))


def test_no_output_eqn_and_no_input_eqn(test_ops):
    # NOTE: stateful ops may have no outputs; a region over a graph with none has none.
    sink = Graph([Var(f32(2))], [], [], name="sink")
    b = GraphBuilder()
    x = b.add_input(f32(2))
    b.emit(REGION, [x], {"body": sink})
    text = assert_round_trip(b.build([x]))
    assert "\n  () = _test_region[body=func sink(a:f32[2]) stage=traced {\n" in text


@pytest.mark.parametrize("value", [math.nan, -math.nan, math.inf, -math.inf, -0.0, 0.0,
                                   5e-324, 1e300, 0.1, -2.5, 1e-05, 123456789.0])
def test_float_params_read_back_bit_for_bit(value):
    b = GraphBuilder()
    graph = b.build([b.emit1(OPS["fill"], [], {"shape": (2,), "value": value, "dtype": "f32"})])
    assert_round_trip(graph)
    parsed = parse_graph(print_graph(graph)).eqns[0].params["value"]
    assert struct.pack("<d", parsed) == struct.pack("<d", value)


def test_nan_payloads_and_every_param_kind(test_ops):
    payload = struct.unpack("<d", struct.pack("<Q", 0xFFF0000000000123))[0]
    text = assert_round_trip(kinds_graph(scale=payload))
    assert "scale=nan(0xfff0000000000123)" in text
    assert "scale=-nan" in assert_round_trip(kinds_graph(scale=-math.nan))
    graph = kinds_graph(text='q"\\\n\x00\u2028😀', opt=-3, pairs=((1, -2), (), (True, None)),
                        dtype="bf16", flag=True, value=ConstValue(np.arange(4, dtype=np.uint8)))
    assert ('[dtype=bf16, flag=true, graphs=(), opt=-3, pairs=((1, -2), (), (true, none)), '
            'scale=1.0, text="q\\"\\\\\\n\\x00\\u2028😀", value=array(u8[4], [0, 1, 2, 3])] a'
            in assert_round_trip(graph))


def _bits32(bits: int) -> np.ndarray:
    return np.frombuffer(struct.pack("<I", bits), dtype=np.float32)


@pytest.mark.parametrize("array, form", [
    (np.array([[1.0, -0.0], [np.nan, -np.inf]], dtype=np.float32), "literal"),
    (np.array(3.5, dtype=np.float64), "literal"),
    (np.zeros((0, 3), dtype=np.int32), "literal"),
    (np.array([True, False]), "literal"),
    (np.array([2**62, -(2**63)], dtype=np.int64), "literal"),
    (np.array([0.1, 65504], dtype=np.float16), "literal"),
    (np.array([1.5, -3e38], dtype=dtypes.bfloat16.np_dtype), "literal"),
    (np.linspace(-1, 1, 1000, dtype=np.float32).reshape(10, 100), "b64"),
    (np.arange(17, dtype=np.int8), "b64"),
    (_bits32(0x7F800001), "b64"),       # a signalling NaN: a double would quiet it
    (_bits32(0xFFC00000), None),        # a negative NaN and a NaN payload: exact either way
    (_bits32(0x7FC00001), None),
], ids=lambda a: f"{a.dtype}{list(a.shape)}" if isinstance(a, np.ndarray) else str(a))
def test_constants_as_literals_or_base64(array, form, test_ops):
    text = assert_round_trip(kinds_graph(value=ConstValue(array)))
    if form is not None:
        assert ('b64"' in text) == (form == "b64"), text
    parsed = parse_graph(text).eqns[0].params["value"].array
    assert parsed.tobytes() == array.tobytes() and parsed.dtype == array.dtype
    assert parsed.shape == array.shape


def test_constant_op_holds_large_arrays():
    b = GraphBuilder()
    big = np.random.default_rng(0).standard_normal((40, 25)).astype(np.float32)
    graph = b.build([b.emit1(OPS["constant"], [], {"value": big})])
    assert 'array(f32[40,25], b64"' in assert_round_trip(graph)


def test_nested_graphs_have_their_own_scope(test_ops):
    inner = GraphBuilder("inner")
    p = inner.add_input(f32(3), VarMeta(SourceLoc("k.py", 1, "k")))
    e = inner.emit1(OPS["exp"], [p], meta=VarMeta(SourceLoc("k.py", 2, "k")))
    inner_graph = inner.build([e])
    middle = GraphBuilder("middle")
    q, r = middle.add_input(f32(3)), middle.add_input(f32(3))
    s = middle.emit1(REGION, [q], {"body": inner_graph})
    middle_graph = middle.build([middle.emit1(OPS["add"], [s, r])], stage="fused")
    b = GraphBuilder()
    x = b.add_input(f32(3))
    y = b.emit1(OPS["neg"], [x])
    z = b.emit1(REGION, [x, y], {"body": middle_graph}, VarMeta(SourceLoc("m.py", 9, "f")))
    w = b.emit1(KINDS, [z], {"opt": 1, "graphs": (inner_graph, (middle_graph,))})
    graph = b.build([w, z])
    verify(graph)
    assert assert_round_trip(graph) == """\
func main(a:f32[3]) stage=traced {
  b:f32[3] = neg a
  c:f32[3] = _test_region[body=func middle(a:f32[3], b:f32[3]) stage=fused {
    c:f32[3] = _test_region[body=func inner(a:f32[3]) stage=traced {
      b:f32[3] = exp a
      return b
    }] a
    d:f32[3] = add c b
    return d
  }] a b
  d:f32[3] = _test_kinds[dtype=f32, flag=false, graphs=(func inner(a:f32[3]) stage=traced {
    b:f32[3] = exp a
    return b
  }, (func middle(a:f32[3], b:f32[3]) stage=fused {
    c:f32[3] = _test_region[body=func inner(a:f32[3]) stage=traced {
      b:f32[3] = exp a
      return b
    }] a
    d:f32[3] = add c b
    return d
  },)), opt=1, pairs=(), scale=1.0, text="", value=none] c
  return d, c
}"""
    located = print_graph(graph, locations=True)
    assert "      b:f32[3] = exp a  # k.py:2 in k\n" in located
    assert '  }] a b  # m.py:9 in f\n' in located


def test_kernel_op_round_trips_with_its_body():
    inner = GraphBuilder("k")
    p, q = inner.add_input(f32(2, 3)), inner.add_input(f32(3))
    body = inner.build([inner.emit1(OPS["mul"], [inner.emit1(OPS["exp"], [p]), q]), p],
                       stage="body")
    b = GraphBuilder()
    x, y = b.add_input(f32(2, 3)), b.add_input(f32(3))
    outs = b.emit(OPS["kernel"], [x, y], {"body": body, "kind": "elementwise"},
                  meta=VarMeta(SourceLoc("m.py", 4, "model"), "k", "/cpu:0"))
    graph = b.build([*outs, outs[0]])
    verify(graph)
    assert assert_round_trip(graph) == """\
func main(a:f32[2,3], b:f32[3]) stage=traced {
  c:f32[2,3]{device="/cpu:0"}, d:f32[2,3]{device="/cpu:0"} = kernel[body=func k(a:f32[2,3], \
b:f32[3]) stage=body {
    c:f32[2,3] = exp a
    d:f32[2,3] = mul c b
    return d, a
  }, kind="elementwise"] a b
  return c, d, c
}"""


def test_blank_lines_comments_and_spacing_are_accepted():
    text = """
# a comment line
func  main ( a : f32 [ 2 , 3 ] )  stage = traced {

  # another
  b:f32[2,3]  =  add a   a
  return b
}

"""
    graph = parse_graph(text)
    assert print_graph(graph) == ("func main(a:f32[2,3]) stage=traced {\n"
                                  "  b:f32[2,3] = add a a\n  return b\n}")


# ---- random elementwise chains -------------------------------------------------------------

ELEMENTWISE = sorted(name for name, op in OPS.items()
                     if op.has(Tag.ELEMENTWISE) and op.arity and (not op.params or name == "cast"))
SHAPES = [(), (3,), (2, 3), (1, 3), (2, 1)]
DTYPES = [dtypes.float32, dtypes.bfloat16, dtypes.int32, dtypes.bool_]
metas_st = st.builds(VarMeta,
                     st.none() | st.builds(SourceLoc, st.text(max_size=8),
                                           st.integers(-5, 10**6), st.text(max_size=8)),
                     st.none() | st.text(max_size=6), st.none() | st.sampled_from(["/cpu:0", ""]))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_elementwise_chains_round_trip(data):
    b = GraphBuilder(data.draw(st.sampled_from(["main", "f", "with space", ""])))
    pool = [b.add_input(tensor_type(data.draw(st.sampled_from(SHAPES)),
                                    data.draw(st.sampled_from(DTYPES))), data.draw(metas_st))
            for _ in range(data.draw(st.integers(1, 3)))]
    for _ in range(data.draw(st.integers(0, 10))):
        op = OPS[data.draw(st.sampled_from(ELEMENTWISE))]
        ins = [data.draw(st.sampled_from(pool)) for _ in range(op.arity)]
        params = {"dtype": data.draw(st.sampled_from(DTYPES))} if op.params else {}
        try:
            pool.append(b.emit1(op, ins, params, data.draw(metas_st)))
        except TracejitError:
            pass    # operands of the wrong type or shape for this op: draw the next one
    outputs = data.draw(st.lists(st.sampled_from(pool), max_size=4))
    graph = b.build(outputs, stage=data.draw(st.sampled_from(["traced", "dce"])))
    verify(graph)
    assert_round_trip(graph)


# ---- malformed text ------------------------------------------------------------------------

HEAD = "func main(a:f32[3]) stage=traced {\n"
MALFORMED = [
    ("", 1, "expected 'func'"),
    ("func main(a:f32[3]) stage=traced {\n  return a\n", 3, "'}'"),
    (HEAD + "  b:f32[3] = frobnicate a\n  return b\n}", 2, "unknown op 'frobnicate'"),
    (HEAD + "  b:f32[3] = neg z\n  return b\n}", 2, "var z is not defined"),
    (HEAD + "  b:f32[3] = neg a\n  b:f32[3] = neg a\n  return b\n}", 3, "defined twice"),
    ("func main(a:f32[3], a:f32[3]) stage=traced {\n  return a\n}", 1, "defined twice"),
    (HEAD + "  b:f32[4] = neg a\n  return b\n}", 2, "neg gives f32[3], but the line says f32[4]"),
    (HEAD + "  b:i32[3] = neg a\n  return b\n}", 2, "but the line says i32[3]"),
    (HEAD + "  b:f32[3] = add a\n  return b\n}", 2, "takes 2 input"),
    (HEAD + "  b:f32[3] = cast a\n  return b\n}", 2, "missing parameter 'dtype'"),
    (HEAD + "  b:f32[3] = cast[dtype=1] a\n  return b\n}", 2, "dtype"),
    (HEAD + '  b:f32[3] = cast[dtype="float32"] a\n  return b\n}', 2, "normalized"),
    (HEAD + "  b:f32[3] = cast[dtype=f32, dtype=f32] a\n  return b\n}", 2, "given twice"),
    ("func main(a:f33[3]) stage=traced {\n  return a\n}", 1, "unknown dtype 'f33'"),
    ("func main(a:f32[-3]) stage=traced {\n  return a\n}", 1, "non-negative integer"),
    ("func main(a:f32[3]) stage=traced {\n  return a @\n}", 2, "unexpected character '@'"),
    (HEAD + "  b:f32[3] = neg a\n  return b\n}\nfunc", 5, "end of input after the graph"),
    (HEAD + "  b:f32[3] = neg a  # just a note\n  return b\n}", 2, "source location"),
    (HEAD + "  b:f32[3] = neg a  # loc(\"x\", 1)\n  return b\n}", 2, "expected ','"),
    (HEAD + '  b:f32[3]{loc=loc("x", 1, "f")} = neg a\n  return b\n}', 2, "comment at the end"),
    (HEAD + '  b:f32[3]{color="red"} = neg a\n  return b\n}', 2, "unknown var attribute"),
    (HEAD + '  b:f32[3]{name="x} = neg a\n  return b\n}', 2, "unterminated string"),
    (HEAD + '  b:f32[3]{name="\\q"} = neg a\n  return b\n}', 2, "bad escape"),
    (HEAD + "  b:f32[3] = neg a\n  return b c\n}", 3, "expected ',' or end of line"),
    (HEAD + "  b:f32[3] neg a\n  return b\n}", 2, "expected '='"),
    (HEAD + "  b:f32[3] = neg a\n}", 3, "expected an equation or 'return'"),
    (HEAD + "  return a\n  b:f32[3] = neg a\n}", 3, "'}' after the return"),
]
KIND_CASES = [
    ("opt=none, pairs=(1), scale=1.0", "trailing comma"),
    ("opt=none, scale=1", "normalized"),
    ("opt=none, scale=-true", "expected a value"),
    ("opt=none, scale=nan(0x1)", "not the bit pattern of a NaN"),
    ("opt=none, value=array(f32[2], [1.0])", "takes 2 float elements"),
    ("opt=none, value=array(i32[2], [1.0, 2.0])", "takes 2 int elements"),
    ("opt=none, value=array(u8[1], [300])", "do not fit uint8"),
    ('opt=none, value=array(f32[2], b64"AAAA")', "3 bytes do not make an array f32[2]"),
    ('opt=none, value=array(f32[1], b64"AA=A")', "bad base64"),
    ("opt=none, frob=1", "unknown parameter"),
]


@pytest.mark.parametrize("text, line, message", MALFORMED)
def test_malformed_text_names_the_line(text, line, message):
    with pytest.raises(ParseError, match=rf"^line {line}: ") as info:
        parse_graph(text)
    assert message in str(info.value)
    assert info.value.lineno == line


@pytest.mark.parametrize("params, message", KIND_CASES)
def test_malformed_param_values(params, message, test_ops):
    text = HEAD + f"  b:f32[3] = _test_kinds[{params}] a\n  return b\n}}"
    with pytest.raises(ParseError, match=r"^line 2: ") as info:
        parse_graph(text)
    assert message in str(info.value)


def test_errors_inside_nested_graphs_name_the_global_line(test_ops):
    text = (HEAD + "  b:f32[3] = _test_region[body=func body(a:f32[3]) stage=traced {\n"
            "    b:f32[3] = neg a\n    c:f32[3] = neg q\n    return c\n  }] a\n  return b\n}")
    with pytest.raises(ParseError, match=r"^line 4: var q is not defined"):
        parse_graph(text)
    text = (HEAD + "  b:f32[2] = _test_region[body=func body(a:f32[3]) stage=traced {\n"
            "    b:f32[3] = neg a\n    return b\n  }] a\n  return b\n}")
    with pytest.raises(ParseError, match=r"^line 2: _test_region gives f32\[3\], but the "
                                         r"line says f32\[2\]"):
        parse_graph(text)


def test_printing_an_unknown_param_type_fails_clearly(test_ops):
    graph = kinds_graph()
    eqn = graph.eqns[0]
    bad = Params(dict(eqn.params) | {"opt": np.int64(3)})
    with pytest.raises(TypeError, match="cannot print a param of type int64"):
        print_graph(graph.replace(eqns=[Eqn(eqn.op, eqn.ins, eqn.outs, bad)]))
