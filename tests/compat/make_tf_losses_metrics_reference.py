"""Records TensorFlow 2.21's tf.compat.v1.losses and tf.compat.v1.metrics on the programs
of loss_metric_programs.py into tf_losses_metrics_reference.json. Run with TensorFlow
installed (not a dependency of tracejit):

    python tests/compat/make_tf_losses_metrics_reference.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import tensorflow.compat.v1 as tf

sys.path.insert(0, str(Path(__file__).parent))
import loss_metric_programs as programs  # noqa: E402

OUT = Path(__file__).with_name("tf_losses_metrics_reference.json")


def losses(sess) -> dict:
    return {k: np.asarray(v).tolist() for k, v in sess.run(programs.build_losses(tf)).items()}


def metrics(sess) -> dict:
    p = programs.metric_placeholders(tf)
    made = programs.build_metrics(tf, p)
    sess.run(tf.local_variables_initializer())
    updates = {k: [] for k in made}
    for batch in programs.METRIC_BATCHES:
        got = sess.run({k: u for k, (_, u) in made.items()}, programs.feed(p, batch))
        for key, value in got.items():
            updates[key].append(np.asarray(value).tolist())
    values = sess.run({k: v for k, (v, _) in made.items()})
    return {"updates": updates,
            "values": {k: np.asarray(v).tolist() for k, v in values.items()},
            "local_variable_names": sorted(v.name for v in tf.local_variables())}


def main() -> None:
    tf.disable_eager_execution()
    with tf.Graph().as_default(), tf.Session() as sess:
        recorded = {"losses": losses(sess)}
    with tf.Graph().as_default(), tf.Session() as sess:
        recorded["metrics"] = metrics(sess)
    OUT.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
