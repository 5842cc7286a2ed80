"""examples/tensorboard_tf1.py writes every kind of summary TensorBoard shows."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import tracejit.compat.v1 as tf

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tensorboard_tf1.py"


def test_the_tf1_example_logs_scalars_histograms_images_text_and_graph(tmp_path):
    spec = importlib.util.spec_from_file_location("tensorboard_tf1", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with tf.Graph().as_default():
        module.main(str(tmp_path), steps=21)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = events.Tags()
    assert sorted(tags["scalars"]) == ["metrics/accuracy", "metrics/cross_entropy"]
    assert sorted(tags["histograms"]) == ["hidden/weights_histogram",
                                          "softmax/weights_histogram"]
    assert sorted(tags["images"]) == [f"digits/image/{i}" for i in range(3)]
    assert tags["tensors"] == ["about"] and tags["graph"]
    assert [s.step for s in events.Scalars("metrics/accuracy")] == [0, 10, 20]
    names = {node.name for node in events.Graph().node}
    assert {"x", "y", "hidden/weights", "softmax/weights", "metrics/accuracy"} <= names
