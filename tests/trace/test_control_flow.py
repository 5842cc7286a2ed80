"""The control-flow front end: tj.cond / switch / case / while_loop / fori_loop / scan,
inside @jit (compiled) and eagerly (Python control flow), with the same results;
pytrees, captured values, variables assigned in loop bodies, errors that name the
user's line, and gradients against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tests.trace.test_autodiff import numeric_grad
from tracejit.ir.errors import ShapeError, TracejitError
from tracejit.trace.values import TracerError

F = np.float32


def both(fn, *args):
    """fn run eagerly and under jit: the same values."""
    eager = fn(*args)
    jitted = tj.jit(fn)(*args)
    for e, j in zip(*(tj.tree_leaves(v) if hasattr(tj, "tree_leaves") else _leaves(v)
                      for v in (eager, jitted)), strict=True):
        np.testing.assert_allclose(np.asarray(j), np.asarray(e), rtol=1e-6, atol=1e-6)
    return jitted


def _leaves(tree):
    if isinstance(tree, (tuple, list)):
        return [leaf for item in tree for leaf in _leaves(item)]
    if isinstance(tree, dict):
        return [leaf for key in sorted(tree) for leaf in _leaves(tree[key])]
    return [tree]


def test_cond_switch_and_case_pick_a_branch():
    x = np.array([1.0, -2.0, 3.0], F)
    for p in (0.5, -0.5):
        both(lambda p, x: tj.cond(p > 0, lambda x: x * 2.0, lambda x: tj.abs(x) - 1.0, x),
             F(p), x)
    for k in (-1, 0, 1, 2, 7):
        both(lambda k, x: tj.switch(k, [lambda x: x, lambda x: x * x, lambda x: -x], x),
             np.int32(k), x)
    for v in (-3.0, 0.5, 3.0):
        both(lambda v: tj.case([(v < 0, lambda: v * 10.0), (v < 1, lambda: v + 100.0)],
                               default=lambda: v), F(v))


def test_cond_branches_may_return_pytrees_and_close_over_values():
    def f(p, x, w):
        return tj.cond(p, lambda x: {"a": x * w, "b": (x, w)},
                       lambda x: {"a": x + w, "b": (x * 0.0, w * 2.0)}, x)
    for p in (True, False):
        out = both(f, np.bool_(p), np.arange(3, dtype=F), np.full(3, 2, F))
        assert set(out) == {"a", "b"}


def test_while_loop_with_a_data_dependent_trip_count():
    def newton_sqrt(a):
        def body(s):
            x, n = s
            return 0.5 * (x + a / x), n + 1
        return tj.while_loop(lambda s: tj.abs(s[0] * s[0] - a) > 1e-5 * a, body, (a, 0))
    x, n = both(newton_sqrt, F(2.0))
    assert abs(float(x) - np.sqrt(2)) < 1e-5 and int(n) > 2
    # max_iterations stops it early
    capped = tj.jit(lambda a: tj.while_loop(lambda v: v < 1e9, lambda v: v * 2.0, a,
                                            max_iterations=5))
    assert float(capped(F(1.0))) == 32.0


def test_fori_loop_with_static_and_traced_bounds():
    def body(i, v):
        return (v * 0.5 + tj.cast(i, "float32"))
    both(lambda x: tj.fori_loop(2, 9, body, x), np.zeros(3, F))
    traced = tj.jit(lambda n, x: tj.fori_loop(0, n, body, x))
    want = np.zeros(3, F)
    for i in range(6):
        want = want * F(0.5) + F(i)
    np.testing.assert_allclose(np.asarray(traced(np.int32(6), np.zeros(3, F))), want)
    ir = tj.make_ir(lambda x: tj.fori_loop(0, 4, body, x))(np.zeros(3, F))
    assert [e.op.name for e in ir.eqns][-1] == "scan"
    ir = tj.make_ir(lambda n, x: tj.fori_loop(0, n, body, x))(np.int32(3), np.zeros(3, F))
    assert "while_loop" in [e.op.name for e in ir.eqns]


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_over_pytrees(reverse):
    def f(c0, xs):
        def step(c, x):
            a, b = x["a"], x["b"]
            return c * a + b, (c, tj.reduce_sum(a))
        return tj.scan(step, c0, {"a": xs[0], "b": xs[1]}, reverse=reverse)
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((2, 5, 3)).astype(F)
    carry, (cs, sums) = both(f, np.ones(3, F), xs)
    assert np.asarray(cs).shape == (5, 3) and np.asarray(sums).shape == (5,)


def test_scan_with_length_and_no_xs_and_an_empty_scan():
    both(lambda c: tj.scan(lambda c, _: (c + 1.0, c * c), c, length=4), np.ones(2, F))
    carry, ys = tj.scan(lambda c, x: (c + x, c * 2.0), np.ones(2, F), np.zeros((0, 2), F))
    assert np.asarray(ys).shape == (0, 2) and (np.asarray(carry) == 1).all()


def test_a_training_loop_as_one_native_call_updates_variables():
    rng = np.random.default_rng(0)
    xs = rng.random((50, 20)).astype(F)
    ys = (0.3 * xs + 0.1).astype(F)
    w, b = tj.Variable(F(0.0)), tj.Variable(F(0.0))
    opt = tj.train.GradientDescentOptimizer(0.5)

    @tj.jit
    def train(xs, ys):
        def step(i, total):
            loss = lambda: tj.reduce_mean(tj.square(w * xs[i] + b - ys[i]))  # noqa: E731
            opt.minimize(loss)
            return total + loss()
        return tj.fori_loop(0, 50, step, F(0.0))
    train(xs, ys)
    # the same 50 steps by hand
    wv = bv = 0.0
    for x, y in zip(xs.astype(np.float64), ys.astype(np.float64), strict=True):
        err = wv * x + bv - y
        wv, bv = wv - 0.5 * 2 * np.mean(err * x), bv - 0.5 * 2 * np.mean(err)
    assert abs(float(np.asarray(w.numpy())) - wv) < 1e-4
    assert abs(float(np.asarray(b.numpy())) - bv) < 1e-4
    assert "scan" in [e.op.name for e in tj.make_ir(train)(xs, ys).eqns]


def test_a_variable_assigned_in_a_branch():
    v = tj.Variable(np.zeros(2, F))

    @tj.jit
    def bump(p):
        tj.cond(p, lambda: v.assign_add(np.ones(2, F)), lambda: v.read_value())
        return v.read_value()
    np.testing.assert_array_equal(np.asarray(bump(np.bool_(True))), [1, 1])
    np.testing.assert_array_equal(np.asarray(bump(np.bool_(False))), [1, 1])
    np.testing.assert_array_equal(np.asarray(bump(np.bool_(True))), [2, 2])


def test_user_mistakes_are_named_at_the_users_line():
    with pytest.raises(ShapeError, match="carried value 0 is f32\\[3\\] before the body and "
                                         "f32\\[\\] after it") as info:
        tj.jit(lambda x: tj.while_loop(lambda v: tj.reduce_sum(v) < 10.0,
                                       lambda v: tj.reduce_sum(v), x))(np.ones(3, F))
    assert "test_control_flow.py" in str(info.value)
    with pytest.raises(ShapeError, match="branch 1 returns"):
        tj.jit(lambda p, x: tj.cond(p, lambda x: x, lambda x: x[:2], x))(np.bool_(True),
                                                                          np.ones(3, F))
    with pytest.raises(ShapeError, match="predicate must be a scalar"):
        tj.jit(lambda p, x: tj.cond(p, lambda x: x, lambda x: x, x))(np.ones(2, np.bool_),
                                                                     np.ones(3, F))
    with pytest.raises(ShapeError, match="disagree"):
        tj.scan(lambda c, x: (c, x), F(0), np.ones((3, 2), F), length=4)
    with pytest.raises(TracerError, match="tracejit.cond") as info:
        tj.jit(lambda x: x if x > 0 else -x)(F(1.0))
    assert "tracejit.while_loop" in str(info.value)
    with pytest.raises(TracejitError):
        tj.jit(lambda x: tj.while_loop(lambda v: v, lambda v: v, x))(F(1.0))


# ---- gradients against finite differences ---------------------------------------------------

def check_grad(f, x, rtol=2e-2, atol=2e-3):
    got = np.asarray(tj.grad(f)(x))
    want = numeric_grad(lambda a: float(f(a.astype(F))), x, eps=1e-3)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


W = np.array([0.3, -0.7, 0.5], F)


def test_gradient_through_the_taken_branch():
    def f(x):
        return (tj.reduce_sum(tj.cond(tj.reduce_sum(x) > 0, lambda x: tj.sin(x) * W,
                                             lambda x: x * x, x)))
    check_grad(f, np.array([0.5, 1.0, 0.2], F))
    check_grad(f, np.array([-0.5, -1.0, 0.2], F))


@pytest.mark.parametrize("remat", [False, True])
def test_gradient_of_scan_with_stacked_residuals_or_remat(remat):
    def f(w):
        def cell(h, x):
            h = tj.tanh(h * w + x)
            return h, h * h
        h, ys = tj.scan(cell, tj.zeros([3]), np.linspace(-1, 1, 15, dtype=F).reshape(5, 3),
                        remat=remat)
        return tj.reduce_sum(h) + tj.reduce_sum(ys)
    check_grad(f, W)


def test_gradient_of_nested_loops_and_a_loop_in_a_branch():
    def f(w):
        def outer(i, v):
            inner = tj.fori_loop(0, 3, lambda j, u: tj.sin(u * w) + u, v)
            return tj.cond(i % 2 == 0, lambda u: u * w, lambda u: tj.fori_loop(
                0, 2, lambda k, z: z * 0.5 + w, u), inner)
        return tj.reduce_sum(tj.fori_loop(0, 4, outer, tj.ones([3])))
    check_grad(f, W)


def test_gradient_of_a_while_loop_with_a_data_dependent_trip_count():
    def f(x):
        out = tj.while_loop(lambda v: tj.reduce_sum(v) < 20.0, lambda v: v * 1.5 + W, x)
        return tj.reduce_sum(out * out)
    check_grad(f, np.array([0.5, 1.0, 0.7], F), rtol=1e-2)


def test_remat_and_stored_residuals_give_the_same_gradient():
    def f(remat):
        def g(w):
            c, _ = tj.scan(lambda c, x: (tj.tanh(c @ w + x), None), tj.zeros([2, 4]),
                           np.ones((6, 2, 4), F) * 0.1, remat=remat)
            return tj.reduce_sum(c)
        return g
    w = (np.random.default_rng(3).standard_normal((4, 4)) * 0.5).astype(F)
    np.testing.assert_allclose(np.asarray(tj.grad(f(True))(w)), np.asarray(tj.grad(f(False))(w)),
                               rtol=1e-5)


def test_jitted_functions_called_inside_a_body_and_second_derivatives():
    inner = tj.jit(lambda v: v * 2.0 + 1.0)
    out = tj.jit(lambda x: tj.fori_loop(0, 3, lambda i, v: inner(v), x))(np.ones(2, F))
    np.testing.assert_array_equal(np.asarray(out), [15.0, 15.0])
    # d2/dx2 of x**3 written as a loop
    second = tj.grad(tj.grad(lambda x: tj.fori_loop(0, 3, lambda i, v: v * x, 1.0)))
    assert float(second(F(2.0))) == pytest.approx(12.0)
    # a while loop in a branch: 2 * 3**4 = 162 >= 100 after four steps
    def h(x):
        return (tj.cond(x > 0, lambda x: tj.while_loop(lambda v: v < 100.0,
                                                             lambda v: v * 3.0, x),
                               lambda x: x, x))
    assert float(tj.grad(h)(F(2.0))) == pytest.approx(81.0)


def test_a_loop_that_carries_only_a_variable():
    v = tj.Variable(F(1.0))

    @tj.jit
    def double_three_times():
        tj.fori_loop(0, 3, lambda i, s: (v.assign(v.read_value() * 2.0), s)[1], ())
        return v.read_value()
    assert float(double_three_times()) == 8.0 and float(np.asarray(v.numpy())) == 8.0


@pytest.mark.parametrize("bound", [2, 4, 50])
def test_gradient_of_a_bounded_while_loop_stores_residuals(bound):
    def f(x):
        out = tj.while_loop(lambda v: tj.reduce_sum(v) < 20.0, lambda v: v * 1.5 + W, x,
                            max_iterations=bound)
        return tj.reduce_sum(out * out)
    check_grad(f, np.array([0.5, 1.0, 0.7], F), rtol=1e-2)
    # the gradient is a scan over the bound (residuals stored), not a recomputing walk
    ops_used = [e.op.name for e in tj.make_ir(tj.grad(f))(np.ones(3, F)).eqns]
    assert ops_used.count("scan") == 2 and ops_used.count("while_loop") == 1


def test_more_mistakes_are_named_at_the_users_line():
    def line_of(info):
        assert "test_control_flow.py" in str(info.value), str(info.value)

    with pytest.raises(ShapeError, match="index must be an integer scalar") as info:
        tj.jit(lambda k, x: tj.switch(k, [lambda x: x, lambda x: -x], x))(F(1.0), F(2.0))
    line_of(info)
    with pytest.raises(TracejitError, match="at least one") as info:
        tj.case([])
    line_of(info)
    with pytest.raises(ShapeError, match="scan needs xs or length=") as info:
        tj.scan(lambda c, x: (c, x), F(0))
    line_of(info)
    with pytest.raises(ShapeError, match="max_iterations must be >= 0") as info:
        tj.while_loop(lambda v: v < 1.0, lambda v: v + 1.0, F(0), max_iterations=-2)
    line_of(info)
    v = tj.Variable(F(0.0))

    def bumps(x):
        v.assign_add(1.0)
        return x < 3.0
    with pytest.raises(TracejitError, match="condition assigns a variable") as info:
        tj.jit(lambda x: tj.while_loop(bumps, lambda x: x + 1.0, x))(F(0.0))
    line_of(info)
    assert float(np.asarray(v.numpy())) == 0.0       # nothing ran, no state lost
