"""Meta graphs: tf.train.import_meta_graph of .meta files TensorFlow 2.21 wrote (with
its checkpoints; tests/data/tf_graphdef/make_golden.py) and of those tracejit's Saver
writes; Graph.as_graph_def round trips; tf.graph_util.

Expected values: TensorFlow's recorded outputs (saved_models.npz), or the outputs of the
same graph before it was written out."""

from pathlib import Path

import numpy as np
import pytest

import tracejit.compat.v1 as tf

DATA = Path(__file__).parent.parent / "data" / "tf_graphdef"
GOLDEN = np.load(DATA / "saved_models.npz")


@pytest.mark.parametrize("prefix", ["resource_model", "ref_model"])
def test_tensorflows_meta_graph_and_checkpoint(prefix):
    """The classic pattern on a model TensorFlow saved: resource variables (VarHandleOp,
    TensorFlow 2's default) and TF1 reference variables (VariableV2)."""
    with tf.Graph().as_default() as graph:
        saver = tf.train.import_meta_graph(str(DATA / f"{prefix}.ckpt.meta"))
        assert [v.op.name for v in tf.trainable_variables()] == \
            ["layer1/kernel", "layer1/bias", "kernel2"]
        assert [v.op.name for v in tf.global_variables()] == \
            ["layer1/kernel", "layer1/bias", "kernel2", "global_step"]
        # TensorFlow's saver nodes are not imported: the Saver returned is tracejit's
        assert not {"SaveV2", "RestoreV2"} & {op.type for op in graph.get_operations()}
        with tf.Session() as sess:
            saver.restore(sess, str(DATA / f"{prefix}.ckpt"))
            y = sess.run(graph.get_tensor_by_name("y:0"), {"x:0": GOLDEN["x"]})
            step = sess.run(tf.train.get_global_step())
            np.testing.assert_allclose(y, GOLDEN[f"{prefix}/y"], rtol=1e-6, atol=1e-7)
            assert step == 7            # make_golden.py assigns 7 before saving
            # TensorFlow's own initializer op is there too (zeros for layer 1, so the
            # glorot-uniform kernel2, drawn by tracejit, cannot change the output)
            sess.run("init")
            np.testing.assert_allclose(sess.run("y:0", {"x:0": GOLDEN["x"]}), 0.5)
            kernel2 = sess.run("kernel2:0")
            limit = np.sqrt(6 / (4 + 2))
            assert np.all(np.abs(kernel2) <= limit) and np.unique(kernel2).size == 8
            # the training op's gradient and update nodes (ReluGrad, ApplyGradientDescent,
            # ...) are not implemented: they import, and running them is the error
            with pytest.raises(tf.errors.UnimplementedError, match="does not implement op"):
                sess.run(tf.get_collection(tf.GraphKeys.TRAIN_OP)[0], {"x:0": GOLDEN["x"]})
            assert sess.run(tf.train.get_global_step()) == 0     # nothing ran


def _train_and_save(path):
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [None, 3], name="x")
        hidden = tf.layers.dense(x, 4, activation=tf.nn.relu, name="hidden")
        logits = tf.matmul(hidden, tf.get_variable("out", [4, 2])) + 0.5
        y = tf.nn.softmax(logits, name="y")
        predicted = tf.argmax(y, 1, name="predicted")
        loss = tf.reduce_mean(-tf.log(y[:, 0]), name="loss")
        step = tf.train.get_or_create_global_step()
        train = tf.train.GradientDescentOptimizer(0.5).minimize(loss, global_step=step,
                                                                name="train")
        saver = tf.train.Saver()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(3):
                sess.run(train, {x: np.ones((2, 3), np.float32)})
            expected = sess.run([y, predicted, loss], {x: GOLDEN["x"]})
            saver.save(sess, str(path))
    return expected


def test_tracejits_own_meta_graph_round_trips(tmp_path):
    path = tmp_path / "model.ckpt"
    expected = _train_and_save(path)
    with tf.Graph().as_default() as graph:
        saver = tf.train.import_meta_graph(f"{path}.meta")
        assert {v.op.name for v in tf.trainable_variables()} == \
            {"hidden/kernel", "hidden/bias", "out"}
        train = tf.get_collection(tf.GraphKeys.TRAIN_OP)[0]
        assert train.name == "train" and train.type == "GradientDescentOptimizer"
        with tf.Session() as sess:
            saver.restore(sess, str(path))
            values = sess.run(["y:0", "predicted:0", "loss:0"], {"x:0": GOLDEN["x"]})
            assert sess.run(tf.train.get_global_step()) == 3
            # the optimizer's update is what a GraphDef tracejit writes cannot describe
            grads = graph.get_tensor_by_name("gradients:0")
            assert sess.run(grads, {"x:0": GOLDEN["x"]}).shape == (3, 4)
            with pytest.raises(tf.errors.UnimplementedError, match=r"train \("):
                sess.run(train, {"x:0": GOLDEN["x"]})
            # the restored graph saves again
            again = saver.save(sess, str(tmp_path / "again"))
        assert graph.get_operation_by_name("predicted").type == "ArgMax"
    for value, reference in zip(values, expected, strict=True):
        np.testing.assert_allclose(value, reference, rtol=1e-6)
    assert tf.train.list_variables(again) == tf.train.list_variables(str(path))


def test_import_scope_and_text_meta_graph(tmp_path):
    path = tmp_path / "model.ckpt"
    expected = _train_and_save(path)
    with tf.Graph().as_default():
        tf.train.import_meta_graph(f"{path}.meta")
        text = tmp_path / "model.pbtxt"
        tf.train.export_meta_graph(str(text), as_text=True, clear_devices=True)
    assert text.read_text().startswith("meta_info_def")
    with tf.Graph().as_default() as graph:
        tf.placeholder(tf.float32, name="x")      # a name the scope keeps apart
        saver = tf.train.import_meta_graph(str(text), import_scope="restored")
        y = graph.get_tensor_by_name("restored/y:0")
        with tf.Session() as sess:
            saver.restore(sess, str(path))
            out = sess.run(y, {"restored/x:0": GOLDEN["x"]})
    np.testing.assert_allclose(out, expected[0], rtol=1e-6)


def test_graph_def_round_trip_keeps_every_recorded_call():
    """as_graph_def of ops recorded as tf.* calls (slices, keyword arguments, gradients)
    imports as the same computation."""
    x_value = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
    with tf.Graph().as_default() as graph:
        x = tf.placeholder(tf.float32, [None, 4], name="x")
        w = tf.constant(np.linspace(-1, 1, 8, dtype=np.float32).reshape(4, 2), name="w")
        y = tf.reduce_sum(tf.tanh(tf.matmul(x, w)) ** 2, axis=1, keepdims=True, name="y")
        parts = tf.concat([x[:, ::2], x[..., 1:2], tf.expand_dims(x[:, -1], -1)], axis=1)
        grad = tf.gradients(tf.reduce_sum(y * parts[:, :1]), x)[0]
        names = tf.constant(["first", "second"], name="names")
        fetches = [y, parts, grad, tf.shape(x)[0] * 2, tf.cast(x > 0.5, tf.int32), names]
        with tf.Session() as sess:
            expected = sess.run(fetches, {x: x_value})
        graph_def = graph.as_graph_def()
    with tf.Graph().as_default():
        imported = tf.import_graph_def(graph_def, return_elements=[t.name for t in fetches])
        with tf.Session() as sess:
            values = sess.run(imported, {"import/x:0": x_value})
    assert values.pop().tolist() == expected.pop().tolist() == [b"first", b"second"]
    for value, reference in zip(values, expected, strict=True):
        np.testing.assert_allclose(value, reference, rtol=1e-6)
    types = {node.name: node.op for node in graph_def.node}
    assert types["Matmul"] == "MatMul"
    assert types["y"] == "Sum" and types["gradients"] == "Gradients"


def test_convert_variables_to_constants_and_extract_sub_graph():
    with tf.Graph().as_default() as graph:
        x = tf.placeholder(tf.float32, [None, 3], name="x")
        w = tf.Variable(np.arange(6, dtype=np.float32).reshape(3, 2), name="w")
        y = tf.nn.relu(tf.matmul(x, w) - 4.0, name="y")
        unrelated = tf.Variable(1.0, name="unrelated")
        tf.identity(unrelated * 2.0, name="other")
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            expected = sess.run(y, {x: GOLDEN["x"]})
            frozen = tf.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), ["y"])
    names = {node.name: node.op for node in frozen.node}
    assert names["w"] == "Const" and "unrelated" not in names and "other" not in names
    assert "w/Assign" not in names
    with tf.Graph().as_default():
        y_frozen, = tf.import_graph_def(frozen, return_elements=["y:0"], name="")
        with tf.Session() as sess:        # no initializer: the weights are constants
            np.testing.assert_allclose(sess.run(y_frozen, {"x:0": GOLDEN["x"]}), expected)
    with pytest.raises(AssertionError, match="nothere is not in graph"):
        tf.graph_util.extract_sub_graph(frozen, ["nothere"])


def test_freezing_a_restored_tensorflow_model():
    """Resource-variable reads become Identity nodes of the frozen constants."""
    with tf.Graph().as_default() as graph:
        saver = tf.train.import_meta_graph(str(DATA / "resource_model.ckpt.meta"))
        with tf.Session() as sess:
            saver.restore(sess, str(DATA / "resource_model.ckpt"))
            frozen = tf.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), ["y"])
    ops = {node.name: node.op for node in frozen.node}
    assert ops["layer1/kernel"] == "Const" and ops["MatMul/ReadVariableOp"] == "Identity"
    with tf.Graph().as_default():
        y, = tf.import_graph_def(frozen, return_elements=["y:0"])
        with tf.Session() as sess:
            out = sess.run(y, {"import/x:0": GOLDEN["x"]})
    np.testing.assert_allclose(out, GOLDEN["resource_model/y"], rtol=1e-6, atol=1e-7)
