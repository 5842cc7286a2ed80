"""Records rnn_tf_reference.json from TensorFlow: run it with a Python that has
TensorFlow 2.21 (``python tests/compat/record_rnn_reference.py``). TF1 behaviour:
``disable_v2_behavior`` (TF1 control flow, reference variables)."""

import json
import sys
from pathlib import Path

import tensorflow.compat.v1 as tf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from rnn_programs import PROGRAMS, run_program  # noqa: E402

tf.disable_v2_behavior()
recorded = {name: run_program(tf, name) for name in PROGRAMS}
(HERE / "rnn_tf_reference.json").write_text(json.dumps(recorded, indent=0) + "\n")
print("recorded", ", ".join(recorded))
