"""tf.sparse_tensor_dense_matmul, tf.sparse_to_dense, tf.sparse_reduce_sum, tf.sparse_add,
tf.sparse_placeholder and the tf.sparse.* names. Values and gradients were recorded from
TensorFlow 2.21 (tf.compat.v1, eager execution off) on the same programs; the product's
gradient is also checked against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit.compat.v1 as tf

IDX = [[0, 1], [1, 0], [1, 2], [2, 2]]
B = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
BT = [[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]]
W = [[1.0, -1.0], [2.0, 0.5], [0.0, 3.0]]


def run(make, feed=None):
    with tf.Graph().as_default():
        out = make()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            return sess.run(out, feed)


def lists(values):
    return [np.asarray(v).tolist() for v in values]


def test_sparse_dense_products_with_every_adjoint():
    def make():
        sp = tf.SparseTensor(IDX, tf.constant([1.0, 2.0, 3.0, 4.0]), [3, 3])
        b, bt = tf.constant(B), tf.constant(BT)
        y = tf.sparse_tensor_dense_matmul(sp, b)
        assert y.shape.as_list() == [3, 2] and y.op.type == "SparseTensorDenseMatMul"
        return [y, tf.sparse_tensor_dense_matmul(sp, b, adjoint_a=True),
                tf.sparse_tensor_dense_matmul(sp, bt, adjoint_b=True),
                tf.sparse.sparse_dense_matmul(sp, bt, adjoint_a=True, adjoint_b=True),
                tf.sparse.matmul(sp, b)]
    got = lists(run(make))
    assert got[0] == got[2] == got[4] == [[3.0, 4.0], [17.0, 22.0], [20.0, 24.0]]
    assert got[1] == got[3] == [[6.0, 8.0], [1.0, 2.0], [29.0, 36.0]]


def test_product_gradients_to_values_and_b_are_tensorflows():
    def make():
        vals, b = tf.Variable([1.0, 2.0, 3.0, 4.0]), tf.Variable(B)
        sp = tf.SparseTensor(IDX, vals, [3, 3])
        w = tf.constant(W)
        g = tf.gradients(tf.reduce_sum(tf.sparse_tensor_dense_matmul(sp, b) * w), [vals, b])
        g2 = tf.gradients(tf.reduce_sum(
            tf.sparse_tensor_dense_matmul(sp, b, adjoint_a=True) * w), [vals, b])
        return g + g2
    got = lists(run(make))
    assert got[0] == [-1.0, 3.0, 13.0, 18.0]
    assert got[1] == [[4.0, 1.0], [1.0, -1.0], [6.0, 13.5]]       # dense, as in TensorFlow
    assert got[2] == [3.0, -1.0, 12.0, 18.0]
    assert got[3] == [[2.0, 0.5], [2.0, 7.0], [0.0, 12.0]]


@pytest.mark.parametrize("adjoint_a,adjoint_b", [(False, False), (True, True)])
def test_product_gradient_matches_finite_differences(adjoint_a, adjoint_b):
    rng = np.random.default_rng(1)
    v0, b0 = rng.normal(size=4), rng.normal(size=(2, 3) if adjoint_b else (3, 2))
    w = rng.normal(size=(3, 2))
    with tf.Graph().as_default():
        vals = tf.placeholder(tf.float64, [4])
        b = tf.placeholder(tf.float64, b0.shape)
        sp = tf.SparseTensor(IDX, vals, [3, 3])
        y = tf.reduce_sum(tf.sparse_tensor_dense_matmul(sp, b, adjoint_a, adjoint_b) * w)
        grads = tf.gradients(y, [vals, b])
        with tf.Session() as sess:
            got = sess.run(grads, {vals: v0, b: b0})
            for k, x0 in enumerate((v0, b0)):
                numeric = np.zeros_like(x0)
                for i in np.ndindex(x0.shape):
                    step = np.zeros_like(x0)
                    step[i] = 1e-6
                    feeds = [{vals: v0, b: b0}, {vals: v0, b: b0}]
                    feeds[0][[vals, b][k]] = x0 + step
                    feeds[1][[vals, b][k]] = x0 - step
                    numeric[i] = (sess.run(y, feeds[0]) - sess.run(y, feeds[1])) / 2e-6
                np.testing.assert_allclose(got[k], numeric, rtol=1e-6, atol=1e-8)


def test_sparse_to_dense():
    def make():
        vals = tf.Variable([1.0, 2.0, 3.0, 4.0])
        g = tf.gradients(tf.reduce_sum(
            tf.sparse_to_dense([[0, 1], [2, 0]], [3, 2], vals[:2]) * tf.constant(B)), vals)
        return [tf.sparse_to_dense([[0, 1], [2, 0]], [3, 2], [5, 6]),
                tf.sparse_to_dense([1, 3], [5], 7.0, default_value=-1.0),
                tf.sparse_to_dense(2, [4], 9), g[0]]
    got = lists(run(make))
    assert got == [[[0, 5], [0, 0], [6, 0]], [-1.0, 7.0, -1.0, 7.0, -1.0], [0, 0, 9, 0],
                   [2.0, 5.0, 0.0, 0.0]]


def test_sparse_reduce_sum():
    def make():
        sp = tf.SparseTensor(IDX, tf.constant([1.0, 2.0, 3.0, 4.0]), [3, 3])
        return [tf.sparse_reduce_sum(sp), tf.sparse_reduce_sum(sp, axis=0),
                tf.sparse_reduce_sum(sp, axis=1, keepdims=True),
                tf.sparse.reduce_sum(sp, axis=[0, 1]), tf.sparse_reduce_sum(sp, -1),
                tf.sparse_reduce_sum(sp, reduction_axes=0, keep_dims=True)]
    assert lists(run(make)) == [10.0, [2.0, 1.0, 7.0], [[1.0], [5.0], [4.0]], 10.0,
                                [1.0, 5.0, 4.0], [[2.0, 1.0, 7.0]]]


def test_sparse_add_dense_and_sparse():
    def make():
        sp = tf.SparseTensor(IDX, tf.constant([1.0, 2.0, 3.0, 4.0]), [3, 3])
        other = tf.SparseTensor([[0, 1], [0, 2], [2, 2]], tf.constant([10.0, 0.5, -4.0]),
                                [3, 3])
        return [tf.sparse_add(sp, tf.ones([3, 3])), tf.sparse.add(sp, other, thresh=0.6)]
    dense, merged = run(make)
    assert dense.tolist() == [[1.0, 2.0, 1.0], [3.0, 1.0, 4.0], [1.0, 1.0, 5.0]]
    # TensorFlow: the threshold drops the shared entry summing to 0, keeps the lone 0.5
    assert merged.indices.tolist() == [[0, 1], [0, 2], [1, 0], [1, 2]]
    assert merged.values.tolist() == [11.0, 0.5, 2.0, 3.0]
    assert merged.dense_shape.tolist() == [3, 3]


def test_sparse_placeholder_fed_per_run():
    with tf.Graph().as_default():
        ph = tf.sparse_placeholder(tf.float32)
        fixed = tf.sparse.placeholder(tf.float32, shape=[2, 3])
        assert ph.indices.shape.as_list() == [None, None] and ph.dense_shape.shape.as_list() \
            == [None]
        product = tf.sparse_tensor_dense_matmul(ph, tf.constant([[1.0], [2.0], [3.0]]))
        dense = tf.sparse.to_dense(ph)
        total = tf.sparse_reduce_sum(fixed, axis=1)
        with tf.Session() as sess:
            value = tf.SparseTensorValue([[0, 0], [1, 2]], [2.0, 5.0], [2, 3])
            assert sess.run(product, {ph: value}).tolist() == [[2.0], [15.0]]
            assert sess.run(product, {ph: ([[1, 1]], [3.0], [2, 3])}).tolist() == \
                [[0.0], [6.0]]
            # another dense shape: compiled for it
            assert sess.run(dense, {ph: ([[2, 0]], [1.0], [3, 1])}).tolist() == \
                [[0.0], [0.0], [1.0]]
            assert sess.run(dense, {ph: value}).tolist() == [[2.0, 0.0, 0.0], [0.0, 0.0, 5.0]]
            assert sess.run(total, {fixed: value}).tolist() == [2.0, 5.0]
            fetched = sess.run(ph, {ph: value})
            assert fetched.dense_shape.tolist() == [2, 3]
            with pytest.raises(ValueError, match="dense shape"):
                sess.run(total, {fixed: ([[0, 0]], [1.0], [3, 3])})


def test_a_graph_convolution_trains_on_a_fed_adjacency():
    """A GCN layer (Kipf & Welling's code feeds its normalized adjacency this way)."""
    adjacency = tf.SparseTensorValue([[0, 0], [0, 1], [1, 0], [1, 1], [2, 2]],
                                     [0.5, 0.5, 0.5, 0.5, 1.0], [3, 3])
    with tf.Graph().as_default():
        support = tf.sparse_placeholder(tf.float32)
        features = tf.constant([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        weights = tf.Variable([[0.1], [0.2]])
        out = tf.sparse_tensor_dense_matmul(support, tf.matmul(features, weights))
        loss = tf.reduce_sum(tf.square(out - tf.constant([[1.0], [1.0], [0.0]])))
        train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(20):
                sess.run(train, {support: adjacency})
            got = sess.run(weights)
    # the same descent in NumPy with the dense adjacency
    a = np.zeros((3, 3))
    a[tuple(np.array(adjacency.indices).T)] = adjacency.values
    x, w, t = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([[0.1], [0.2]]), \
        np.array([[1.0], [1.0], [0.0]])
    for _ in range(20):
        w = w - 0.1 * 2 * x.T @ a.T @ (a @ x @ w - t)
    np.testing.assert_allclose(got, w, rtol=1e-5)


def test_mistakes_are_clear():
    with tf.Graph().as_default():
        sp = tf.SparseTensor(IDX, tf.constant([1.0, 2.0, 3.0, 4.0]), [3, 3])
        # TensorFlow: "Dimensions must be equal, but are 3 and 4"
        with pytest.raises(ValueError, match="Dimensions must be equal, but are 3 and 4"):
            tf.sparse_tensor_dense_matmul(sp, tf.ones([4, 2]))
        # TensorFlow raises this when the graph runs
        with pytest.raises(ValueError, match=r"indices\[1\] = \[0, 1\] is repeated"):
            tf.sparse_to_dense([[0, 1], [0, 1]], [3, 2], [5, 6])
        with pytest.raises(TypeError, match="expected a tf.SparseTensor"):
            tf.sparse_reduce_sum(tf.ones([2]))
        dense_shape = tf.placeholder(tf.int64, [2])
        unknown = tf.SparseTensor(IDX, tf.constant([1.0, 2.0, 3.0, 4.0]), dense_shape)
        with pytest.raises(ValueError, match="must be known when the step is traced"):
            tf.sparse_tensor_dense_matmul(unknown, tf.ones([3, 2]))
