"""tf.nn.top_k, tf.math.top_k, tf.nn.in_top_k, tf.cumsum, tf.cumprod, tf.sort, tf.argsort
in TF1 graphs. Expected values were recorded from TensorFlow 2.21 (tf.compat.v1, eager
execution off) on the same programs, except where a comment says the value is this
package's own definition (TensorFlow's order around NaN is its sort's accident)."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit.compat.v1 as tf

NAN, INF = float("nan"), float("inf")
X = [[1.0, 3.0, 3.0, 2.0, 3.0], [5.0, -1.0, 5.0, 0.0, -2.0]]
C = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
W = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]


def run(make, feed=None, init=False):
    with tf.Graph().as_default():
        out = make()
        with tf.Session() as sess:
            if init:
                sess.run(tf.global_variables_initializer())
            return sess.run(out, feed)


def test_top_k_values_indices_and_ties():
    def make():
        best = tf.nn.top_k(tf.constant(X), 3)
        assert best.values.op.type == "TopKV2" and best.values.shape.as_list() == [2, 3]
        assert best.indices.dtype == tf.int32
        return best
    values, indices = run(make)
    assert values.tolist() == [[3.0, 3.0, 3.0], [5.0, 5.0, 0.0]]
    assert indices.tolist() == [[1, 2, 4], [0, 2, 3]]     # ties: the lower index first


def test_math_top_k_integers_and_unsorted():
    vi, ii = run(lambda: tf.math.top_k(tf.constant([[3, 1, 3, 2]], tf.int32), 4))
    assert vi.tolist() == [[3, 3, 2, 1]] and ii.tolist() == [[0, 2, 3, 1]]
    assert vi.dtype == np.int32
    # sorted=False: TensorFlow leaves the order open (it gave [[2, 1], [2, 0]]); the
    # same elements come back here, sorted
    v, i = run(lambda: tf.nn.top_k(tf.constant(X), 2, sorted=False))
    assert sorted(v.tolist()[0]) == [3.0, 3.0] and i.tolist() == [[1, 2], [0, 2]]


def test_top_k_with_nan_and_infinities():
    # tracejit's definition: NaN above every number (TensorFlow gave
    # [inf, 3, 1, nan, -inf, nan], the accident of its comparison sort)
    v, i = run(lambda: tf.nn.top_k(tf.constant([1.0, NAN, 3.0, -INF, NAN, INF]), 6))
    assert np.isnan(v[:2]).all() and v[2:].tolist() == [INF, 3.0, 1.0, -INF]
    assert i.tolist() == [1, 4, 5, 2, 0, 3]


def test_top_k_with_unknown_batch_and_a_k_from_the_shape():
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [None, None])
        v, i = tf.nn.top_k(x, tf.shape(x)[1] - 1)
        assert v.shape.as_list() == [None, None]
        with tf.Session() as sess:
            got = sess.run(i, {x: X})
    assert got.tolist() == [[1, 2, 4, 3], [0, 2, 3, 1]]


def test_top_k_gradient_scatters_into_the_indices():
    def make():
        x = tf.Variable(X)
        v, _ = tf.nn.top_k(x, 3)
        return tf.gradients(tf.reduce_sum(v * tf.constant([[1.0, 2.0, 3.0],
                                                           [4.0, 5.0, 6.0]])), x)[0]
    g = run(make, init=True)
    assert g.tolist() == [[0.0, 1.0, 2.0, 0.0, 3.0], [4.0, 0.0, 5.0, 6.0, 0.0]]


def test_sort_and_argsort():
    def make():
        xn = tf.constant([1.0, 3.0, -INF, 2.0, INF])
        ints = tf.constant([3, 1, 3, 1, 2])
        return [tf.sort(xn), tf.sort(xn, direction="DESCENDING"), tf.argsort(xn),
                tf.sort(tf.constant([[3, 1, 2], [0, 5, -4]]), axis=0),
                tf.argsort(ints, stable=True),
                tf.argsort(ints, direction="DESCENDING", stable=True),
                tf.sort(tf.constant([3, 200, 0, 255], tf.uint8)),
                tf.sort(tf.constant([3, -2147483648, 2147483647, 0], tf.int32)),
                tf.argsort(tf.constant([3, -2147483648, 2147483647, 0], tf.int32))]
    got = [r.tolist() for r in run(make)]
    assert got == [[-INF, 1.0, 2.0, 3.0, INF], [INF, 3.0, 2.0, 1.0, -INF], [2, 0, 3, 1, 4],
                   [[0, 1, -4], [3, 5, 2]], [1, 3, 4, 0, 2], [0, 2, 4, 1, 3],
                   [0, 3, 200, 255], [-2147483648, 0, 3, 2147483647], [1, 3, 0, 2]]


def test_sort_puts_nan_last():
    # tracejit's definition (NumPy's too); TensorFlow gave [-inf, 1, nan, 3, nan, inf]
    got = run(lambda: tf.sort(tf.constant([1.0, NAN, 3.0, -INF, NAN, INF])))
    assert got[:4].tolist() == [-INF, 1.0, 3.0, INF] and np.isnan(got[4:]).all()


PRED = [[0.1, 0.3, 0.3, 0.2], [0.5, 0.1, 0.2, 0.2], [NAN, 0.1, 0.2, 0.3],
        [0.1, INF, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4]]


@pytest.mark.parametrize("targets,k,expected", [
    ([2, 3, 1, 0, 5], 1, [True, False, False, False, False]),
    ([2, 3, 1, 0, 5], 2, [True, True, False, False, False]),
    ([2, 3, 1, 0, 5], 0, [False] * 5),
    ([2, 3, 1, 0, -1], 2, [True, True, False, False, False]),
])
def test_in_top_k_ties_non_finite_rows_and_targets_out_of_range(targets, k, expected):
    def make():
        out = tf.nn.in_top_k(tf.constant(PRED), tf.constant(targets), k)
        assert out.op.type == "InTopKV2" and out.dtype == tf.bool
        return out
    assert run(make).tolist() == expected


def test_in_top_k_with_a_fed_k_and_math_alias():
    with tf.Graph().as_default():
        k = tf.placeholder(tf.int32, [])
        hit = tf.math.in_top_k(tf.constant(PRED), tf.constant([2, 3, 1, 0, 3]), k)
        with tf.Session() as sess:
            assert sess.run(hit, {k: 1}).tolist() == [True, False, False, False, True]
            assert sess.run(hit, {k: 3}).tolist() == [True, True, False, False, True]


def test_cumsum_and_cumprod_every_mode():
    def make():
        c = tf.constant(C)
        return [tf.cumsum(c), tf.cumsum(c, axis=1), tf.cumsum(c, axis=1, exclusive=True),
                tf.cumsum(c, axis=1, reverse=True),
                tf.cumsum(c, axis=-1, exclusive=True, reverse=True),
                tf.cumprod(c, axis=1), tf.cumprod(c, axis=0, exclusive=True),
                tf.cumprod(c, 1, exclusive=True, reverse=True),
                tf.math.cumsum(tf.constant([1, 2, 3])),
                tf.cumsum(tf.constant([2147483647, 1]))]
    got = run(make)
    assert [g.tolist() for g in got] == [
        [[1.0, 2.0, 3.0], [5.0, 7.0, 9.0]], [[1.0, 3.0, 6.0], [4.0, 9.0, 15.0]],
        [[0.0, 1.0, 3.0], [0.0, 4.0, 9.0]], [[6.0, 5.0, 3.0], [15.0, 11.0, 6.0]],
        [[5.0, 3.0, 0.0], [11.0, 6.0, 0.0]], [[1.0, 2.0, 6.0], [4.0, 20.0, 120.0]],
        [[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]], [[6.0, 3.0, 1.0], [30.0, 6.0, 1.0]],
        [1, 3, 6], [2147483647, -2147483648]]
    assert got[-1].dtype == np.int32


def _grads(fn):
    def make():
        v = tf.Variable([[1.0, 2.0, 0.0], [4.0, 5.0, 6.0]])
        return [tf.gradients(tf.reduce_sum(fn(v, 1, exclusive=e, reverse=r) *
                                           tf.constant(W)), v)[0]
                for e in (False, True) for r in (False, True)]
    return [g.tolist() for g in run(make, init=True)]


def test_cumsum_gradients():
    assert _grads(tf.cumsum) == [[[6.0, 5.0, 3.0], [15.0, 11.0, 6.0]],
                                 [[1.0, 3.0, 6.0], [4.0, 9.0, 15.0]],
                                 [[5.0, 3.0, 0.0], [11.0, 6.0, 0.0]],
                                 [[0.0, 1.0, 3.0], [0.0, 4.0, 9.0]]]


def test_cumprod_gradients_are_tensorflows_even_at_zero():
    # TensorFlow's rule divides by x (div_no_nan): 0 at the zero, not the derivative 6
    assert _grads(tf.cumprod) == [[[5.0, 2.0, 0.0], [209.0, 164.0, 120.0]],
                                  [[0.0, 0.0, 0.0], [120.0, 126.0, 111.0]],
                                  [[8.0, 3.0, 0.0], [35.0, 24.0, 0.0]],
                                  [[0.0, 0.0, 0.0], [0.0, 24.0, 25.0]]]


def test_cumprod_gradient_matches_finite_differences_away_from_zero():
    rng = np.random.default_rng(0)
    x0 = rng.uniform(0.5, 1.5, (2, 4)) * rng.choice([-1.0, 1.0], (2, 4))
    w = rng.normal(size=(2, 4))
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float64, [2, 4])
        y = tf.reduce_sum(tf.cumprod(x, axis=1, exclusive=True, reverse=True) * w)
        g = tf.gradients(y, x)[0]
        with tf.Session() as sess:
            grad = sess.run(g, {x: x0})
            numeric = np.zeros_like(x0)
            for i in np.ndindex(x0.shape):
                step = np.zeros_like(x0)
                step[i] = 1e-6
                numeric[i] = (sess.run(y, {x: x0 + step}) - sess.run(y, {x: x0 - step})) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_user_mistakes_name_the_problem_and_the_line():
    with tf.Graph().as_default():
        x = tf.constant(X)
        with pytest.raises(ValueError, match=r"last dimension >= k = 6 but is 5") as info:
            tf.nn.top_k(x, 6)
        assert "test_top_k_cumsum.py" in str(info.value)
        with pytest.raises(ValueError, match="at least rank 1"):
            tf.nn.top_k(tf.constant(1.0), 1)
        with pytest.raises(ValueError, match="non-negative"):
            tf.nn.top_k(x, -1)
        with pytest.raises(ValueError, match="axis 2 is out of range"):
            tf.cumsum(tf.constant(C), axis=2)
        with pytest.raises(TypeError, match="k must be an integer"):
            tf.nn.in_top_k(tf.constant(PRED), tf.constant([0, 0, 0, 0, 0]), 1.5)
        with pytest.raises(ValueError, match="Unrecognized direction"):
            tf.sort(x, direction="UP")
