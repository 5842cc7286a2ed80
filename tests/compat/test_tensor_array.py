"""tf.TensorArray in a TF1 graph: its methods, inside tf.while_loop, and gradients.

Expected values marked "TF" were printed by the same program run with TensorFlow 2.21's
``tensorflow.compat.v1`` after ``tf.disable_v2_behavior()`` (TF1 control flow); the others
are derived by hand in the test. Gradients are also checked against finite differences.
TensorFlow is not needed here.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import tracejit.compat.v1 as tf
from tracejit.compat.v1 import tensor_array


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


def run(fetches, feed=None):
    with tf.Session() as sess:
        return sess.run(fetches, feed)


def close(got, want, rtol=2e-5):
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                               rtol=rtol, atol=1e-6)


def numeric_grad(f, x, eps=1e-3):
    """Central differences of the scalar ``f`` at ``x`` (float64)."""
    x = np.asarray(x, np.float64)
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += eps
        down[idx] -= eps
        out[idx] = (f(up) - f(down)) / (2 * eps)
    return out


def test_module_docstring_runs():
    assert doctest.testmod(tensor_array).failed == 0


# ---- the methods, outside loops -------------------------------------------------------------

def test_write_read_stack_and_unwritten_elements_are_zeros():
    # TF: [[0, 0], [1, 2], [0, 0]], read(0) of an unwritten element is [0, 0], size 3
    ta = tf.TensorArray(tf.float32, size=3, element_shape=[2]).write(1, [1.0, 2.0])
    stacked, first, size = run([ta.stack(), ta.read(0), ta.size()])
    assert stacked.tolist() == [[0, 0], [1, 2], [0, 0]]
    assert first.tolist() == [0, 0] and int(size) == 3
    assert ta.stack().shape.as_list() == [3, 2] and ta.read(1).shape.as_list() == [2]


def test_the_first_write_decides_the_element_shape():
    ta = tf.TensorArray(tf.float32, size=3)
    assert ta.element_shape.dims is None
    # TF: a Python list is converted to the array's dtype
    ta = ta.write(2, [1, 2])
    assert ta.element_shape.as_list() == [2]
    assert run(ta.stack()).tolist() == [[0, 0], [0, 0], [1, 2]]


def test_unstack_gather_scatter_concat_split():
    # TF: unstack into a larger array pads with unwritten (zero) elements
    rows = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert run(tf.TensorArray(tf.float32, size=4).unstack(rows).stack()).tolist() == \
        rows + [[0, 0]]
    unstacked = tf.TensorArray(tf.float32, size=3).unstack(rows)
    assert run(unstacked.gather([2, 0])).tolist() == [[5, 6], [1, 2]]
    scattered = tf.TensorArray(tf.float32, size=3).scatter([2, 0], [[1.0, 2.0], [3.0, 4.0]])
    assert run(scattered.stack()).tolist() == [[3, 4], [0, 0], [1, 2]]
    assert run(tf.TensorArray(tf.float32, size=2).unstack([[1.0, 2.0], [3.0, 4.0]])
               .concat()).tolist() == [1, 2, 3, 4]
    assert run(tf.TensorArray(tf.float32, size=2).unstack([[[1.0, 2.0]], [[3.0, 4.0]]])
               .concat()).tolist() == [[1, 2], [3, 4]]


def test_split_into_unequal_lengths_reads_back_each_piece():
    ta = tf.TensorArray(tf.float32, size=2, infer_shape=False).split(
        [1.0, 2.0, 3.0, 4.0, 5.0], [2, 3])
    first, second, whole, size = run([ta.read(0), ta.read(1), ta.concat(), ta.size()])
    assert first.tolist() == [1, 2] and second.tolist() == [3, 4, 5]
    assert whole.tolist() == [1, 2, 3, 4, 5] and int(size) == 2


def test_gather_scatter_split_concat_gradients():
    # TF: every value below (P3 of the recording script)
    v = tf.placeholder(tf.float32, [2, 2])
    ta = tf.TensorArray(tf.float32, size=3, clear_after_read=False).scatter([2, 0], v)
    y = ta.gather([0, 2, 1])
    z = ta.stack()
    weights = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    loss = tf.reduce_sum(y * weights) + tf.reduce_sum(z * z)
    g = tf.gradients(loss, v)[0]
    x4 = tf.placeholder(tf.float32, [4, 3])
    pieces = tf.TensorArray(tf.float32, size=2, clear_after_read=False).split(x4, [2, 2])
    joined = pieces.concat()
    second = pieces.read(1)
    loss2 = tf.reduce_sum(joined * tf.reshape(tf.range(12, dtype=tf.float32), [4, 3])) + \
        tf.reduce_sum(second * second)
    g2 = tf.gradients(loss2, x4)[0]
    x4v = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    got = run([y, z, g, joined, second, g2], {v: [[1.0, -2.0], [0.5, 3.0]], x4: x4v})
    close(got[0], [[0.5, 3], [1, -2], [0, 0]])
    close(got[1], [[0.5, 3], [0, 0], [1, -2]])
    close(got[2], [[5, 0], [2, 8]])
    close(got[3], x4v)
    close(got[4], x4v[2:])
    close(got[5], [[0, 1, 2], [3, 4, 5], [7.2, 8.4, 9.6], [10.8, 12, 13.2]])


def test_a_dynamic_array_grows_at_known_indices():
    # TF: size 3 and rows [[0, 0], [0, 0], [1, 2]]
    ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True).write(2, [1.0, 2.0])
    size, stacked = run([ta.size(), ta.stack()])
    assert int(size) == 3 and stacked.tolist() == [[0, 0], [0, 0], [1, 2]]


def test_writing_an_index_twice_keeps_the_last_value():
    # NOTE: TF 1 refuses the second write at run time; tracejit overwrites (as TF 2's
    # TensorList-backed arrays do)
    ta = tf.TensorArray(tf.float32, size=2).write(0, [1.0, 2.0]).write(0, [3.0, 4.0])
    assert run(ta.stack()).tolist() == [[3, 4], [0, 0]]


# ---- users' mistakes ------------------------------------------------------------------------

def test_mistakes_are_clear_errors():
    # TF's messages (the first three are TF's own wording, checked at graph build here
    # where TF checks them when running)
    with pytest.raises(ValueError, match=r"Inconsistent shapes: saw \(3,\) but expected "
                                         r"\(2,\)"):
        tf.TensorArray(tf.float32, size=3).write(0, [1.0, 2.0]).write(1, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="Tried to read from index 5 but array is not "
                                         "resizeable and size is: 3"):
        tf.TensorArray(tf.float32, size=3).write(0, [1.0, 2.0]).read(5)
    with pytest.raises(ValueError, match="Tried to write to index 4 but array is not "
                                         "resizeable and size is: 3"):
        tf.TensorArray(tf.float32, size=3).write(4, [1.0, 2.0])
    with pytest.raises(ValueError, match="Tried to write to index 2 but array is not "
                                         "resizeable and size is: 2"):
        tf.TensorArray(tf.float32, size=2).unstack([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    with pytest.raises(TypeError, match="TensorArray dtype is float32 but Op is trying to "
                                        "write dtype int32"):
        tf.TensorArray(tf.float32, size=3).write(1, tf.constant([1, 2]))
    with pytest.raises(ValueError, match="Size must be provided"):
        tf.TensorArray(tf.float32)
    with pytest.raises(ValueError, match="lengths must be known"):
        tf.TensorArray(tf.float32, size=2).split([1.0, 2.0],
                                                 tf.placeholder(tf.int32, [2]))


def test_reading_an_array_nothing_was_written_to_without_element_shape():
    with pytest.raises(ValueError, match="give TensorArray.*element_shape"):
        tf.TensorArray(tf.float32, size=2).read(0)
    with pytest.raises(ValueError, match="give TensorArray.*element_shape"):
        tf.TensorArray(tf.float32, size=2, element_shape=[None, 3]).stack()


# ---- in tf.while_loop -----------------------------------------------------------------------

def test_a_loop_writes_one_element_per_iteration_and_the_gradient_flows():
    x = tf.constant(np.arange(6, dtype=np.float32).reshape(3, 2))
    ta = tf.TensorArray(tf.float32, size=3)
    _, ta = tf.while_loop(lambda i, ta: i < 3,
                          lambda i, ta: (i + 1, ta.write(i, x[i] * 2.0)), [0, ta])
    assert isinstance(ta, tf.TensorArray)
    stacked = ta.stack()
    assert stacked.shape.as_list() == [3, 2]
    xv = tf.placeholder(tf.float32, [3, 2])
    ta2 = tf.TensorArray(tf.float32, size=3)
    _, ta2 = tf.while_loop(lambda i, ta: i < 3,
                           lambda i, ta: (i + 1, ta.write(i, xv[i] * xv[i])), [0, ta2])
    g = tf.gradients(tf.reduce_sum(ta2.stack() * 3.0), xv)[0]
    value = np.array([[1.0, -2.0], [0.5, 3.0], [2.0, 0.0]], np.float32)
    got_stack, got_g = run([stacked, g], {xv: value})
    assert got_stack.tolist() == [[0, 2], [4, 6], [8, 10]]
    close(got_g, 6.0 * value)     # d/dx sum(3 x^2)


def test_a_recurrence_reads_one_array_and_writes_another():
    # TF: values and gradient (P2 of the recording script); finite differences agree
    x = tf.placeholder(tf.float32, [3, None])
    inputs = tf.TensorArray(tf.float32, size=3).unstack(x)
    outputs = tf.TensorArray(tf.float32, size=3)

    def body(i, acc, out):
        acc = acc * inputs.read(i) + 1.0
        return i + 1, acc, out.write(i, acc)
    _, acc, outputs = tf.while_loop(lambda i, a, o: i < 3, body, [0, tf.ones([2]), outputs])
    weights = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
    stacked = outputs.stack()
    g = tf.gradients(tf.reduce_sum(stacked * weights), x)[0]
    xv = np.array([[0.5, 1.5], [2.0, -1.0], [0.3, 0.7]], np.float32)
    got = run([stacked, acc, g], {x: xv})
    close(got[0], [[1.5, 2.5], [4.0, -1.5], [2.2, -0.04999995]])
    close(got[1], [2.2, -0.04999995])
    close(got[2], [[10.0, -6.2], [6.75, 20.5], [20.0, -9.0]])

    def loss(v):
        acc, total = np.ones(2), 0.0
        for i in range(3):
            acc = acc * v[i] + 1.0
            total += float((acc * weights[i]).sum())
        return total
    close(got[2], numeric_grad(loss, xv), rtol=1e-3)


def test_an_element_shape_with_an_unknown_batch_is_found_when_the_step_is_traced():
    # TF: values, gradient and the static shape (3, ?, 2) (P5 of the recording script)
    x = tf.placeholder(tf.float32, [None, 3, 2])
    ta = tf.TensorArray(tf.float32, size=3)

    def body(i, ta):
        return i + 1, ta.write(i, x[:, i] * tf.cast(i + 1, tf.float32) +
                               tf.reduce_sum(x, axis=1))
    _, ta = tf.while_loop(lambda i, ta: i < 3, body, [0, ta])
    out = ta.stack()
    assert out.shape.as_list() == [3, None, 2]
    g = tf.gradients(tf.reduce_sum(out * out), x)[0]
    xb = np.arange(12, dtype=np.float32).reshape(2, 3, 2) / 4
    got_out, got_g = run([out, g], {x: xb})
    close(got_out, [[[1.5, 2.5], [7.5, 8.5]], [[2.5, 3.75], [10.0, 11.25]],
                    [[4.5, 6.0], [13.5, 15.0]]])
    close(got_g, [[[20.0, 29.5], [27.0, 39.5], [44.0, 60.5]],
                  [[77.0, 86.5], [102.0, 114.5], [143.0, 159.5]]])
    # another batch size: the same graph, retraced for the new shape
    assert run(out, {x: np.ones((5, 3, 2), np.float32)}).shape == (3, 5, 2)


def test_a_dynamic_array_in_a_loop_has_room_for_maximum_iterations():
    # TF: [0, 1, 4, 9] and size 4
    ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
    _, ta = tf.while_loop(lambda i, ta: i < 4,
                          lambda i, ta: [i + 1, ta.write(i, tf.cast(i * i, tf.float32))],
                          [0, ta], maximum_iterations=4)
    stacked, size = run([ta.stack(), ta.size()])
    assert stacked.tolist() == [0, 1, 4, 9] and int(size) == 4


def test_a_dynamic_array_in_a_loop_without_a_bound_gets_a_room_per_iteration():
    # TF: [0, 1, 2, 3] and size 4 (TensorFlow grows the array as the loop runs; tracejit
    # counts the iterations when the step is traced: the predicate is a counter against
    # a constant)
    ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
    _, ta = tf.while_loop(lambda i, ta: i < 4,
                          lambda i, ta: (i + 1, ta.write(i, tf.cast(i, tf.float32))), [0, ta])
    x = tf.placeholder(tf.float32, [None, 2])
    rows = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
    _, rows = tf.while_loop(lambda i, r: i < tf.shape(x)[0],
                            lambda i, r: (i + 1, r.write(i, x[i] * 2.0)), [0, rows])
    stacked, size, doubled = run([ta.stack(), ta.size(), rows.stack()],
                                 {x: [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]})
    assert stacked.tolist() == [0, 1, 2, 3] and int(size) == 4
    assert doubled.tolist() == [[2, 4], [6, 8], [10, 12]]


def test_a_dynamic_array_in_a_loop_that_only_the_run_can_count_is_a_clear_error():
    # (found when the step is traced: the graph does not know the element's rank)
    n = tf.placeholder(tf.int32, [])
    ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
    _, ta = tf.while_loop(lambda i, ta: i < n,
                          lambda i, ta: (i + 1, ta.write(i, tf.cast(i, tf.float32))), [0, ta])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="known only when it runs.*maximum_iterations"):
        run(ta.stack(), {n: 3})


def test_nested_loops_fill_a_matrix_row_by_row():
    # hand-derived: row i, column j holds i * 10 + j
    rows = tf.TensorArray(tf.float32, size=3)

    def outer(i, rows):
        cols = tf.TensorArray(tf.float32, size=4)
        _, cols = tf.while_loop(
            lambda j, c: j < 4,
            lambda j, c: (j + 1, c.write(j, tf.cast(i * 10 + j, tf.float32))), [0, cols])
        return i + 1, rows.write(i, cols.stack())
    _, rows = tf.while_loop(lambda i, r: i < 3, outer, [0, rows])
    want = [[i * 10 + j for j in range(4)] for i in range(3)]
    assert run(rows.stack()).tolist() == want


def test_a_single_array_loop_variable_comes_back_as_an_array():
    ta = tf.TensorArray(tf.int32, size=2, element_shape=[])
    out = tf.while_loop(lambda t: tf.reduce_sum(t.stack()) < 5,
                        lambda t: t.write(0, t.read(0) + 1), [ta])
    assert isinstance(out, tf.TensorArray)
    assert run(out.stack()).tolist() == [5, 0]


def test_a_dynamic_array_takes_all_the_rows_unstacked_into_it():
    ta = tf.TensorArray(tf.float32, size=1, dynamic_size=True).unstack([[1.0], [2.0], [3.0]])
    stacked, size = run([ta.stack(), ta.size()])
    assert stacked.tolist() == [[1], [2], [3]] and int(size) == 3
    assert ta.stack().shape.as_list() == [3, 1]


def test_cond_branches_may_return_arrays_inside_and_outside_loops():
    # hand-derived: the taken branch's write, and its gradient
    p = tf.placeholder(tf.bool, [])
    x = tf.placeholder(tf.float32, [2])
    ta = tf.TensorArray(tf.float32, size=3, element_shape=[2])
    out = tf.cond(p, lambda: ta.write(0, x * 2.0), lambda: ta.write(1, x))
    assert isinstance(out, tf.TensorArray)
    stacked = out.stack()
    g = tf.gradients(tf.reduce_sum(stacked * tf.constant([[1.0, 2.0], [3.0, 4.0],
                                                          [5.0, 6.0]])), x)[0]

    def body(i, ta):
        return i + 1, tf.cond(tf.equal(i % 2, 0),
                              lambda: ta.write(i, tf.fill([2], tf.cast(i, tf.float32))),
                              lambda: ta)
    _, evens = tf.while_loop(lambda i, ta: i < 3, body,
                             [0, tf.TensorArray(tf.float32, size=3, element_shape=[2])])
    with tf.Session() as sess:
        taken, grad_taken = sess.run([stacked, g], {p: True, x: [1.0, -1.0]})
        other, grad_other = sess.run([stacked, g], {p: False, x: [1.0, -1.0]})
        assert sess.run(evens.stack()).tolist() == [[0, 0], [0, 0], [2, 2]]
    assert taken.tolist() == [[2, -2], [0, 0], [0, 0]] and grad_taken.tolist() == [2, 4]
    assert other.tolist() == [[0, 0], [1, -1], [0, 0]] and grad_other.tolist() == [3, 4]
