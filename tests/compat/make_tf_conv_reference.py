"""Records TensorFlow 2.21's results of conv_programs.py into tf_conv_reference.json.
Run with TensorFlow installed (not a dependency of tracejit):

    python tests/compat/make_tf_conv_reference.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import tensorflow.compat.v1 as tf

sys.path.insert(0, str(Path(__file__).parent))
import conv_programs as programs  # noqa: E402

OUT = Path(__file__).with_name("tf_conv_reference.json")


def main() -> None:
    tf.disable_eager_execution()
    with tf.Graph().as_default(), tf.Session() as sess:
        fetches, feed = programs.build(tf)
        got = sess.run(fetches, feed)
    recorded = {k: {"value": np.asarray(v).tolist(),
                    "gradients": [np.asarray(g).tolist() for g in grads]}
                for k, (v, grads) in got.items()}
    OUT.write_text(json.dumps(recorded) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
