"""tracejit.summary's writer for @jit programs, read back with TensorBoard's own
EventAccumulator."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto import event_pb2, summary_pb2

import tracejit as tj
from tracejit.summary import EventWriter

from .reference import decode_png


def _read(logdir) -> EventAccumulator:
    accumulator = EventAccumulator(str(logdir), size_guidance={
        "scalars": 0, "histograms": 0, "images": 0, "audio": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


@tj.jit
def _train_step(w, x):
    loss = tj.reduce_mean(tj.square(x @ w))
    w = w - 0.01 * tj.grad(lambda w: tj.reduce_mean(tj.square(x @ w)))(w)
    return w, loss, tj.summary.histogram_stats(w)


def test_scalars_histograms_and_the_graph(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 2)).astype(np.float32)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    losses = []
    with tj.summary.create_file_writer(tmp_path) as writer:
        for step in range(3):
            w, loss, stats = _train_step(w, x)
            losses.append(float(loss))
            writer.scalar("loss", loss, step)
            writer.histogram("weights", stats, step)
            writer.histogram("raw/w", w, step)
        writer.add_graph(_train_step, w, x)
    assert len(glob.glob(os.path.join(tmp_path, "events.out.tfevents.*"))) == 1
    events = _read(tmp_path)
    scalars = events.Scalars("loss")
    assert [s.step for s in scalars] == [0, 1, 2]
    assert [s.value for s in scalars] == pytest.approx(losses, rel=1e-6)
    histograms = events.Histograms("weights")
    assert [h.step for h in histograms] == [0, 1, 2]
    last = histograms[-1].histogram_value
    assert last.num == 6 and last.min == pytest.approx(float(w.min()))
    assert last.sum == pytest.approx(float(w.sum()), rel=1e-6)
    raw = events.Histograms("raw/w")[-1].histogram_value
    assert (raw.num, raw.bucket, raw.bucket_limit) == (last.num, last.bucket, last.bucket_limit)
    nodes = {n.name: n for n in events.Graph().node}
    assert nodes["w"].op == "Placeholder" and nodes["x"].op == "Placeholder"
    matmul = next(n for n in nodes.values() if n.op == "matmul")
    assert list(matmul.input) == ["x", "w"]
    assert [d.size for d in matmul.attr["_output_shapes"].list.shape[0].dim] == [4, 2]
    assert any(n.op == "scatter_add" for n in nodes.values())


def test_images_audio_and_text(tmp_path):
    images = np.random.default_rng(1).uniform(0, 1, (4, 5, 6, 3)).astype(np.float32)
    clip = np.sin(np.linspace(0, 60, 400, dtype=np.float32))[None, :]
    with tj.summary.create_file_writer(tmp_path) as writer:
        writer.image("digits", images, step=7, max_outputs=2)
        writer.image("one", images[:1], step=7, max_outputs=1)
        writer.audio("tone", clip, sample_rate=8000, step=7)
        writer.text("notes", "learning rate **0.1**", step=7)
    events = _read(tmp_path)
    tags = events.Tags()
    assert sorted(tags["images"]) == ["digits/image/0", "digits/image/1", "one/image"]
    image = events.Images("digits/image/1")[0]
    assert (image.step, image.width, image.height) == (7, 6, 5)
    pixels = decode_png(image.encoded_image_string)
    assert pixels.shape == (5, 6, 3) and pixels.max() == 255
    audio = events.Audio("tone/audio/0")[0]
    assert (audio.sample_rate, audio.length_frames, audio.content_type) == \
        (8000, 400, "audio/wav")
    text = events.Tensors("notes")[0]
    assert text.tensor_proto.string_val == [b"learning rate **0.1**"]
    assert events.SummaryMetadata("notes").plugin_data.plugin_name == "text"


def test_traced_values_are_refused_with_a_hint(tmp_path):
    with tj.summary.create_file_writer(tmp_path) as writer:
        @tj.jit
        def step(x):
            writer.scalar("x", x.sum(), 0)
            return x

        with pytest.raises(TypeError, match="'x'.*traced value.*return it"):
            step(np.ones(3, np.float32))


def test_user_errors_name_the_tag(tmp_path):
    with tj.summary.create_file_writer(tmp_path) as writer:
        with pytest.raises(ValueError, match="'loss' takes one real number"):
            writer.scalar("loss", np.ones(2), 0)
        with pytest.raises(ValueError, match="Nan in summary histogram for: w"):
            writer.histogram("w", np.array([np.nan]), 0)
        with pytest.raises(ValueError, match="'pic'.*max_outputs must be a positive"):
            writer.image("pic", np.zeros((1, 2, 2, 1), np.uint8), 0, max_outputs=0)
        with pytest.raises(TypeError, match="global_step must be an integer"):
            writer.scalar("loss", 1.0, "three")
        with pytest.raises(TypeError, match="add_graph takes a function"):
            writer.add_graph(42)


def test_event_writer_bookkeeping(tmp_path):
    writer = EventWriter(tmp_path / "run", filename_suffix=".v2")
    assert writer.event_file.endswith(".v2") and writer.get_logdir() == str(tmp_path / "run")
    value = summary_pb2.Summary.Value(tag="t", simple_value=1.0)
    value.metadata.plugin_data.plugin_name = "scalars"
    for step in range(2):
        writer.add_summary(summary_pb2.Summary(value=[value]).SerializeToString(), step)
    writer.add_session_log(event_pb2.SessionLog(status=event_pb2.SessionLog.START), 0)
    writer.close()
    with pytest.warns(UserWarning, match="closed"):
        writer.add_summary(summary_pb2.Summary(value=[value]), 5)
    first_file = writer.event_file
    writer.reopen()
    writer.add_summary(summary_pb2.Summary(value=[value]), 9)
    assert writer.event_file != first_file
    writer.close()
    assert len(glob.glob(str(tmp_path / "run" / "events.out.tfevents.*"))) == 2
    first = [event_pb2.Event.FromString(record)
             for record in RawEventFileLoader(first_file).Load()]
    assert first[0].file_version == "brain.Event:2"
    summaries = [e for e in first if e.HasField("summary")]
    # TensorFlow's FileWriter writes a tag's plugin metadata once
    assert [e.summary.value[0].HasField("metadata") for e in summaries] == [True, False]
    assert any(e.HasField("session_log") for e in first)
    with pytest.raises(TypeError, match="Summary message or its serialized bytes"):
        EventWriter(tmp_path).add_summary(3.5)
    with pytest.raises(ValueError, match="log directory"):
        EventWriter("")
