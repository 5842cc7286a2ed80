"""Embedding lookups, ``tf.gather`` and ``tf.IndexedSlices`` gradients in TF1 graphs.

Reference values are derived by hand (NumPy) or recorded from TensorFlow 2.21's
``tf.compat.v1`` running the same program (said at each test)."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
import tracejit.compat.v1 as tf
from tracejit.ir.errors import DTypeError, ParamError, ShapeError
from tracejit.trace.indexed_slices import to_dense


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield
    tf.reset_default_graph()


TABLE = np.arange(30, dtype=np.float32).reshape(10, 3) / 10.0 - 1.0
IDS = np.array([[9, 0, 4], [5, 5, 7]], np.int32)
WEIGHTS = np.linspace(-1, 1, 18).reshape(2, 3, 3).astype(np.float32)


def _dense(slices, shape):
    out = np.zeros(shape, np.float32)
    np.add.at(out, np.asarray(slices.indices), np.asarray(slices.values))
    return out


def test_lookup_gradient_is_indexed_slices_of_the_rows_read():
    # hand-derived: loss = sum(rows * w) gives each looked-up row its w; repeats add
    emb = tf.Variable(TABLE)
    ids = tf.placeholder(tf.int32, [None, 3])
    rows = tf.nn.embedding_lookup(emb, ids)
    assert rows.shape.as_list() == [None, 3, 3]
    weights = tf.placeholder(tf.float32, [None, 3, 3])
    grad = tf.gradients(tf.reduce_sum(rows * weights), emb)[0]
    assert isinstance(grad, tf.IndexedSlices)
    assert grad.values.shape.as_list() == [None, 3]
    assert grad.indices.shape.as_list() == [None]
    assert grad.dtype == tf.float32
    dense = tf.convert_to_tensor(grad)
    assert dense.shape.as_list() == [10, 3]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got_rows, value, got_dense = sess.run([rows, grad, dense],
                                              {ids: IDS, weights: WEIGHTS})
    np.testing.assert_array_equal(got_rows, TABLE[IDS])
    assert isinstance(value, tf.IndexedSlicesValue)
    np.testing.assert_array_equal(value.indices, IDS.reshape(-1))
    np.testing.assert_array_equal(value.values, WEIGHTS.reshape(6, 3))
    np.testing.assert_array_equal(value.dense_shape, [10, 3])
    expected = np.zeros((10, 3), np.float32)
    np.add.at(expected, IDS.reshape(-1), WEIGHTS.reshape(6, 3))
    np.testing.assert_array_equal(got_dense, expected)


def test_two_lookups_concatenate_their_rows_and_a_dense_use_densifies():
    emb = tf.Variable(TABLE)
    first = tf.nn.embedding_lookup(emb, [1, 2])
    second = tf.gather(emb, [2, 2, 7])
    loss = tf.reduce_sum(first) + 2.0 * tf.reduce_sum(second)
    sparse = tf.gradients(loss, emb)[0]
    mixed = tf.gradients(loss + tf.reduce_sum(emb * emb), emb)[0]
    assert isinstance(sparse, tf.IndexedSlices)
    assert isinstance(mixed, tf.Tensor)       # TF: add_n of IndexedSlices and a tensor
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        value, dense = sess.run([sparse, mixed])
    assert sorted(value.indices.tolist()) == [1, 2, 2, 2, 7]
    ones = np.ones((10, 3), np.float32)
    expected = np.zeros((10, 3), np.float32)
    expected[1] += 1
    expected[2] += 1 + 2 * 2
    expected[7] += 2
    np.testing.assert_array_equal(_dense(value, (10, 3)), expected)
    np.testing.assert_allclose(dense, expected * ones + 2 * TABLE, rtol=1e-6)


def test_gather_on_another_axis_has_a_dense_gradient():
    # hand-derived: gather along axis 1 sums each chosen column's cotangent
    x = tf.Variable(TABLE[:4])
    picked = tf.gather(x, [2, 0, 2], axis=1)
    grad = tf.gradients(tf.reduce_sum(picked), x)[0]
    assert isinstance(grad, tf.Tensor)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got = sess.run(grad)
    np.testing.assert_array_equal(got, np.tile([1.0, 0.0, 2.0], (4, 1)))


@pytest.mark.parametrize("strategy", ["mod", "div"])
def test_partitioned_lookup_matches_tensorflow(strategy):
    # TensorFlow 2.21 (tf.compat.v1) on the same program: the 10-row table split in
    # three partitions, by TF's "mod" rule ([0,3,6,9], [1,4,7], [2,5,8]) or its uneven
    # "div" rule (4, 3 and 3 rows); the gradients densified per partition.
    if strategy == "mod":
        parts_np = [TABLE[p::3] for p in range(3)]
    else:
        parts_np = [TABLE[0:4], TABLE[4:7], TABLE[7:10]]
    parts = [tf.Variable(p) for p in parts_np]
    ids = tf.constant(IDS)
    rows = tf.nn.embedding_lookup(parts, ids, partition_strategy=strategy)
    clipped = tf.nn.embedding_lookup(parts, ids, partition_strategy=strategy, max_norm=0.5)
    loss = tf.reduce_sum(rows * WEIGHTS) + tf.reduce_sum(tf.square(clipped))
    grads = tf.gradients(loss, parts)
    assert all(isinstance(g, tf.IndexedSlices) for g in grads)
    dense = [tf.convert_to_tensor(g) for g in grads]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got_rows, got_clipped, got_dense = sess.run([rows, clipped, dense])
    np.testing.assert_array_equal(got_rows, TABLE[IDS])
    tf_clipped = [[[0.2723575532436371, 0.2883785665035248, 0.30439963936805725],
                   [-0.31943827867507935, -0.287494421005249, -0.2555506229400635],
                   [0.18569539487361908, 0.27854296565055847, 0.3713906705379486]],
                  [[0.23836563527584076, 0.28603875637054443, 0.3337118923664093],
                   [0.23836563527584076, 0.28603875637054443, 0.3337118923664093],
                   [0.26400843262672424, 0.28800925612449646, 0.3120099902153015]]]
    np.testing.assert_allclose(got_clipped, tf_clipped, rtol=1e-6)
    # the gradient of the whole table, as TF gave it per partition
    tf_rows = {0: [-0.6470588445663452, -0.529411792755127, -0.4117647409439087],
               4: [-0.29411762952804565, -0.1764705926179886, -0.05882352963089943],
               5: [0.4705883264541626, 0.7058824300765991, 0.9411765336990356],
               7: [0.7647058963775635, 0.8823529481887817, 1.0],
               9: [-1.0, -0.8823529481887817, -0.7647058963775635]}
    whole = np.zeros((10, 3), np.float32)
    for row, value in tf_rows.items():
        whole[row] = value
    expected = [whole[p::3] for p in range(3)] if strategy == "mod" else \
        [whole[0:4], whole[4:7], whole[7:10]]
    for got, want in zip(got_dense, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_div_partitions_of_uneven_sizes_address_every_row():
    # hand-derived: 11 rows in 3 partitions by "div" are 4, 4 and 3 rows
    table = np.arange(11, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    parts = [tf.constant(table[0:4]), tf.constant(table[4:8]), tf.constant(table[8:11])]
    every = tf.nn.embedding_lookup(parts, tf.range(11), partition_strategy="div")
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(every), table)


def test_partitioned_variable_is_looked_up_by_its_parts():
    # hand-derived: fixed_size_partitioner(3) cuts 10 rows into 4, 3 and 3 (TF's "div"
    # layout); each part's gradient is an IndexedSlices of the rows it holds
    table = tf.get_variable("table", initializer=tf.constant(TABLE),
                            partitioner=tf.fixed_size_partitioner(3))
    assert [p.shape.as_list() for p in table] == [[4, 3], [3, 3], [3, 3]]
    rows = tf.nn.embedding_lookup(table, IDS, partition_strategy="div")
    grads = tf.gradients(tf.reduce_sum(rows), list(table))
    assert all(isinstance(g, tf.IndexedSlices) for g in grads)
    dense = [tf.convert_to_tensor(g) for g in grads]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got_rows, got_dense = sess.run([rows, dense])
    np.testing.assert_array_equal(got_rows, TABLE[IDS])
    counts = np.bincount(IDS.reshape(-1), minlength=10).astype(np.float32)[:, None]
    whole = np.repeat(counts, 3, axis=1)
    for got, want in zip(got_dense, [whole[0:4], whole[4:7], whole[7:10]], strict=True):
        np.testing.assert_array_equal(got, want)


def test_sgd_updates_only_the_rows_looked_up():
    # hand-derived: loss = sum(rows ** 2) / 2 has row gradient = the row; a repeated id
    # is updated once per repeat (scatter_sub), other rows keep their values
    emb = tf.Variable(TABLE)
    ids = tf.placeholder(tf.int32, [None])
    loss = 0.5 * tf.reduce_sum(tf.square(tf.nn.embedding_lookup(emb, ids)))
    train = tf.train.GradientDescentOptimizer(0.25).minimize(loss)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(train, {ids: [3, 8, 3]})
        got = sess.run(emb)
    expected = TABLE.copy()
    expected[3] = TABLE[3] - 0.25 * TABLE[3] - 0.25 * TABLE[3]
    expected[8] = TABLE[8] - 0.25 * TABLE[8]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_jit_gradients_with_indexed_slices_match_finite_differences():
    table = np.random.default_rng(0).normal(size=(6, 4))
    ids = np.array([[1, 4], [4, 0]], np.int32)

    def loss(t):
        return tj.reduce_sum(tj.sin(tj.nn.embedding_lookup(t, ids)))

    @tj.jit
    def grads(t):
        value = loss(t)
        return tj.gradients(value, t, indexed_slices=True), tj.gradients(value, t)

    sparse, dense = grads(table)
    assert isinstance(sparse, tj.IndexedSlices)
    np.testing.assert_allclose(np.asarray(to_dense(sparse)), np.asarray(dense), rtol=1e-12)
    step, numeric = 1e-6, np.zeros_like(table)
    for index in np.ndindex(table.shape):
        up, down = table.copy(), table.copy()
        up[index] += step
        down[index] -= step
        numeric[index] = (float(loss(up)) - float(loss(down))) / (2 * step)
    np.testing.assert_allclose(np.asarray(dense), numeric, rtol=1e-6, atol=1e-8)


def test_clipping_keeps_indexed_slices_and_measures_their_rows():
    # TensorFlow 2.21 (tf.compat.v1), same program: the norm counts each row of the
    # IndexedSlices as it is (the repeated id 1 twice), and the clipped gradient stays
    # an IndexedSlices with the same indices
    table = np.arange(12, dtype=np.float32).reshape(4, 3) / 4.0
    emb = tf.Variable(table)
    w = tf.Variable(np.array([1.0, -2.0], np.float32))
    rows = tf.nn.embedding_lookup(emb, [1, 1, 3])
    grads = tf.gradients(tf.reduce_sum(rows * rows) + tf.reduce_sum(w * w), [emb, w])
    clipped, norm = tf.clip_by_global_norm(grads, 3.0)
    one = tf.clip_by_norm(grads[0], 2.0)
    assert isinstance(clipped[0], tf.IndexedSlices) and isinstance(one, tf.IndexedSlices)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got, got_norm, got_one = sess.run([clipped, norm, one])
    np.testing.assert_allclose(got_norm, 10.977249145507812, rtol=1e-6)
    np.testing.assert_array_equal(got[0].indices, [1, 1, 3])
    np.testing.assert_allclose(got[0].values, [
        [0.4099387526512146, 0.5465850234031677, 0.6832312941551208],
        [0.4099387526512146, 0.5465850234031677, 0.6832312941551208],
        [1.2298163175582886, 1.3664625883102417, 1.5031088590621948]], rtol=1e-6)
    np.testing.assert_allclose(got[1], [0.5465850234031677, -1.0931700468063354], rtol=1e-6)
    np.testing.assert_allclose(got_one.values, [
        [0.29925277829170227, 0.3990037143230438, 0.4987546503543854],
        [0.29925277829170227, 0.3990037143230438, 0.4987546503543854],
        [0.8977583646774292, 0.9975093007087708, 1.0972602367401123]], rtol=1e-6)


def test_user_mistakes_are_clear_errors():
    emb = tf.Variable(TABLE)
    with pytest.raises(DTypeError, match="ids must be integers"):
        tf.nn.embedding_lookup(emb, tf.constant([0.5, 1.0]))
    with pytest.raises(ParamError, match="partition strategy"):
        tf.nn.embedding_lookup([emb, emb], [0, 1], partition_strategy="modulo")
    with pytest.raises(ShapeError, match="row shape"):
        tf.nn.embedding_lookup([emb, tf.Variable(TABLE[:, :2])], [0, 1])
    with pytest.raises(ShapeError, match="without dense_shape"):
        tf.convert_to_tensor(tf.IndexedSlices(tf.constant(TABLE[:2]), tf.constant([0, 1])))
    values = tf.constant(np.ones((2, 3), np.float32))
    bad = tf.IndexedSlices(values, tf.constant([0, 1]), tf.constant([10, 4]))
    with pytest.raises(ShapeError, match="do not fit"):
        tf.convert_to_tensor(bad)


@pytest.mark.parametrize("name", ["tracejit.trace.indexed_slices",
                                  "tracejit.trace.embedding_ops"])
def test_docstring_examples(name):
    import doctest
    import importlib
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted and not result.failed
