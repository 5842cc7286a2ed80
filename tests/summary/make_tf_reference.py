"""Records TensorFlow's summaries for tests/summary/tf_reference.json.

Run with a Python that has TensorFlow (not needed by the tests themselves):

    /path/to/tf/python tests/summary/make_tf_reference.py

It builds TF1 graphs (tf.compat.v1, eager off) with histogram, image, audio and text
summaries and scalar tags in name scopes, runs them on fixed inputs and writes what the
serialized Summary protos hold.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image
from tensorboard.compat.proto import summary_pb2

tf1 = tf.compat.v1
OUT = Path(__file__).with_name("tf_reference.json")


def histogram_inputs() -> dict[str, list[float]]:
    rng = np.random.default_rng(18)
    wide = rng.standard_normal(60) * 10.0 ** rng.integers(-14, 21, 60)
    return {
        "small": [1.0, 2.0, 3.0],
        "edges": [0.0, -0.0, 1e-13, -1e-13, 1e-12, 1.1e-12, 5.5, -7.25, 1e19, 2e20],
        "empty": [],
        "one": [3.0],
        "wide": wide.astype(np.float32).tolist(),
        "normal": rng.standard_normal(200).astype(np.float32).tolist(),
    }


def image_inputs() -> dict[str, np.ndarray]:
    rng = np.random.RandomState(0)
    nan, inf = np.nan, np.inf
    return {
        "positive": rng.uniform(0, 3, (2, 2, 3, 1)).astype(np.float32),
        "mixed": rng.uniform(-2, 1, (2, 2, 3, 3)).astype(np.float32),
        "nonfinite": np.array([[[[1, 2, 3], [nan, 0, 1], [0.5, 0.25, 0]],
                                [[inf, 1, 1], [1, 1, 1], [0, 0, 0]]]], np.float32),
        "zeros": np.zeros((1, 2, 3, 4), np.float32),
        "tiny": np.full((1, 2, 3, 1), 1e-7, np.float32),
        "rgba": np.array([[[[1, 2, 3, 1], [nan, 0, 1, 1], [0.5, 0.25, 0, -1]],
                           [[inf, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]]]], np.float32),
    }


def main() -> None:
    tf1.disable_eager_execution()
    reference: dict = {}
    with tf1.Graph().as_default():
        x = tf1.placeholder(tf.float32, [None])
        histo = tf1.summary.histogram("w", x, collections=[])
        images = tf1.placeholder(tf.float32, [None, 2, 3, None])
        image = tf1.summary.image("pic", images, max_outputs=3, collections=[])
        clips = tf1.placeholder(tf.float32, [None, None, None])
        sound = tf1.summary.audio("snd", clips, 8000, max_outputs=2, collections=[])
        names = [tf1.summary.scalar("loss", x[0]), tf1.summary.scalar("loss", x[0])]
        with tf1.name_scope("train"):
            names += [tf1.summary.scalar("acc", x[0]), tf1.summary.scalar("bad name!", x[0]),
                      tf1.summary.histogram("w", x)]
        names.append(tf1.summary.scalar("fam", x[0], family="grp"))
        notes = tf1.summary.text("notes", tf.constant(["a", "héllo *md*"]), collections=[])
        merged = tf1.summary.merge_all()
        with tf1.Session() as sess:
            reference["histograms"] = {}
            for key, values in histogram_inputs().items():
                proto = summary_pb2.Summary.FromString(sess.run(histo, {x: values}))
                h = proto.value[0].histo
                reference["histograms"][key] = {
                    "input": values, "min": h.min, "max": h.max, "num": h.num, "sum": h.sum,
                    "sum_squares": h.sum_squares, "bucket_limit": list(h.bucket_limit),
                    "bucket": list(h.bucket)}
            reference["images"] = {}
            for key, value in image_inputs().items():
                proto = summary_pb2.Summary.FromString(sess.run(image, {images: value}))
                decoded = [np.asarray(Image.open(io.BytesIO(v.image.encoded_image_string))).tolist()
                           for v in proto.value]
                reference["images"][key] = {
                    "input": np.where(np.isfinite(value), value, 0).tolist(),
                    "nonfinite": (~np.isfinite(value)).tolist(),
                    "tags": [v.tag for v in proto.value], "pixels": decoded}
            wave = np.array([[[0.0, 0.5], [1.0, -1.0], [2.0, -0.25], [0.3, 1e-5]]], np.float32)
            batch = np.concatenate([wave, wave * 0.5, wave])
            proto = summary_pb2.Summary.FromString(sess.run(sound, {clips: batch}))
            reference["audio"] = {
                "input": batch.tolist(),
                "clips": [{"tag": v.tag, "sample_rate": v.audio.sample_rate,
                           "num_channels": v.audio.num_channels,
                           "length_frames": v.audio.length_frames,
                           "content_type": v.audio.content_type,
                           "wav_hex": v.audio.encoded_audio_string.hex()}
                          for v in proto.value]}
            reference["text"] = summary_pb2.Summary.FromString(
                sess.run(notes)).SerializeToString().hex()
            reference["scalar_tags"] = [
                v.tag for v in summary_pb2.Summary.FromString(
                    sess.run(merged, {x: [1.0, 2.0]})).value]
            reference["summary_op_names"] = [t.op.name for t in names] + [merged.op.name]
    OUT.write_text(json.dumps(reference, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
