"""Records what TensorFlow's tf.data gives for tests/datasets/pipelines.py into
tests/datasets/tf_reference.json. Run with a Python that has TensorFlow (the tests do
not need it):

    /path/to/tf/python tests/datasets/make_tf_reference.py

Each pipeline is built in a TF1 graph (tf.compat.v1, eager execution off), read to the
end with a one-shot iterator; its elements, output_types and output_shapes are kept,
and the messages TensorFlow gives for a few errors.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pipelines  # noqa: E402

tf1 = tf.compat.v1
tf1.disable_eager_execution()
OUT = Path(__file__).with_name("tf_reference.json")


def error_of(build) -> dict:
    with tf1.Graph().as_default():
        try:
            pipelines.drain(tf1, build())
        except tf.errors.OpError as exc:
            return {"type": type(exc).__name__, "message": _kernel_message(exc.message)}
        except (TypeError, ValueError) as exc:
            return {"type": type(exc).__name__, "message": str(exc).split("\n")[0]}
    return {"type": None, "message": ""}


def _kernel_message(text: str) -> str:
    """The kernel's own words in a graph execution error (the line after 'Node: ...')."""
    lines = text.split("\n")
    for i, line in enumerate(lines[:-1]):
        if line.startswith("Node: "):
            return lines[i + 1]
    return lines[0]


def main() -> None:
    out = {"tensorflow": tf.__version__, "pipelines": {}, "errors": {}}
    with tempfile.TemporaryDirectory() as folder:
        files = pipelines.write_files(Path(folder))
        files.update(pipelines.write_records(tf1, Path(folder)))
        for name, build in pipelines.builders(tf1, files).items():
            with tf1.Graph().as_default():
                dataset = build()
                out["pipelines"][name] = {
                    **pipelines.describe(dataset),
                    "elements": [pipelines.encode(e) for e in pipelines.drain(tf1, dataset)]}
    data = tf1.data.Dataset
    ragged = lambda: data.from_generator(lambda: iter([[1], [2, 3]]), tf.int64,  # noqa: E731
                                         tf.TensorShape([None]))
    out["errors"]["batch_shapes"] = error_of(lambda: ragged().batch(2))
    out["errors"]["pad_smaller"] = error_of(lambda: ragged().padded_batch(2, [1]))
    with tf1.Graph().as_default():
        iterator = tf1.data.Iterator.from_structure(tf.int64, tf.TensorShape([]))
        for key, dataset in [("from_structure_types", data.range(3).map(
                                  lambda v: tf.cast(v, tf.float32))),
                             ("from_structure_shapes", data.from_tensor_slices(
                                 np.zeros((3, 2), np.int64)))]:
            try:
                iterator.make_initializer(dataset)
            except (TypeError, ValueError) as exc:
                out["errors"][key] = {"type": type(exc).__name__, "message": str(exc)}
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
