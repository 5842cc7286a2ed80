"""tf.Print, tf.print, tf.py_func, tf.numpy_function. The printed texts, the values
handed to a py_func and the error texts are those TensorFlow 2.21 gave for the same
programs (tf.compat.v1, eager execution off)."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit.compat.v1 as tf

X = [1.0, 2.5, 3.0, 4.0, 5.0]
M = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def run(make, feed=None):
    with tf.Graph().as_default():
        out = make()
        with tf.Session() as sess:
            return sess.run(out, feed)


def printed(capfd) -> list[str]:
    return capfd.readouterr().err.splitlines()


@pytest.mark.parametrize("make,expected", [
    (lambda x: tf.Print(x, [x, tf.constant(M), tf.constant(7)], "vals: "),
     "vals: [1 2.5 3...][[1 2 3]...][7]"),
    (lambda x: tf.Print(x, [x, tf.constant(M)], summarize=2), "[1 2.5...][[1 2...]...]"),
    (lambda x: tf.Print(x, [tf.constant([True, False]), tf.zeros([0]),
                            tf.constant([1.5, -2.25], tf.float16),
                            tf.constant([1e-8, 123456789.0, np.nan, -np.inf], tf.float32),
                            tf.constant([0.1, 1 / 3], tf.float64)], "misc ", summarize=10),
     "misc [1 0][][1.5 -2.25][1e-08 123456792 nan -inf][0.1 0.33333333333333331]"),
    (lambda x: tf.Print(x, [tf.reshape(tf.range(24), [2, 3, 4])], "r3 ", summarize=30),
     "r3 [[[0 1 2 3][4 5 6 7][8 9 10 11]][[12 13 14 15][16 17 18 19][20 21 22 23]]]"),
    (lambda x: tf.Print(x, [tf.reshape(tf.range(24), [2, 3, 4])], "r3s "),
     "r3s [[[0 1 2...]]...]"),
    (lambda x: tf.Print(x, [], "empty"), "empty"),
    (lambda x: tf.Print(x, [x], summarize=-1), "[1 2.5 3 4 5]"),
])
def test_print_writes_tensorflows_text_and_returns_its_input(capfd, make, expected):
    def build():
        y = make(tf.constant(X))
        assert y.op.type == "Print" and y.shape.as_list() == [5]
        return y
    assert run(build).tolist() == X
    assert printed(capfd) == [expected]


def test_print_first_n_counts_across_runs(capfd):
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [None])
        y = tf.Print(x, [x], "first ", first_n=2)
        with tf.Session() as sess:
            for v in ([1.0], [2.0, 3.0], [4.0]):
                sess.run(y, {x: v})
    assert printed(capfd) == ["first [1]", "first [2 3]"]


def test_print_passes_the_gradient_and_trains(capfd):
    with tf.Graph().as_default():
        w = tf.Variable([1.0, 2.0])
        loss = tf.Print(tf.reduce_sum(w * w), [w], "w: ")
        grad = tf.gradients(loss, w)[0]
        train = tf.train.GradientDescentOptimizer(0.25).minimize(loss)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            assert sess.run(grad).tolist() == [2.0, 4.0]
            sess.run(train)
            assert sess.run(w).tolist() == [0.5, 1.0]
    assert printed(capfd) == ["w: [1 2]", "w: [1 2]"]


def test_print_in_a_loop_body_prints_every_iteration(capfd):
    def make():
        def body(i, acc):
            acc = tf.Print(acc + 1.0, [i, acc], "step ")
            return i + 1, acc
        return tf.while_loop(lambda i, acc: i < 3, body, [0, tf.constant(10.0)])
    assert [float(v) for v in run(make)] == [3.0, 13.0]
    assert printed(capfd) == ["step [0][10]", "step [1][11]", "step [2][12]"]


def test_tf_print_formats_and_control_dependencies(capfd):
    def make():
        x = tf.constant(X)
        shown = [tf.print("x:", x), tf.print(tf.range(10)),
                 tf.print(tf.reshape(tf.range(12), [3, 4])),
                 tf.print(tf.reshape(tf.range(64), [8, 8])),
                 tf.print(tf.range(10), summarize=-1),
                 tf.print("a", 3, tf.constant(7), sep="|"),
                 tf.print(tf.constant([True, False])),
                 tf.print(tf.constant(0.1, tf.float64)),
                 tf.print(tf.constant([1e-8, 123456789.0, np.nan]))]
        assert shown[0].type == "PrintV2"
        outs = []
        for op in shown:
            with tf.control_dependencies([op]):
                outs.append(tf.identity(x))
        return outs
    run(make)
    assert printed(capfd) == [
        "x: [1 2.5 3 4 5]", "[0 1 2 ... 7 8 9]",
        "[[0 1 2 3]", " [4 5 6 7]", " [8 9 10 11]]",
        "[[0 1 2 ... 5 6 7]", " [8 9 10 ... 13 14 15]", " [16 17 18 ... 21 22 23]", " ...",
        " [40 41 42 ... 45 46 47]", " [48 49 50 ... 53 54 55]", " [56 57 58 ... 61 62 63]]",
        "[0 1 2 3 4 5 6 7 8 9]", "a|3|7", "[1 0]", "0.1", "[1e-08 123456792 nan]"]


def test_print_of_a_string_tensor_is_a_clear_error():
    with tf.Graph().as_default():
        with pytest.raises(TypeError, match="cannot print the string tensor"):
            tf.Print(tf.constant([1.0]), [tf.constant(["ab"])])


def test_py_func_gets_numpy_values_and_returns_several():
    seen = []

    def f(a, b, c):
        seen.append((type(a), a.dtype, b.tolist(), type(c), c))
        return a * 2, np.int32(len(b))

    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [None])
        y, n = tf.py_func(f, [x, tf.constant(["ab", "c"]), tf.constant(3)],
                          [tf.float32, tf.int32])
        assert y.op.type == "PyFunc" and y.shape.ndims is None
        z = tf.numpy_function(lambda a: a + 1, [x], tf.float32)
        assert isinstance(tf.py_func(lambda a: a, [x], [tf.float32]), list)
        assert tf.py_func(lambda a: a, [x], tf.float32, stateful=False).op.type == \
            "PyFuncStateless"
        after = tf.reduce_sum(y) + tf.cast(n, tf.float32)     # graph ops on the results
        with tf.Session() as sess:
            got = sess.run([y, n, z, after], {x: [1.0, 2.0]})
    assert got[0].tolist() == [2.0, 4.0] and got[0].dtype == np.float32
    assert got[1] == 2 and got[2].tolist() == [2.0, 3.0] and got[3] == 8.0
    assert seen[0] == (np.ndarray, np.float32, [b"ab", b"c"], np.int32, 3)


def test_py_func_strings_out_and_no_gradient():
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [None])
        names = tf.py_func(lambda a: np.array([b"x", b"yz"]), [x], tf.string)
        z = tf.py_func(lambda a: a + 1, [x], tf.float32)
        assert tf.gradients(tf.reduce_sum(z), x) == [None]
        with tf.Session() as sess:
            assert sess.run(names, {x: [1.0]}).tolist() == [b"x", b"yz"]


def test_py_func_errors_name_the_op_and_the_line():
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [None])
        bad = tf.py_func(lambda a: 1 / 0, [x], tf.float32)
        wrong_type = tf.py_func(lambda a: "str", [x], tf.float32)
        wrong_count = tf.py_func(lambda a: (a, a), [x], tf.float32)
        python_float = tf.py_func(lambda a: 2.0, [x], tf.float32)
        python_int = tf.py_func(lambda a: 3, [x], tf.int64)
        with tf.Session() as sess:
            with pytest.raises(tf.errors.UnknownError, match="ZeroDivisionError") as info:
                sess.run(bad, {x: [1.0]})
            assert "test_print_py_func.py" in str(info.value)
            assert info.value.op is bad.op
            with pytest.raises(tf.errors.InvalidArgumentError,
                               match="0-th value returned by pyfunc_1 is string, but "
                                     "expects float"):
                sess.run(wrong_type, {x: [1.0]})
            with pytest.raises(tf.errors.InvalidArgumentError,
                               match="pyfunc_2 returns 2 values, but expects to see 1"):
                sess.run(wrong_count, {x: [1.0]})
            with pytest.raises(tf.errors.InvalidArgumentError,
                               match="is double, but expects float"):
                sess.run(python_float, {x: [1.0]})
            assert sess.run(python_int, {x: [1.0]}) == 3
            # the session goes on after the errors
            assert sess.run(x * 2, {x: [1.0]}).tolist() == [2.0]


def test_py_func_inside_a_loop_body_is_refused():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="cannot run inside a tf.while_loop"):
            tf.while_loop(lambda i: i < 3,
                          lambda i: tf.py_func(lambda v: v + 1, [i], tf.int32), [0])
