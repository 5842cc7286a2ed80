"""Gradients as a graph transformation (passes/autodiff.py), checked op by op.

Every op with a gradient rule is differentiated on each of its OP_EXAMPLES (in float64)
and compared with central finite differences of ``sum(out * w)`` for random weights
``w``; inputs are drawn away from the points where an op is not differentiable.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from tests.ir.op_examples import BY_NAME, T, control_examples, f64, i32
from tracejit.ir import OPS, GraphBuilder, Tag, TensorType, interpret
from tracejit.ir.errors import TracejitError
from tracejit.ir.ops_autodiff import register_custom_vjp
from tracejit.ir.verifier import verify
from tracejit.passes.autodiff import GradientError, add_gradients, gradient_graph

EPS, RTOL, ATOL = 1e-6, 1e-5, 1e-6

# Ops whose result is not a float function of float inputs, so they need no rule.
NOT_DIFFERENTIABLE = {"argmax", "argmin", "any", "all", "isnan", "isfinite", "logical_not",
                      "int8_matmul"}
# Examples beyond OP_EXAMPLES: other axes; random indices repeat, which is fine.
EXTRA_EXAMPLES = {
    "scatter_add": [([T((2, 4), f64), T((3,), i32), T((2, 3), f64)], {"axis": 1})],
    "gather": [([T((2, 4), f64), T((3,), i32)], {"axis": 1})],
    # control flow: the same regions in float64 (their types are part of the op)
    **{op.name: examples for op, examples in control_examples(f64).items()},
}
POSITIVE = {"log", "log1p", "sqrt", "rsqrt"}


def _emit(b, name, *ins, **params):
    """The op's (first) output: top_k's values; its indices have no gradient."""
    return b.emit(OPS[name], list(ins), params)[0]


def _to_f64(t: TensorType, everything: bool) -> TensorType:
    return T(t.shape, f64) if t.dtype.is_float or everything else t


def float64_examples(name):
    """(types, params) in float64: float inputs converted; for an example without float
    inputs, every input is converted where the op accepts that."""
    out = []
    for types, params in BY_NAME.get(name, []) + EXTRA_EXAMPLES.get(name, []):
        everything = not any(t.dtype.is_float for t in types)
        params = {k: (f64 if k == "dtype" and v.is_float else v) for k, v in params.items()}
        for candidate in (False, True) if everything else (False,):
            new = [_to_f64(t, candidate) for t in types]
            try:
                b = GraphBuilder()
                _emit(b, name, *[b.add_input(t) for t in new], **params)
            except TracejitError:
                continue
            if any(t.dtype.is_float for t in new):
                out.append((new, params))
    return out


def _index_bound(name, types, params, position):
    if name == "one_hot":
        return params["depth"]
    if name == "cond":
        return len(params["branches"])
    if name == "host_callback":       # any integers: the callback only sees them
        return 5
    return types[0].shape[params["axis"]]


def random_inputs(rng, name, types, params):
    """Inputs away from kinks, discontinuities and singularities of op ``name``."""
    shape = np.broadcast_shapes(*[t.shape for t in types]) if Tag.ELEMENTWISE in OPS[
        name].tags else None
    arrays = []
    for k, t in enumerate(types):
        if t.dtype.is_bool:
            arrays.append(rng.random(t.shape) < 0.5)
        elif t.dtype.is_integer:
            n = _index_bound(name, types, params, k)
            arrays.append(rng.integers(-n if name == "gather" else 0, n,
                                       size=t.shape).astype(t.dtype.np_dtype))
        elif name in POSITIVE or (name == "pow" and k == 0):
            arrays.append(rng.uniform(0.5, 2.0, t.shape))
        else:   # magnitudes in [0.5, 1.5]: away from 0, where abs, relu, sign have kinks
            arrays.append(rng.uniform(0.5, 1.5, t.shape) * rng.choice([-1.0, 1.0], t.shape))
    if name in ("floor", "ceil"):
        arrays[0] = rng.integers(-3, 3, types[0].shape) + rng.uniform(0.2, 0.8, types[0].shape)
    elif name == "round":
        arrays[0] = rng.integers(-3, 3, types[0].shape) + rng.uniform(-0.3, 0.3, types[0].shape)
    elif name in ("mod", "floordiv"):     # a / b at least 0.2 from an integer
        b = rng.uniform(0.5, 1.5, types[1].shape)
        assert types[0].shape == shape, "a has the broadcast shape in these examples"
        arrays = [(rng.integers(-3, 3, shape) + rng.uniform(0.2, 0.8, shape)) * b, b]
    elif name == "clip":     # x inside (-0.5, 0.5) or outside +-2, bounds near +-1
        lo = -1 - 0.3 * rng.random(types[1].shape)
        hi = 1 + 0.3 * rng.random(types[2].shape)
        x = rng.choice([-2.5, -0.3, 0.3, 2.5], types[0].shape)
        arrays = [x + rng.uniform(-0.1, 0.1, types[0].shape), lo, hi]
    return [np.asarray(a) for a in arrays]


def check_gradient(name, types, params, arrays, rng, build=None):
    """Compare add_gradients with central differences of sum(out * w)."""
    b = GraphBuilder()
    ins = [b.add_input(t) for t in types]
    out = build(b, ins) if build else _emit(b, name, *ins, **params)
    forward = b.build([out])
    w_var = b.add_input(out.type)
    grads = add_gradients(b, [out], ins, [w_var])
    for t, gvar in zip(types, grads, strict=True):
        if not t.dtype.is_float:
            assert gvar is None, f"{name}: an integer input got a gradient"
        elif out.dtype.is_float:
            assert gvar is not None and gvar.type == t, (name, gvar, t)
    if not out.dtype.is_float:
        assert all(g is None for g in grads)
        return
    w = rng.normal(size=out.shape)
    graph = b.build([g for g in grads if g is not None], stage="autodiff")
    verify(graph)
    got = iter(interpret(graph, [*arrays, w], check=True))
    for k, t in enumerate(types):
        if not t.dtype.is_float:
            continue
        expected = np.zeros(t.shape)
        for idx in np.ndindex(*t.shape):
            hi, lo = [a.copy() for a in arrays], [a.copy() for a in arrays]
            hi[k][idx] += EPS
            lo[k][idx] -= EPS
            f_hi, f_lo = (np.sum(interpret(forward, xs)[0] * w) for xs in (hi, lo))
            expected[idx] = (f_hi - f_lo) / (2 * EPS)
        if name == "stop_gradient":
            expected[...] = 0.0
        np.testing.assert_allclose(next(got), expected, rtol=RTOL, atol=ATOL,
                                   err_msg=f"{name} input {k} {types} {params}")


DIFFERENTIABLE = sorted(n for n, op in OPS.items() if op.vjp is not None and n != "custom_vjp")
CASES = [pytest.param(name, types, params, id=f"{name}-{i}")
         for name in DIFFERENTIABLE for i, (types, params) in enumerate(float64_examples(name))]


@pytest.mark.parametrize("name, types, params", CASES)
def test_gradient_matches_finite_differences(name, types, params):
    rng = np.random.default_rng(zlib.crc32(f"{name}{types}".encode()))
    check_gradient(name, types, params, random_inputs(rng, name, types, params), rng)


def test_every_differentiable_op_has_a_rule_and_an_example():
    wanted = {Tag.ELEMENTWISE, Tag.REDUCE, Tag.MOVEMENT, Tag.LINALG}
    for name, op in OPS.items():
        exempt = name in NOT_DIFFERENTIABLE or op.tags & {Tag.COMPARISON, Tag.LOGICAL}
        if (op.tags & wanted and not exempt) or name in ("custom_vjp", "scatter_add"):
            assert op.vjp is not None, f"op {name} has no gradient rule (vjp=)"
    for name in DIFFERENTIABLE:
        assert float64_examples(name), f"op {name} has no float example to check its gradient"
    # the exemptions are really not float -> float
    for name in NOT_DIFFERENTIABLE:
        for types, params in float64_examples(name):
            b = GraphBuilder()
            out = _emit(b, name, *[b.add_input(t) for t in types], **params)
            assert not out.dtype.is_float, name


def test_custom_vjp_uses_the_registered_rule():
    """custom_vjp(x, y=broadcast(sin x)) differentiated by the true rule sum(ct) * cos x."""
    rule = register_custom_vjp(lambda g, xs, cts: [
        g.op("sum", cts[0], axes=(0,), keepdims=False) * g.op("cos", xs[0])])
    ((x_t, y_t), params) = BY_NAME["custom_vjp"][0]

    def build(b, ins):
        y = _emit(b, "broadcast_to", _emit(b, "sin", ins[0]), shape=y_t.shape)
        return _emit(b, "custom_vjp", ins[0], y, num_outputs=1, rule=rule)

    rng = np.random.default_rng(0)
    check_gradient("custom_vjp", [T(x_t.shape, f64)], params, [rng.normal(size=x_t.shape)],
                   rng, build)
    # a rule returning a wrong number of gradients is reported
    bad = register_custom_vjp(lambda g, xs, cts: [])
    b = GraphBuilder()
    x = b.add_input(T((3,), f64))
    y = _emit(b, "custom_vjp", x, _emit(b, "exp", x), num_outputs=1, rule=bad)
    with pytest.raises(TracejitError, match="returned 0 values for 1 inputs"):
        add_gradients(b, [y], [x])


# ---- semantics -------------------------------------------------------------------------------

def grads_of(build, arrays, wrt=None, dtype=f64):
    """The gradient of sum(build(*inputs)) via gradient_graph, and the graph."""
    b = GraphBuilder()
    ins = [b.add_input(T(np.shape(a), a.dtype if a.dtype.kind in "iub" else dtype))
           for a in arrays]
    graph = gradient_graph(b.build([build(b, *ins)]), wrt)
    verify(graph)
    return interpret(graph, list(arrays), check=True)[1:], graph


def test_broadcasting_and_reductions_give_gradients_in_the_input_shape():
    x, y, s = np.ones((3, 1)), np.arange(4.0), np.array(2.0)
    (gx, gy, gs), _ = grads_of(lambda b, x, y, s: _emit(b, "mul", _emit(b, "add", x, y), s),
                              [x, y, s])
    np.testing.assert_allclose(gx, np.full((3, 1), 8.0))
    np.testing.assert_allclose(gy, np.full(4, 6.0))
    np.testing.assert_allclose(gs, np.sum(x + y))
    z = np.arange(24.0).reshape(2, 3, 4)
    for op, scale in (("sum", 1.0), ("mean", 1 / 8)):
        for keepdims in (False, True):
            def build(b, z, op=op, keepdims=keepdims):
                r = _emit(b, op, z, axes=(0, 2), keepdims=keepdims)
                return _emit(b, "sum", r, axes=tuple(range(len(r.shape))))
            (gz,), _ = grads_of(build, [z])
            np.testing.assert_allclose(gz, np.full(z.shape, scale))


def test_integer_inputs_get_no_gradient_and_unconnected_inputs_get_none():
    b = GraphBuilder()
    x, idx, free = (b.add_input(T((4,), f64)), b.add_input(T((2,), i32)),
                    b.add_input(T((4,), f64)))
    y = _emit(b, "gather", x, idx, axis=0)
    y = _emit(b, "mul", y, _emit(b, "cast", idx, dtype=f64))
    gx, gidx, gfree = add_gradients(b, [y], [x, idx, free])
    assert gx is not None and gidx is None and gfree is None


def test_stop_gradient_gives_zero():
    x = np.array([1.0, -2.0, 3.0])
    (gx,), _ = grads_of(lambda b, x: _emit(b, "add", _emit(b, "mul", x, x),
                                           _emit(b, "stop_gradient", _emit(b, "exp", x))), [x])
    np.testing.assert_allclose(gx, 2 * x)


def test_ties_prod_zeros_and_pow_at_nonpositive_bases():
    (g,), _ = grads_of(lambda b, x: _emit(b, "max", x, axes=(0,)), [np.array([1.0, 3, 3, 2])])
    np.testing.assert_allclose(g, [0, 0.5, 0.5, 0])       # split evenly among ties
    (ga, gb), _ = grads_of(lambda b, a, c: _emit(b, "maximum", a, c),
                           [np.array([1.0, 2.0]), np.array([1.0, 1.0])])
    np.testing.assert_allclose(ga, [1, 1])                 # a tie goes to the first operand
    np.testing.assert_allclose(gb, [0, 0])
    for x, want in (([2.0, 3, 4], [12, 8, 6]), ([2.0, 0, 4], [0, 8, 0]), ([0.0, 3, 0], [0, 0, 0])):
        (g,), _ = grads_of(lambda b, x: _emit(b, "prod", x, axes=(0,)), [np.array(x)])
        np.testing.assert_allclose(g, want)
    (ga, gb), _ = grads_of(lambda b, a, c: _emit(b, "pow", a, c),
                           [np.array([-2.0, 0.0, 2.0]), np.array([2.0, 2.0, 2.0])])
    np.testing.assert_allclose(ga, [-4, 0, 4])
    np.testing.assert_allclose(gb, [0, 0, 4 * np.log(2)])   # a <= 0: 0, not NaN


def test_op_without_rule_on_the_path_raises():
    types, params = BY_NAME.get("kernel", [(None, None)])[0]
    if types is None:
        pytest.skip("no kernel op")
    b = GraphBuilder()
    x = b.add_input(types[0])
    (y,) = b.emit(OPS["kernel"], [x], params)
    with pytest.raises(GradientError, match="no gradient is defined for op kernel"):
        add_gradients(b, [y], [x])


def test_gradient_graph_structure():
    b = GraphBuilder("f")
    x, n, unused = b.add_input(T((3,), f64)), b.add_input(T((), i32)), b.add_input(T((2,), f64))
    y = _emit(b, "sum", _emit(b, "square", x), axes=(0,))
    graph = gradient_graph(b.build([y, _emit(b, "neg", x), n]))
    assert graph.stage == "autodiff" and graph.name == "f"
    assert [v.type for v in graph.outputs] == [y.type, x.type, n.type, x.type, unused.type]
    x_in = np.array([1.0, 2.0, -3.0])
    outs = interpret(graph, [x_in, np.int32(4), np.ones(2)], check=True)
    np.testing.assert_allclose(outs[3], 2 * x_in)
    np.testing.assert_array_equal(outs[4], [0, 0])
    only = gradient_graph(b.build([y]), wrt=[0])
    assert len(only.outputs) == 2 and only.outputs[1].type == x.type


# ---- second derivatives ----------------------------------------------------------------------

def _softmax(b, x):
    e = _emit(b, "exp", _emit(b, "sub", x, _emit(b, "max", x, axes=(1,), keepdims=True)))
    return _emit(b, "div", e, _emit(b, "sum", e, axes=(1,), keepdims=True))


SECOND = {
    "tanh": (lambda b, x: _emit(b, "tanh", x), [(2, 3)]),
    "sigmoid": (lambda b, x: _emit(b, "sigmoid", x), [(2, 3)]),
    "exp": (lambda b, x: _emit(b, "exp", x), [(4,)]),
    "log": (lambda b, x: _emit(b, "log", x), [(4,)]),
    "mul": (lambda b, x, y: _emit(b, "mul", _emit(b, "mul", x, y), x), [(2, 3), (3,)]),
    "div": (lambda b, x, y: _emit(b, "div", x, y), [(2, 3), (3,)]),
    "pow": (lambda b, x, y: _emit(b, "pow", x, y), [(2, 3), (2, 3)]),
    "matmul": (lambda b, x, y: _emit(b, "square", _emit(b, "matmul", x, y)), [(2, 3), (3, 2)]),
    "sum": (lambda b, x: _emit(b, "sum", _emit(b, "mul", x, _emit(b, "mul", x, x)), axes=(1,)),
            [(2, 3)]),
    "mean": (lambda b, x: _emit(b, "square", _emit(b, "mean", _emit(b, "square", x),
                                                    axes=(0,), keepdims=True)), [(2, 3)]),
    "max": (lambda b, x: _emit(b, "max", _emit(b, "square", x), axes=(1,)), [(2, 3)]),
    "softmax": (_softmax, [(2, 4)]),
}


def _first_derivative(build, shapes, v_weights=False):
    """A graph: inputs, w (the first-order weights)[, v] -> grads of sum(f * w)[, and the
    grads of sum(grads * v)]."""
    b = GraphBuilder()
    xs = [b.add_input(T(s, f64)) for s in shapes]
    out = build(b, *xs)
    w = b.add_input(out.type)
    first = add_gradients(b, [out], xs, [w])
    if not v_weights:
        return b.build(first)
    vs = [b.add_input(x.type) for x in xs]
    return b.build(add_gradients(b, first, xs, vs), stage="autodiff")


@pytest.mark.parametrize("name", sorted(SECOND))
def test_second_derivative(name):
    build, shapes = SECOND[name]
    rng = np.random.default_rng(7)
    xs = [rng.uniform(0.5, 1.5, s) for s in shapes]
    w = rng.normal(size=interpret(_build_forward(build, shapes), xs)[0].shape)
    vs = [rng.normal(size=s) for s in shapes]
    first = _first_derivative(build, shapes)
    second = _first_derivative(build, shapes, v_weights=True)
    verify(second)
    got = interpret(second, [*xs, w, *vs], check=True)
    for k, x in enumerate(xs):
        expected = np.zeros(x.shape)
        for idx in np.ndindex(*x.shape):
            hi, lo = [a.copy() for a in xs], [a.copy() for a in xs]
            hi[k][idx] += EPS
            lo[k][idx] -= EPS
            d = [np.sum((gh - gl) * v) for gh, gl, v in zip(
                interpret(first, [*hi, w]), interpret(first, [*lo, w]), vs, strict=True)]
            expected[idx] = sum(d) / (2 * EPS)
        np.testing.assert_allclose(got[k], expected, rtol=1e-4, atol=1e-5, err_msg=name)


def _build_forward(build, shapes):
    b = GraphBuilder()
    return b.build([build(b, *[b.add_input(T(s, f64)) for s in shapes])])
