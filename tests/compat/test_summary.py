"""tf.summary in TF1 graphs, against what TensorFlow 2.21 does with the same program
(tests/summary/tf_reference.json), and event files read back by TensorBoard."""

from __future__ import annotations

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import tracejit.compat.v1 as tf
from tests.summary.reference import decode_png, tf_images, tf_reference


@pytest.fixture(autouse=True)
def fresh_graph():
    with tf.Graph().as_default() as graph:
        yield graph


def _parse(data) -> tf.summary.Summary:
    assert isinstance(data, bytes)
    return tf.summary.Summary.FromString(data)


def _read(logdir) -> EventAccumulator:
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0,
                                                          "images": 0, "tensors": 0})
    events.Reload()
    return events


def test_tags_names_scopes_and_merge_all_as_tensorflow():
    x = tf.placeholder(tf.float32, [None])
    names = [tf.summary.scalar("loss", x[0]), tf.summary.scalar("loss", x[0])]
    with tf.name_scope("train"):
        names += [tf.summary.scalar("acc", x[0]), tf.summary.scalar("bad name!", x[0]),
                  tf.summary.histogram("w", x)]
    names.append(tf.summary.scalar("fam", x[0], family="grp"))
    merged = tf.summary.merge_all()
    reference = tf_reference()
    assert [t.op.name for t in names] + [merged.op.name] == reference["summary_op_names"]
    assert tf.get_collection(tf.GraphKeys.SUMMARIES) == names
    with tf.Session() as sess:
        summary = _parse(sess.run(merged, {x: [1.5, 2.0]}))
    assert [v.tag for v in summary.value] == reference["scalar_tags"]
    assert summary.value[0].simple_value == 1.5
    assert summary.value[4].histo.num == 2


def test_collections_merge_and_merge_all_of_nothing():
    x = tf.constant(2.0)
    a = tf.summary.scalar("a", x, collections=["mine"])
    b = tf.summary.scalar("b", x * 2, collections=[])
    assert tf.summary.merge_all() is None
    assert tf.get_collection("mine") == [a]
    both = tf.summary.merge([a, b], name="both")
    assert both.op.name == "both/both" and both.op.type == "MergeSummary"
    again = tf.summary.merge([both, tf.summary.merge_all("mine")])
    with tf.Session() as sess:
        assert [v.tag for v in _parse(sess.run(both)).value] == ["a", "b"]
        assert [v.simple_value for v in _parse(sess.run(again)).value] == [2.0, 4.0, 2.0]


@pytest.mark.parametrize("case", ["edges", "wide", "empty"])
def test_histogram_equals_tensorflows(case):
    ref = tf_reference()["histograms"][case]
    x = tf.placeholder(tf.float32, [None])
    histogram = tf.summary.histogram("w", x)
    with tf.Session() as sess:
        h = _parse(sess.run(histogram, {x: ref["input"]})).value[0].histo
    assert list(h.bucket_limit) == ref["bucket_limit"] and list(h.bucket) == ref["bucket"]
    assert (h.min, h.max, h.num) == (ref["min"], ref["max"], ref["num"])
    assert h.sum == pytest.approx(ref["sum"], rel=1e-12)


def test_the_histogram_is_computed_in_the_same_step_as_the_other_fetches():
    w = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3))
    step = tf.assign_add(w, tf.ones_like(w))
    with tf.control_dependencies([step]):
        after = tf.identity(w)
    histogram = tf.summary.histogram("after", after)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        # NOTE: one run of the step: were the parts fetched apart, w would be
        # incremented twice and the histogram and the value would differ
        data, value = sess.run([histogram, after])
    h = _parse(data).value[0].histo
    assert (h.min, h.max, h.sum) == (1.0, 6.0, 21.0) and value.sum() == 21.0


def test_nan_and_infinity_in_a_histogram_raise_invalid_argument_naming_it():
    x = tf.placeholder(tf.float32, [None])
    with tf.name_scope("layer1"):
        histogram = tf.summary.histogram("weights", x)
    with tf.Session() as sess:
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match="Nan in summary histogram for: layer1/weights"):
            sess.run(histogram, {x: [1.0, np.nan]})
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match="Infinity in Histogram for: layer1/weights"):
            sess.run(histogram, {x: [np.inf]})


@pytest.mark.parametrize("case", ["mixed", "nonfinite", "rgba"])
def test_images_equal_tensorflows(case):
    images, tags, pixels = tf_images(case)
    placeholder = tf.placeholder(tf.float32, [None, 2, 3, None])
    summary = tf.summary.image("pic", placeholder, max_outputs=3)
    with tf.Session() as sess:
        values = _parse(sess.run(summary, {placeholder: images})).value
    assert [v.tag for v in values] == tags
    for value, expected in zip(values, pixels, strict=True):
        expected = np.array(expected, np.uint8).reshape(2, 3, -1)
        assert np.array_equal(decode_png(value.image.encoded_image_string), expected)


def test_audio_and_text_equal_tensorflows():
    ref = tf_reference()
    clips = tf.placeholder(tf.float32, [None, None, None])
    audio = tf.summary.audio("snd", clips, 8000, max_outputs=2)
    text = tf.summary.text("notes", tf.constant(["a", "héllo *md*"]))
    with tf.Session() as sess:
        sound, notes = sess.run([audio, text], {clips: ref["audio"]["input"]})
    assert [v.audio.encoded_audio_string.hex() for v in _parse(sound).value] == \
        [c["wav_hex"] for c in ref["audio"]["clips"]]
    assert _parse(notes) == tf.summary.Summary.FromString(bytes.fromhex(ref["text"]))


def test_text_of_a_fed_string_and_of_a_python_string():
    words = tf.placeholder(tf.string, [None])
    fed = tf.summary.text("fed", words)
    plain = tf.summary.text("plain", "# Title")
    with tf.Session() as sess:
        one, two = sess.run([fed, plain], {words: ["x", "y"]})
    assert list(_parse(one).value[0].tensor.string_val) == [b"x", b"y"]
    assert list(_parse(two).value[0].tensor.string_val) == [b"# Title"]


def test_user_mistakes_are_clear_errors():
    with pytest.raises(ValueError, match="'v' takes a scalar.*shape"):
        tf.summary.scalar("v", tf.constant([1.0, 2.0]))
    with pytest.raises(TypeError, match="'s' takes a numeric tensor.*string"):
        tf.summary.scalar("s", tf.constant("a"))
    with pytest.raises(TypeError, match="'t' takes a string tensor.*float32"):
        tf.summary.text("t", tf.constant(1.0))
    with pytest.raises(ValueError, match="'im'.*1, 3 or 4 channels"):
        tf.summary.image("im", tf.zeros([1, 4, 4, 2]))
    with pytest.raises(ValueError, match="max_outputs must be a positive integer"):
        tf.summary.image("im2", tf.zeros([1, 4, 4, 3]), max_outputs=0)
    with pytest.raises(TypeError, match="merge takes summary tensors.*float32"):
        tf.summary.merge([tf.constant(1.0)])
    p = tf.placeholder(tf.float32, None)
    unknown = tf.summary.scalar("p", p)
    loss = tf.summary.scalar("loss", tf.constant(1.0))
    with tf.Session() as sess:
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"tags and values are not the same shape: \[\] != \[2\]"):
            sess.run(unknown, {p: [1.0, 2.0]})
        assert _parse(sess.run(unknown, {p: 3.0})).value[0].simple_value == 3.0
        with pytest.raises(tf.errors.UnimplementedError, match="known to the session only"):
            sess.run(tf.identity(loss))


def test_file_writer_summaries_graph_and_cache(tmp_path):
    x = tf.placeholder(tf.float32, [None, 3], name="x")
    with tf.device("/cpu:0"):
        w = tf.Variable(tf.ones([3, 2]), name="w")
    y = tf.matmul(x, w, name="y")
    loss = tf.reduce_mean(y, name="mean")
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    with tf.control_dependencies([train]):
        done = tf.no_op(name="done")
    # NOTE: an op named "loss" would make the tag "loss_1", as in TensorFlow
    assert tf.summary.scalar("loss", loss).name == "loss:0"
    tf.summary.histogram("weights", w)
    merged = tf.summary.merge_all()
    with tf.summary.FileWriter(str(tmp_path), tf.get_default_graph(), flush_secs=1) as writer:
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for step in range(3):
                summary, _ = sess.run([merged, done], {x: np.ones((4, 3), np.float32)})
                writer.add_summary(summary, global_step=step)
        writer.add_session_log(tf.summary.SessionLog(status=tf.summary.SessionLog.STOP), 3)
        assert writer.get_logdir() == str(tmp_path)
    events = _read(tmp_path)
    assert [s.step for s in events.Scalars("loss")] == [0, 1, 2]
    assert events.Scalars("loss")[0].value == pytest.approx(3.0)
    assert [h.histogram_value.num for h in events.Histograms("weights")] == [6, 6, 6]
    nodes = {n.name: n for n in events.Graph().node}
    assert nodes["x"].op == "Placeholder"
    assert [d.size for d in nodes["x"].attr["_output_shapes"].list.shape[0].dim] == [-1, 3]
    assert list(nodes["y"].input)[0] == "x" and nodes["w"].device == "/device:CPU:0"
    assert list(nodes["done"].input) == [f"^{train.name}"]
    assert nodes["mean"].attr["dtype"].type == 1     # DT_FLOAT
    cached = tf.summary.FileWriterCache.get(str(tmp_path / "cached"))
    assert tf.summary.FileWriterCache.get(str(tmp_path / "cached")) is cached
    tf.summary.FileWriterCache.clear()
    assert cached.closed
    assert tf.summary.FileWriterCache.get(str(tmp_path / "cached")) is not cached
    tf.summary.FileWriterCache.clear()


def test_tensor_summary_keeps_the_tensor_and_its_metadata():
    x = tf.placeholder(tf.int32, [None, 2])
    metadata = tf.summary.SummaryMetadata()
    metadata.plugin_data.plugin_name = "custom"
    summary = tf.summary.tensor_summary("raw", x * 2, summary_metadata=metadata,
                                        display_name="Raw")
    words = tf.summary.tensor_summary("words", tf.constant(["a", "b"]))
    with tf.Session() as sess:
        value = _parse(sess.run(summary, {x: [[1, 2], [3, 4]]})).value[0]
        strings = _parse(sess.run(words)).value[0]
    assert value.tag == "raw" and value.metadata.plugin_data.plugin_name == "custom"
    assert value.metadata.display_name == "Raw"
    assert value.tensor.dtype == 3 and [d.size for d in value.tensor.tensor_shape.dim] == [2, 2]
    assert np.frombuffer(value.tensor.tensor_content, "<i4").tolist() == [2, 4, 6, 8]
    assert list(strings.tensor.string_val) == [b"a", b"b"]
    assert tf.summary.all_v2_summary_ops() == [] and tf.summary.initialize() is None
