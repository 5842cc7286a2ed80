"""TF1 control flow in a graph: tf.cond, tf.case, tf.switch_case, tf.while_loop, tf.map_fn,
tf.foldl, tf.foldr, tf.scan, and gradients through them.

Every expected value was computed by running the same program with TensorFlow 2.21's
``tensorflow.compat.v1`` after ``tf.disable_v2_behavior()`` (TF1 control flow, ref
variables), in the scratch environment; TensorFlow is not needed here.
"""

from __future__ import annotations

import collections
import doctest
import re
from pathlib import Path

import numpy as np
import pytest

import tracejit.compat.v1 as tf
from tracejit.compat.v1 import control_flow, functional


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


def run(fetches, *feeds):
    """The fetches' values for each feed dict, as nested lists."""
    with tf.Session() as sess:
        return [_plain(sess.run(fetches, feed)) for feed in (feeds or [{}])]


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return None if value is None else np.asarray(value).tolist()


def close(got, want):
    if isinstance(want, list) and any(isinstance(w, list) for w in want):
        return [close(g, w) for g, w in zip(got, want, strict=True)]
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64),
                               np.asarray(want, dtype=np.float64), rtol=2e-5, atol=1e-6)


# ---- tf.cond, tf.case, tf.switch_case ------------------------------------------------------

def test_cond_runs_the_branch_the_fed_predicate_picks():
    x = tf.placeholder(tf.float32, shape=[])
    y = tf.cond(x > 0.0, lambda: x * 2.0, lambda: x - 10.0)
    assert y.shape.as_list() == [] and y.dtype == tf.float32
    assert run(y, {x: 3.0}, {x: -1.0}) == [6.0, -11.0]


def test_feeds_reach_the_tensors_a_branch_closes_over():
    a = tf.placeholder(tf.float32, shape=[None])
    b = tf.placeholder(tf.float32, shape=[None])
    p = tf.placeholder(tf.bool, shape=[])
    r = tf.cond(p, lambda: tf.reduce_sum(a), lambda: tf.reduce_sum(b) * 10.0)
    assert run(r, {p: True, a: [1., 2.], b: [5.]},
               {p: False, a: [1., 2.], b: [5., 6., 7.]}) == [3.0, 180.0]
    with pytest.raises(tf.errors.InvalidArgumentError, match="feed a value for placeholder"):
        tf.Session().run(r, {p: True, a: [1.0]})      # b is an input of the cond too


def test_cond_with_nested_structures_singletons_and_old_keywords():
    x = tf.placeholder(tf.float32, shape=[None])
    p = tf.placeholder(tf.bool, shape=[])
    r = tf.cond(p, lambda: {"a": x * 2.0, "b": (tf.reduce_sum(x), tf.constant(1))},
                lambda: {"a": x + 1.0, "b": (tf.reduce_max(x), tf.constant(2))})
    assert set(r) == {"a", "b"} and isinstance(r["b"], tuple)
    assert r["a"].shape.as_list() == [None]
    assert run([r["a"], r["b"][0], r["b"][1]], {x: [1., 2., 3.], p: True},
               {x: [1., 2., 3.], p: False}) == [[[2.0, 4.0, 6.0], 6.0, 1],
                                                [[2.0, 3.0, 4.0], 3.0, 2]]
    single = tf.cond(p, lambda: [tf.constant(1.0)], lambda: [tf.constant(2.0)])
    strict = tf.cond(p, lambda: [tf.constant(1.0)], lambda: [tf.constant(2.0)], strict=True)
    assert isinstance(single, tf.Tensor) and isinstance(strict, list) and len(strict) == 1
    old = tf.cond(p, fn1=lambda: tf.constant(5), fn2=lambda: tf.constant(7))
    assert run([single, strict[0], old], {p: True}, {p: False}) == [[1.0, 1.0, 5], [2.0, 2.0, 7]]
    constants = tf.cond(p, lambda: 1.0, lambda: 2.0)      # Python numbers become tensors
    assert run(constants, {p: False}) == [2.0]


def test_a_branch_returning_an_operation_runs_it():
    v = tf.Variable(0.0)
    p = tf.placeholder(tf.bool, shape=[])
    r = tf.cond(p, lambda: tf.assign(v, 5.0).op, lambda: tf.no_op())
    r2 = tf.cond(p, lambda: (tf.assign_add(v, 1.0).op, tf.constant(1)),
                 lambda: (tf.no_op(), tf.constant(2)))
    assert r.dtype == tf.bool      # TF1: the predicate, with the op as a dependency
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        out = [s.run(r, {p: False}), s.run(v), s.run(r, {p: True}), s.run(v),
               s.run(r2, {p: True}), s.run(v), s.run(r2, {p: False}), s.run(v)]
    assert _plain(out) == [False, 0.0, True, 5.0, [True, 1], 6.0, [False, 2], 6.0]


def test_case_takes_the_first_true_predicate():
    x = tf.placeholder(tf.int32, shape=[])
    r = tf.case([(tf.less(x, 0), lambda: tf.constant(-1.0)),
                 (tf.equal(x, 0), lambda: tf.constant(0.0))],
                default=lambda: tf.cast(x, tf.float32) * 10.0)
    assert run(r, {x: -5}, {x: 0}, {x: 3}) == [-1.0, 0.0, 30.0]
    no_default = tf.case([(tf.less(x, 0), lambda: tf.constant(-1)),
                          (tf.greater_equal(x, 0), lambda: x * 2)])
    assert run(no_default, {x: -5}, {x: 4}) == [-1, 8]
    pos, neg = tf.greater(x, 0), tf.less(x, 0)
    as_dict = tf.case({pos: lambda: tf.constant(1), neg: lambda: tf.constant(-1)},
                      default=lambda: tf.constant(0), exclusive=True)
    assert run(as_dict, {x: 3}, {x: -3}, {x: 0}) == [1, -1, 0]


def test_switch_case_with_a_list_a_dict_and_a_default():
    i = tf.placeholder(tf.int32, shape=[])
    r = tf.switch_case(i, [lambda: tf.constant(10), lambda: tf.constant(20),
                           lambda: tf.constant(30)])
    r2 = tf.switch_case(i, {0: lambda: tf.constant(1.0), 1: lambda: tf.constant(2.0)},
                        default=lambda: tf.constant(-1.0))
    assert run([r, r2], {i: 0}, {i: 1}, {i: 2}, {i: 7}, {i: -1}) == [
        [10, 1.0], [20, 2.0], [30, -1.0], [30, -1.0], [30, -1.0]]


# ---- tf.while_loop ---------------------------------------------------------------------------

def test_while_loop_accumulates_a_sum_with_a_fed_trip_count():
    n = tf.placeholder(tf.int32, shape=[])
    i, s = tf.while_loop(lambda i, s: i < n,
                         lambda i, s: (i + 1, s + tf.cast(i, tf.float32) * 0.5), [0, 0.0])
    assert (i.dtype, s.dtype) == (tf.int32, tf.float32)
    assert run([i, s], {n: 10}, {n: 0}) == [[10, 22.5], [0, 0.0]]


def test_while_loop_with_maximum_iterations():
    i, _ = tf.while_loop(lambda i, c: i < 100, lambda i, c: [i + 3, c], [tf.constant(1), 0],
                         maximum_iterations=5)
    j, k = tf.while_loop(lambda j, k: j < 4, lambda j, k: [j + 1, k * 2.0], [0, 1.0],
                         maximum_iterations=10)
    limit = tf.placeholder(tf.int32, shape=[])
    fed = tf.while_loop(lambda v: v < 1000, lambda v: v * 2, [1], maximum_iterations=limit)
    assert run([i, j, k]) == [[16, 4, 16.0]]
    assert run(fed, {limit: 3}, {limit: 50}) == [8, 1024]


def test_while_loop_over_matrices_with_a_fed_operand():
    a = tf.placeholder(tf.float32, shape=[2, 2])
    m, k = tf.while_loop(lambda m, k: tf.reduce_sum(m) < 1000.0,
                         lambda m, k: (tf.matmul(m, a), k + 1),
                         [tf.constant(np.eye(2, dtype=np.float32)), tf.constant(0)])
    assert m.shape.as_list() == [2, 2]
    assert run([m, k], {a: [[1., 1.], [0., 2.]]}) == [[[[1.0, 511.0], [0.0, 512.0]], 9]]


def test_cond_inside_a_while_body_and_while_inside_a_branch():
    def collatz(n, steps):
        n = tf.cond(tf.equal(n % 2, 0), lambda: n // 2, lambda: 3 * n + 1)
        return n, steps + 1
    n0 = tf.placeholder(tf.int32, shape=[])
    n, steps = tf.while_loop(lambda n, s: n > 1, collatz, [n0, 0])
    assert run([n, steps], {n0: 27}, {n0: 6}) == [[1, 111], [1, 8]]

    x = tf.placeholder(tf.float32, shape=[])

    def power():
        return tf.while_loop(lambda i, v: i < 5, lambda i, v: (i + 1, v * x), [0, 1.0])[1]
    assert run(tf.cond(x > 1.0, power, lambda: x - 1.0), {x: 2.0}, {x: 0.5}) == [32.0, -0.5]


def test_nested_while_loops_and_nested_loop_variables():
    def outer_body(i, total):
        _, inner = tf.while_loop(lambda j, t: j < i, lambda j, t: (j + 1, t + j), [0, 0])
        return i + 1, total + inner
    assert run(tf.while_loop(lambda i, t: i < 5, outer_body, [0, 0])[1]) == [10]

    Pair = collections.namedtuple("Pair", "a b")
    x = tf.constant([1.0, 2.0])
    out = tf.while_loop(lambda i, p: i < 3,
                        lambda i, p: (i + 1, Pair(p.a + x, (p.b[0] * 2.0,))),
                        (0, Pair(tf.zeros([2]), (tf.constant(1.0),))))
    assert isinstance(out[1], Pair) and out[1].a.shape.as_list() == [2]
    assert run([out[0], out[1].a, out[1].b[0]]) == [[3, [3.0, 6.0], 8.0]]


def test_one_loop_variable_comes_back_alone_unless_the_same_structure_is_asked():
    single = tf.while_loop(lambda i: i < 10, lambda i: i + 1, [0])
    same = tf.while_loop(lambda i: i < 10, lambda i: [i + 1], [0], return_same_structure=True)
    assert isinstance(single, tf.Tensor) and isinstance(same, list) and len(same) == 1
    assert run([single, same[0]]) == [[10, 10]]


def test_variables_updated_in_a_while_body():
    v = tf.Variable(0.0)

    def body(i):
        with tf.control_dependencies([tf.assign_add(v, 2.0)]):
            return i + 1
    loop = tf.while_loop(lambda i: i < 5, body, [0])
    u = tf.Variable(0.0)

    def unused_update(i):
        tf.assign_add(u, 2.0)      # nothing depends on it: it does not run, as in TF
        return i + 1
    loop2 = tf.while_loop(lambda i: i < 5, unused_update, [0])
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        assert s.run(loop) == 5 and s.run(v) == 10.0
        assert s.run(loop) == 5 and s.run(v) == 20.0
        assert s.run(loop2) == 5 and s.run(u) == 0.0


def test_a_while_body_reads_the_value_it_assigned():
    v = tf.Variable(1.0)

    def body(i, acc):
        doubled = tf.assign(v, v * 2.0)
        with tf.control_dependencies([doubled]):
            return i + 1, acc + v.read_value()
    r = tf.while_loop(lambda i, acc: i < 3, body, [0, 0.0], parallel_iterations=1)
    w = tf.Variable(0.0)
    x = tf.placeholder(tf.float32, shape=[])

    def branchy(i):
        up = tf.cond(x > 0.0, lambda: tf.assign_add(w, x), lambda: tf.assign_sub(w, 1.0))
        with tf.control_dependencies([up]):
            return i + 1
    r2 = tf.while_loop(lambda i: i < 3, branchy, [0])
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        assert _plain(s.run(r)) == [3, 14.0] and s.run(v) == 8.0
        s.run(r2, {x: 2.5})
        s.run(r2, {x: -1.0})
        assert s.run(w) == 4.5


def test_an_optimizer_step_inside_a_while_body():
    w = tf.Variable(0.0)
    opt = tf.train.GradientDescentOptimizer(0.1)

    def body(i):
        loss = tf.square(w - 3.0)
        with tf.control_dependencies([opt.minimize(loss, var_list=[w])]):
            return i + 1
    r = tf.while_loop(lambda i: i < 20, body, [0], parallel_iterations=1)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        assert s.run(r) == 20
        close(s.run(w), 2.9654123783111572)


# ---- tf.map_fn, tf.foldl, tf.foldr, tf.scan ---------------------------------------------------

def test_map_fn_over_rows_and_over_a_nested_structure():
    x = tf.placeholder(tf.float32, shape=[None, 3])
    y = tf.map_fn(lambda row: tf.reduce_sum(row * row), x)
    z = tf.map_fn(lambda ab: (ab[0] * 2.0, ab[1] + 1), (x, tf.constant([1, 2, 3])),
                  dtype=(tf.float32, tf.int32))
    assert y.shape.as_list() == [None] and z[0].shape.as_list() == [3, 3]
    assert run([y, z[0], z[1]], {x: np.arange(9, dtype=np.float32).reshape(3, 3)}) == [
        [[5.0, 50.0, 149.0], [[0.0, 2.0, 4.0], [6.0, 8.0, 10.0], [12.0, 14.0, 16.0]], [2, 3, 4]]]


def test_folds_from_either_end_with_and_without_an_initializer():
    x = tf.constant([1., 2., 3., 4.])
    step = lambda a, v: a * 2 + v                                         # noqa: E731
    folds = [tf.foldl(step, x), tf.foldr(step, x), tf.foldl(step, x, initializer=1.0),
             tf.foldr(step, x, initializer=1.0),
             tf.foldl(lambda a, v: (a[0] + v, a[1] * v), x, initializer=(0.0, 1.0))[1]]
    assert run(folds) == [[26.0, 49.0, 42.0, 65.0, 24.0]]


def test_scan_keeps_every_accumulator():
    x = tf.constant([1., 2., 3., 4.])
    scans = [tf.scan(lambda a, v: a + v, x), tf.scan(lambda a, v: a + v, x, reverse=True),
             tf.scan(lambda a, v: a * 2 + v, x, initializer=1.0),
             tf.scan(lambda a, v: a * 2 + v, x, initializer=1.0, reverse=True),
             tf.scan(lambda a, v: (a[0] + v, a[1] * v), x, initializer=(0.0, 1.0))[1],
             tf.scan(lambda a, v: a + v, tf.reshape(tf.range(6.0), [3, 2]))]
    assert [s.shape.as_list() for s in scans] == [[4]] * 5 + [[3, 2]]
    assert run(scans) == [[[1.0, 3.0, 6.0, 10.0], [10.0, 9.0, 7.0, 4.0], [3.0, 8.0, 19.0, 42.0],
                           [65.0, 32.0, 15.0, 6.0], [1.0, 2.0, 6.0, 24.0],
                           [[0.0, 1.0], [2.0, 4.0], [6.0, 9.0]]]]


def test_static_shapes_of_control_flow_results():
    x = tf.placeholder(tf.float32, [None, 3])
    a = tf.cond(tf.reduce_sum(x) > 0, lambda: x * 2.0, lambda: x)
    i, b = tf.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y + 1.0), [0, x])
    shapes = [a, i, b, tf.map_fn(tf.reduce_sum, x), tf.scan(lambda a, r: a + r, x),
              tf.foldl(lambda a, r: a + r, x)]
    assert [t.shape.as_list() for t in shapes] == [[None, 3], [], [None, 3], [None],
                                                   [None, 3], [3]]


def test_inputs_of_unknown_rank():
    x = tf.placeholder(tf.float32)
    i, y = tf.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, tf.matmul(v, v)), [0, x])
    c = tf.cond(tf.placeholder_with_default(True, []), lambda: tf.matmul(x, x), lambda: x)
    m = tf.map_fn(tf.reduce_sum, x)
    assert [t.dtype for t in (i, y, c, m)] == [tf.int32, tf.float32, tf.float32, tf.float32]
    assert run([i, y, m], {x: np.eye(2) * 2.0}) == [[3, [[256.0, 0.0], [0.0, 256.0]],
                                                     [2.0, 2.0]]]


def test_the_control_flow_op_and_its_region_in_the_graph():
    x = tf.placeholder(tf.float32, shape=[], name="x")
    with tf.name_scope("outer"):
        y = tf.cond(x > 0.0, lambda: tf.square(x), lambda: x, name="pick")
    assert y.op.name == "outer/pick" and y.op.type == "Cond" and y.name == "outer/pick:0"
    assert {t.name for t in y.op.inputs} >= {"x:0"}
    inside = [op for op in tf.get_default_graph().get_operations() if op.region is not None]
    assert inside and all(op.name.startswith("outer/pick/") for op in inside)


# ---- errors ----------------------------------------------------------------------------------

def _raises(error, match, fn):
    with pytest.raises(error, match=match) as caught:
        fn()
    assert "test_control_flow.py" in str(caught.value)      # the user's line
    return caught.value


def test_bad_predicates_name_the_users_line():
    one = lambda: tf.constant(1)                                          # noqa: E731
    _raises(TypeError, "must not be a Python bool", lambda: tf.cond(True, one, one))
    _raises(TypeError, "must be a bool tensor", lambda: tf.cond(tf.constant(1), one, one))
    _raises(ValueError, "must be a scalar",
            lambda: tf.cond(tf.constant([True, False]), one, one))
    _raises(TypeError, "pred must be a Tensor", lambda: tf.case([(False, one)], default=one))
    _raises(TypeError, "cond must return a bool scalar",
            lambda: tf.while_loop(lambda i: i, lambda i: i + 1, [0]))


def test_branches_that_do_not_match():
    p = tf.placeholder(tf.bool, [])
    c = tf.constant
    _raises(ValueError, "same number, type, and overall structure",
            lambda: tf.cond(p, lambda: (c(1.), c(2.)), lambda: c(1.)))
    _raises(TypeError, "must have the same type",
            lambda: tf.cond(p, lambda: c(1.), lambda: c(1)))
    _raises(ValueError, "one static shape", lambda: tf.cond(p, lambda: c([1., 2.]),
                                                            lambda: c(1.)))
    _raises(ValueError, "must have a return value", lambda: tf.cond(p, lambda: None,
                                                                    lambda: None))
    x, y = tf.placeholder(tf.float32, [None]), tf.placeholder(tf.float32, [None])
    r = tf.cond(p, lambda: x * 2.0, lambda: y)
    with pytest.raises(tf.errors.InvalidArgumentError, match="same shapes") as caught:
        tf.Session().run(r, {x: [1., 2.], y: [1.], p: True})
    assert "node cond" in str(caught.value)


def test_loop_variables_must_keep_their_shape_dtype_and_structure():
    grow = lambda v: tf.concat([v, v], 0)                                 # noqa: E731
    small = lambda v: tf.size(v) < 10                                     # noqa: E731
    _raises(ValueError, r"enters the loop with shape \(1,\), but has shape \(2,\)",
            lambda: tf.while_loop(small, grow, [tf.constant([1.])]))
    error = _raises(ValueError, "shape invariant lets it change", lambda: tf.while_loop(
        small, grow, [tf.constant([1.])], shape_invariants=[tf.TensorShape([None])]))
    assert "not supported" in str(error)
    _raises(ValueError, "not compatible with the initial shape", lambda: tf.while_loop(
        small, lambda v: v + 1, [tf.constant([1.])], shape_invariants=[tf.TensorShape([3])]))
    _raises(TypeError, "enters the loop with type int32 but has type float32",
            lambda: tf.while_loop(lambda v: v < 10, lambda v: tf.cast(v, tf.float32),
                                  [tf.constant(1)]))
    _raises(ValueError, "same nested structure",
            lambda: tf.while_loop(lambda a, b: a < 10, lambda a, b: a, [tf.constant(1), 2]))
    _raises(ValueError, "keep each carried value's shape",
            lambda: tf.while_loop(small, grow, [tf.placeholder(tf.float32, [None])]))
    _raises(ValueError, "1\\+ dimensional", lambda: tf.map_fn(lambda v: v * 2, [1., 2., 3.]))
    _raises(TypeError, "type must stay the same",
            lambda: tf.foldl(lambda a, v: tf.cast(a, tf.int32), tf.constant([1., 2.])))
    loose = tf.while_loop(lambda v: tf.reduce_sum(v) < 10, lambda v: v * 2.0,
                          [tf.constant([1.])], shape_invariants=[tf.TensorShape([None])])
    assert run(loose) == [[16.0]]      # an invariant the body keeps to is accepted


def test_values_made_inside_a_region_stay_there():
    inner = []

    def body(i):
        inner.append(i * 2)
        return i + 1
    loop = tf.while_loop(lambda i: i < 3, body, [0])
    _raises(ValueError, "created inside the body of tf.while_loop", lambda: inner[0] + 1)
    with pytest.raises(ValueError, match="Cannot fetch"):
        tf.Session().run(inner[0])
    assert run(loop) == [3]


def test_a_variable_used_only_in_a_body_must_be_initialized():
    v = tf.Variable(1.0)

    def body(i):
        with tf.control_dependencies([v.assign_add(1.0)]):
            return i + 1
    with pytest.raises(tf.errors.FailedPreconditionError, match="uninitialized"):
        tf.Session().run(tf.while_loop(lambda i: i < 3, body, [0]))


# ---- gradients -------------------------------------------------------------------------------

def test_gradients_through_cond():
    x = tf.placeholder(tf.float32, shape=[])
    w = tf.constant(3.0)
    y = tf.cond(x > 0.0, lambda: x * x * w, lambda: tf.sin(x) * w)
    grads = tf.gradients(y, [x, w])
    close(run(grads, {x: 2.0}, {x: -1.0}), [[12.0, 4.0], [1.6209068298339844,
                                                         -0.8414709568023682]])


def test_gradients_through_while_loops_with_fixed_data_dependent_and_bounded_trips():
    x = tf.placeholder(tf.float32, shape=[])
    _, y = tf.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, v * x), [0, 1.0])
    close(run([y, tf.gradients(y, x)[0]], {x: 2.0}, {x: 0.5}), [[8.0, 12.0], [0.125, 0.75]])
    k, z = tf.while_loop(lambda i, v: v < 100.0, lambda i, v: (i + 1, v * x), [0, 1.0])
    close(run([k, z, tf.gradients(z, [x])[0]], {x: 2.0}, {x: 3.0}, {x: 11.0}),
          [[7, 128.0, 448.0], [5, 243.0, 405.0], [2, 121.0, 22.0]])

    m = tf.placeholder(tf.int32, shape=[])
    grow = lambda i, v: [i + 1, v * x]                                    # noqa: E731
    _, b4 = tf.while_loop(lambda i, v: v < 100.0, grow, [0, 1.0], maximum_iterations=4)
    _, bm = tf.while_loop(lambda i, v: v < 100.0, grow, [0, 1.0], maximum_iterations=m)
    close(run([b4, bm] + tf.gradients([b4], x) + tf.gradients(bm, x), {x: 2.0, m: 3},
              {x: 11.0, m: 3}), [[16.0, 8.0, 32.0, 12.0], [121.0, 121.0, 22.0, 22.0]])

    def body(i, v):
        return i + 1, tf.cond(v > 2.0, lambda: v * x, lambda: v * x + 1.0)
    _, c = tf.while_loop(lambda i, v: i < 4, body, [0, 1.0])
    close(run([c, tf.gradients(c, x)[0]], {x: 1.5}, {x: 0.5}), [[8.4375, 20.25],
                                                               [1.9375, 3.25]])


def test_gradients_through_a_recurrent_while_loop():
    x = tf.placeholder(tf.float32, shape=[3])
    w = tf.constant([[0.5, 0.1, 0.0], [0.0, 0.5, 0.2], [0.3, 0.0, 0.5]])

    def step(i, h):
        return i + 1, tf.tanh(tf.reshape(tf.matmul(tf.reshape(h, [1, 3]), w), [3]) + x)
    _, h = tf.while_loop(lambda i, h: i < 4, step, [0, tf.zeros([3])])
    loss = tf.reduce_sum(h * h)
    (got,) = run([loss] + tf.gradients(loss, [x, w]), {x: [0.1, -0.2, 0.3]})
    close(got[0], 0.40410125255584717)
    close(got[1], [1.0165554285049438, -0.610401451587677, 1.523093819618225])
    close(got[2], [[0.2671809494495392, -0.20783983170986176, 0.3489561378955841],
                   [-0.2795712947845459, 0.2043982595205307, -0.38544386625289917],
                   [0.3788908123970032, -0.2740604877471924, 0.5266048908233643]])


def test_gradients_through_scan_map_fn_and_foldl():
    xs = tf.placeholder(tf.float32, shape=[4])
    w = tf.placeholder(tf.float32, shape=[])
    loss = tf.reduce_sum(tf.scan(lambda a, v: a * v + w, xs, initializer=1.0))
    (got,) = run([loss] + tf.gradients(loss, [xs, w]), {xs: [1.0, 2.0, 0.5, -1.0], w: 0.3})
    close(got[0], 4.5)
    close(got[1], [3.0, 1.2999999523162842, 0.0, 1.75])
    close(got[2], 5.0)

    X = tf.placeholder(tf.float32, shape=[None, 2])
    u = tf.placeholder(tf.float32, shape=[2])
    rows = tf.map_fn(lambda r: tf.reduce_sum(r * r * u), X)
    loss2 = tf.reduce_sum(rows * tf.constant([1.0, 2.0, 3.0]))
    (got,) = run([loss2] + tf.gradients(loss2, [X, u]),
                 {X: [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], u: [0.5, -1.0]})
    close(got[0], -97.0)
    close(got[1], [[1.0, -4.0], [6.0, -16.0], [15.0, -36.0]])
    close(got[2], [94.0, 144.0])

    ys = tf.placeholder(tf.float32, shape=[3])
    folded = tf.foldl(lambda a, v: a * v + 1.0, ys)
    close(run([folded, tf.gradients(folded, ys)[0]], {ys: [2.0, 3.0, 4.0]}),
          [[29.0, [12.0, 8.0, 7.0]]])


def test_minimize_a_loss_computed_by_a_while_loop():
    w = tf.Variable(1.5)
    _, y = tf.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, v * w), [0, 1.0])
    train = tf.train.GradientDescentOptimizer(0.002).minimize(tf.square(y - 8.5))
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        for _ in range(5):
            s.run(train)
        close(s.run(w), 2.004544734954834)


def test_minimize_through_a_loop_whose_trip_count_depends_on_the_variables():
    w, b = tf.Variable(1.5), tf.Variable(0.25)
    x = tf.placeholder(tf.float32, shape=[])
    _, y = tf.while_loop(lambda i, v: v < x, lambda i, v: (i + 1, v * w + b), [0, 1.0])
    loss = tf.square(y - x)
    train = tf.train.GradientDescentOptimizer(0.001).minimize(loss)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        losses = [s.run([loss, train], {x: 10.0})[0] for _ in range(4)]
        close(losses, [0.793212890625, 10.150120735168457, 0.23586153984069824,
                       0.056580424308776855])
        close(s.run([w, b]), [0.8930824995040894, 0.03378966078162193])


# ---- the namespace and the docstrings -------------------------------------------------------

def test_the_example_in_the_docs_runs(capsys):
    text = (Path(__file__).parents[2] / "docs" / "compat_v1.md").read_text()
    example = re.search(r"## Control flow.*?```python\n(.*?)```", text, re.S).group(1)
    exec(compile(example, "compat_v1.md", "exec"), {})
    printed = capsys.readouterr().out
    # TensorFlow prints [4, 22.0, [1, 4, 9], [1, 3, 6], [3, 3, 3]] and 48.0
    assert "array(22." in printed and "array([3., 3., 3.]" in printed
    assert printed.strip().endswith("48.0")


def test_the_names_are_in_the_tf1_namespace_and_the_examples_run():
    for name in ("cond", "case", "switch_case", "while_loop", "map_fn", "foldl", "foldr",
                 "scan"):
        assert callable(getattr(tf, name)), name
    for module in (control_flow, functional):
        result = doctest.testmod(module)
        assert result.attempted and not result.failed
