"""simplify_algebra: each rule's rewrite, the rewrites that must not happen for floats,
and the log of fired rules."""

import logging
from collections import Counter

import numpy as np
import pytest

from tracejit.ir import GraphBuilder, interpret
from tracejit.passes import simplify_algebra

from .util import assert_same_results, const, emit, op_names, random_args, tensor

# Values that break sloppy float rewrites: signed zeros, infinities, NaN, subnormals.
SPECIALS = np.array([0.0, -0.0, 1.5, -3.0, np.inf, -np.inf, np.nan, 1e-45, -1e-40, 3e38],
                    np.float32)


def simplified(g, expect_fired=None):
    fired = Counter()
    out = simplify_algebra(g, fired=fired)
    assert out.stage == "simplify_algebra"
    if expect_fired is not None:
        assert dict(fired) == expect_fired
    return out


def one_input(dtype="f32", shape=SPECIALS.shape):
    b = GraphBuilder()
    return b, b.add_input(tensor(shape, dtype))


def args_for(g):
    x = g.inputs[0]
    if x.dtype.is_float and x.shape == SPECIALS.shape:
        return [SPECIALS.astype(x.dtype.np_dtype)] + random_args(g)[1:]
    return random_args(g)


@pytest.mark.parametrize("rule, build, left", [
    ("mul_one", lambda b, x: emit(b, "mul", const(b, 1.0), x), []),
    ("add_zero", lambda b, x: emit(b, "add", x, const(b, -0.0)), []),
    ("sub_zero", lambda b, x: emit(b, "sub", x, const(b, 0.0)), []),
    ("div_one", lambda b, x: emit(b, "div", x, const(b, 1.0)), []),
    ("pow_one", lambda b, x: emit(b, "pow", x, const(b, 1.0)), []),
    ("neg_neg", lambda b, x: emit(b, "neg", emit(b, "neg", x)), ["neg"]),   # dead now
    ("cast_same", lambda b, x: emit(b, "cast", x, dtype="f32"), []),
    ("max_same", lambda b, x: emit(b, "maximum", x, x), []),
    ("stop_gradient", lambda b, x: emit(b, "stop_gradient", x), []),
    ("select_same", lambda b, x: emit(b, "select", emit(b, "less", x, x), x, x), ["less"]),
    ("div_power_of_two", lambda b, x: emit(b, "div", x, const(b, 0.25)), ["mul"]),
])
def test_each_rule_rewrites_exactly(rule, build, left):
    b, x = one_input()
    g = b.build([build(b, x)])
    out = simplified(g, {rule: 1})
    # the removed constants are left for DCE; what else remains is the rewrite
    assert [n for n in op_names(out) if n != "constant"] == left
    assert_same_results(g, out, args_for(g))


def test_integer_zero_rules():
    b, i = one_input("i32", (5,))
    g = b.build([emit(b, "mul", i, const(b, 0, "i32")), emit(b, "add", const(b, 0, "i32"), i)])
    out = simplified(g, {"mul_zero_int": 1, "add_zero": 1})
    zeros = [e for e in out.eqns if e.outs[0] is out.outputs[0]]
    assert out.outputs[1] is i and zeros[0].op.name == "fill"
    assert_same_results(g, out, random_args(g))


@pytest.mark.parametrize("build", [
    lambda b, x: emit(b, "mul", x, const(b, 0.0)),      # inf * 0 and nan * 0 are nan
    lambda b, x: emit(b, "add", x, const(b, 0.0)),      # -0.0 + 0.0 is +0.0
    lambda b, x: emit(b, "sub", x, const(b, -0.0)),     # -0.0 - -0.0 is +0.0
    lambda b, x: emit(b, "div", x, const(b, 3.0)),      # 1/3 is not exact
    lambda b, x: emit(b, "div", x, const(b, 0.0)),
    lambda b, x: emit(b, "div", x, const(b, np.inf)),
])
def test_inexact_float_rewrites_do_not_fire(build):
    b, x = one_input()
    g = b.build([build(b, x)])
    assert simplified(g, {}) == g


def test_float_zero_rules_keep_signed_zeros():
    b, x = one_input()
    g = b.build([emit(b, "add", x, const(b, -0.0)), emit(b, "sub", x, const(b, 0.0))])
    out = simplified(g)
    got = interpret(out, [SPECIALS])
    for value in got:
        assert np.array_equal(np.signbit(value), np.signbit(SPECIALS))


def test_division_by_a_power_of_two_array_and_half_precision():
    b, x = one_input()
    c = const(b, [2.0, 0.5, -4.0, 2.0 ** -120, 2.0 ** 100, 1.0, 8.0, 0.125, 2.0 ** 126, -1.0])
    g = b.build([emit(b, "div", x, c)])
    out = simplified(g, {"div_power_of_two": 1})
    assert_same_results(g, out, args_for(g))
    b, h = one_input("bf16", (4,))
    g = b.build([emit(b, "div", h, const(b, 4.0, "bf16"))])
    out = simplified(g, {"div_power_of_two": 1})
    assert_same_results(g, out, [np.array([1.0, -3.0, np.inf, 7e-39], "float32").astype(
        h.dtype.np_dtype)])


def test_power_of_two_whose_reciprocal_overflows_is_kept():
    b, x = one_input()
    g = b.build([emit(b, "div", x, const(b, 2.0 ** -149))])   # 1/2**-149 is not finite
    assert simplified(g, {}) == g


def test_rules_that_would_change_a_type_do_not_fire():
    b, x = one_input(shape=(3,))
    ones = emit(b, "fill", shape=(2, 3), value=1.0, dtype="f32")
    g = b.build([emit(b, "mul", x, ones)])      # x * 1 broadcasts x: not x itself
    assert simplified(g, {}) == g


def test_movement_chains_collapse():
    b, x = one_input(shape=(2, 3, 4))
    t = emit(b, "transpose", emit(b, "transpose", x, perm=(1, 2, 0)), perm=(2, 0, 1))
    r = emit(b, "reshape", emit(b, "expand_dims", emit(b, "reshape", x, shape=(6, 4)),
                                axes=(0,)), shape=(24,))
    tt = emit(b, "transpose", emit(b, "transpose", x, perm=(1, 0, 2)), perm=(0, 2, 1))
    bb = emit(b, "broadcast_to", emit(b, "broadcast_to", x, shape=(1, 2, 3, 4)),
              shape=(5, 2, 3, 4))
    g = b.build([t, r, tt, bb])
    out = simplified(g)
    assert out.outputs[0] is x
    assert [e.op.name for e in out.eqns if e.outs[0] in out.outputs] == [
        "reshape", "transpose", "broadcast_to"]
    composed = [e for e in out.eqns if e.outs[0] is out.outputs[2]][0]
    assert composed.params["perm"] == (1, 2, 0)
    assert_same_results(g, out, random_args(g))


def test_double_logical_not_and_constant_select():
    b = GraphBuilder()
    p, x, y = (b.add_input(tensor([3], "bool")), b.add_input(tensor([3])),
               b.add_input(tensor([3])))
    n = emit(b, "logical_not", emit(b, "logical_not", p))
    s = emit(b, "select", const(b, True, "bool"), x, y)
    g = b.build([n, s])
    out = simplified(g, {"not_not": 1, "select_same": 1})
    assert out.outputs == (p, x)


def test_fired_rules_are_logged(caplog):
    b, x = one_input()
    g = b.build([emit(b, "neg", emit(b, "neg", emit(b, "mul", x, const(b, 1.0))))])
    with caplog.at_level(logging.DEBUG, logger="tracejit.passes"):
        simplify_algebra(g)
    fired = [r.getMessage() for r in caplog.records if "rule" in r.getMessage()]
    assert len(fired) == 2
    assert "mul_one" in fired[0] and "neg_neg" in fired[1]
