"""tf.train.Saver and TF1's checkpoint functions. TensorFlow is the reference twice
over: the golden checkpoint TensorFlow 2.21 wrote restores into a TF1 program here, and
(where TensorFlow is installed) TensorFlow restores what tracejit wrote."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tracejit.compat.v1 as tf
from tracejit.compat.v1.errors import InvalidArgumentError, NotFoundError

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "tf_checkpoint"


@pytest.fixture
def graph():
    with tf.Graph().as_default() as g:
        yield g


def _model():
    w = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="dense/kernel")
    b = tf.Variable(np.zeros(3, np.float32), name="dense/bias")
    step = tf.train.get_or_create_global_step()
    return w, b, step


def test_save_restore_and_the_state_file(graph, tmp_path):
    w, b, step = _model()
    bump = [tf.assign_add(step, 1), tf.assign_add(b, [1.0, 2.0, 3.0])]
    saver = tf.train.Saver(max_to_keep=2)
    prefix = str(tmp_path / "model.ckpt")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        paths = []
        for _ in range(3):
            sess.run(bump)
            paths.append(saver.save(sess, prefix, global_step=step))
        assert paths == [f"{prefix}-1", f"{prefix}-2", f"{prefix}-3"]
        assert saver.last_checkpoints == paths[1:]
        assert not os.path.exists(paths[0] + ".index")        # past max_to_keep: deleted
        state = tf.train.get_checkpoint_state(str(tmp_path))
        assert state.model_checkpoint_path == paths[-1]
        assert state.all_model_checkpoint_paths == paths[1:]
        # relative in the file, as TensorFlow writes a path it was given relative
        text = (tmp_path / "checkpoint").read_text()
        assert text.startswith(f'model_checkpoint_path: "{prefix}-3"') or \
            text.startswith('model_checkpoint_path: "model.ckpt-3"')
        sess.run([w.assign(tf.zeros([2, 3])), b.assign(tf.zeros([3])), step.assign(0)])
        saver.restore(sess, tf.train.latest_checkpoint(str(tmp_path)))
        np.testing.assert_array_equal(sess.run(b), [3.0, 6.0, 9.0])
        assert sess.run(step) == 3
        saver.restore(sess, paths[1])
        assert sess.run(step) == 2
    assert tf.train.list_variables(str(tmp_path)) == [
        ("dense/bias", [3]), ("dense/kernel", [2, 3]), ("global_step", [])]
    np.testing.assert_array_equal(tf.train.load_variable(str(tmp_path), "dense/bias:0"),
                                  [3.0, 6.0, 9.0])


def test_relative_save_path_is_written_relative_to_the_state_file(graph, tmp_path,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("run")
    _model()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert tf.train.Saver().save(sess, "run/model", global_step=7) == "run/model-7"
    assert (tmp_path / "run" / "checkpoint").read_text().splitlines()[:2] == [
        'model_checkpoint_path: "model-7"', 'all_model_checkpoint_paths: "model-7"']
    assert tf.train.latest_checkpoint("run") == os.path.join("run", "model-7")


def test_a_fresh_session_restores_without_initializing(graph, tmp_path):
    w, _, _ = _model()
    saver = tf.train.Saver()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(w.assign(w * 10))
        path = saver.save(sess, str(tmp_path / "m"))
    with tf.Session() as sess:
        with pytest.raises(tf.errors.FailedPreconditionError):
            sess.run(w)
        saver.restore(sess, path)
        np.testing.assert_array_equal(sess.run(w), np.arange(6).reshape(2, 3) * 10)


def test_var_list_dict_renames_and_list_selects(graph, tmp_path):
    w, b, _ = _model()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        path = tf.train.Saver({"renamed": w}).save(sess, str(tmp_path / "a"))
        assert tf.train.list_variables(path) == [("renamed", [2, 3])]
        path = tf.train.Saver([b]).save(sess, str(tmp_path / "b"))
        assert [n for n, _ in tf.train.list_variables(path)] == ["dense/bias"]
    with pytest.raises(ValueError, match="same name"):
        tf.train.Saver([w, w])
    with pytest.raises(TypeError, match="not a tf.Variable"):
        tf.train.Saver([w, "b"])


def test_restore_mismatch_names_the_variable_and_changes_nothing(graph, tmp_path):
    w, b, _ = _model()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        path = tf.train.Saver().save(sess, str(tmp_path / "m"))
    with tf.Graph().as_default():
        w2 = tf.Variable(np.ones((3, 2), np.float32), name="dense/kernel")
        b2 = tf.Variable(np.full(3, 7.0, np.float32), name="dense/bias")
        tf.train.get_or_create_global_step()
        saver = tf.train.Saver()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            with pytest.raises(InvalidArgumentError,
                               match=r"dense/kernel: the checkpoint's shape \[2, 3\] does "
                                     r"not match the variable's shape \[3, 2\]") as caught:
                saver.restore(sess, path)
            assert caught.value.location.file == __file__      # the user's line
            np.testing.assert_array_equal(sess.run(b2), [7.0, 7.0, 7.0])   # untouched
            np.testing.assert_array_equal(sess.run(w2), np.ones((3, 2)))
    with tf.Graph().as_default():
        tf.Variable(np.zeros(3, np.float32), name="other")
        with tf.Session() as sess:
            with pytest.raises(NotFoundError, match="Key other not found") as caught:
                tf.train.Saver().restore(sess, path)
            assert caught.value.location.file == __file__


def test_restore_and_save_refusals(graph, tmp_path):
    _model()
    saver = tf.train.Saver()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        with pytest.raises(ValueError, match="None"):
            saver.restore(sess, None)
        with pytest.raises(ValueError, match="not a valid checkpoint"):
            saver.restore(sess, str(tmp_path / "absent"))
        with pytest.raises(ValueError, match="Parent directory"):
            saver.save(sess, str(tmp_path / "no" / "such" / "dir" / "m"))
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="No variables to save"):
            tf.train.Saver()
        assert tf.train.Saver(allow_empty=True).save(None, str(tmp_path / "e")) is None


def test_tensorflows_golden_checkpoint_restores_into_a_tf1_program(graph):
    with np.load(GOLDEN / "expected.npz") as saved:
        expected = {name: saved[name] for name in saved.files}
    dtypes = {"dense/kernel": tf.float32, "dense/bias": tf.float64, "counts": tf.int32,
              "big_ints": tf.int64, "mask": tf.bool, "half": tf.float16, "bytes": tf.uint8,
              "small_ints": tf.int8, "scalar": tf.float32, "large": tf.float32,
              "part": tf.float32, "brain": tf.bfloat16}
    variables = {name: tf.Variable(tf.zeros(np.shape(expected[name]), dtype), name=name)
                 for name, dtype in dtypes.items()}
    step = tf.train.get_or_create_global_step()
    with tf.Session() as sess:
        tf.train.Saver().restore(sess, tf.train.latest_checkpoint(str(GOLDEN)))
        for name, variable in variables.items():
            got = sess.run(variable)
            np.testing.assert_array_equal(got.astype(np.float64),
                                          expected[name].astype(np.float64), name)
        assert sess.run(step) == 42


def test_checkpoint_readers_on_the_golden_checkpoint():
    reader = tf.train.load_checkpoint(str(GOLDEN))
    shapes = reader.get_variable_to_shape_map()
    assert shapes["part"] == [200, 3] and shapes["scalar"] == []
    assert reader.get_variable_to_dtype_map()["half"] is tf.float16
    assert reader.has_tensor("large") and not reader.has_tensor("nope")
    assert reader.get_tensor("big_ints").tolist() == [2**40, -7]
    assert tf.train.NewCheckpointReader(str(GOLDEN / "model-42")).get_tensor("mask").tolist() \
        == [True, False, True]
    with pytest.raises(ValueError, match="Couldn't find 'checkpoint' file"):
        tf.train.load_checkpoint(str(GOLDEN.parent))


def test_latest_checkpoint_ignores_an_incomplete_checkpoint(graph, tmp_path):
    _model()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        path = tf.train.Saver().save(sess, str(tmp_path / "m"), global_step=1)
    assert tf.train.latest_checkpoint(str(tmp_path)) == path
    os.remove(path + ".index")
    assert tf.train.latest_checkpoint(str(tmp_path)) is None
    assert tf.train.latest_checkpoint(str(tmp_path / "empty")) is None


def test_init_from_checkpoint_by_scope_and_by_name(graph):
    with tf.variable_scope("new"):
        kernel = tf.get_variable("kernel", shape=[3, 4])
        bias = tf.get_variable("bias", shape=[5], dtype=tf.float64)
    scalar = tf.get_variable("s", shape=[])
    tf.train.init_from_checkpoint(str(GOLDEN), {"dense/": "new/", "scalar": "s"})
    with np.load(GOLDEN / "expected.npz") as saved:
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            np.testing.assert_array_equal(sess.run(kernel), saved["dense/kernel"])
            np.testing.assert_array_equal(sess.run(bias), saved["dense/bias"])
            assert sess.run(scalar) == 3.5
    with pytest.raises(ValueError, match="doesn't match"):
        tf.train.init_from_checkpoint(str(GOLDEN), {"counts": kernel})
    with pytest.raises(ValueError, match="not found"):
        tf.train.init_from_checkpoint(str(GOLDEN), {"nothing": kernel})


def _tensorflow_python() -> str | None:
    if importlib.util.find_spec("tensorflow") is not None:
        return sys.executable
    return os.environ.get("TRACEJIT_TF_PYTHON")


READ_IN_TENSORFLOW = """
import json, sys, numpy as np, tensorflow as tf
tf1 = tf.compat.v1
tf1.disable_eager_execution()
with tf.Graph().as_default():
    w = tf1.Variable(np.zeros((2, 3), np.float32), name="dense/kernel")
    h = tf1.Variable(np.zeros(2, np.float16), name="half")
    m = tf1.Variable(np.zeros(2, bool), name="mask")
    step = tf1.train.get_or_create_global_step()
    with tf1.Session() as sess:
        tf1.train.Saver().restore(sess, tf.train.latest_checkpoint(sys.argv[1]))
        w, h, m, s = sess.run([w, h, m, step])
print(json.dumps([w.tolist(), h.tolist(), m.tolist(), int(s)]))
"""


def test_tensorflow_restores_a_tracejit_checkpoint(graph, tmp_path):
    python = _tensorflow_python()
    if python is None:
        pytest.skip("TensorFlow is not installed (set TRACEJIT_TF_PYTHON to a Python that "
                    "has it to run this check)")
    w, _, step = _model()
    tf.Variable(np.array([0.5, -3.0], np.float16), name="half")
    tf.Variable(np.array([True, False]), name="mask")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run([w.assign(w * 2), step.assign(9)])
        tf.train.Saver().save(sess, str(tmp_path / "model"), global_step=9)
    script = tmp_path / "read.py"
    script.write_text(READ_IN_TENSORFLOW)
    done = subprocess.run([python, str(script), str(tmp_path)], capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    kernel, half, mask, saved_step = json.loads(done.stdout.strip().splitlines()[-1])
    assert kernel == (np.arange(6).reshape(2, 3) * 2).tolist()
    assert half == [0.5, -3.0] and mask == [True, False] and saved_step == 9


CRASHING_SAVE = """
import os, sys
import numpy as np
import tracejit.compat.v1 as tf
from tracejit.io import bundle

directory, step = sys.argv[1], sys.argv[2]
w = tf.Variable(np.full(3, 1.0, np.float32), name="w")
saver = tf.train.Saver()
with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    saver.save(sess, os.path.join(directory, "m"), global_step=None if step == "-" else 1)
    sess.run(w.assign(np.full(3, 2.0, np.float32)))
    real_replace = os.replace

    def crash_at_the_index(source, target):
        if target.endswith(".index"):
            os._exit(3)          # the process dies: no cleanup, no state file update
        real_replace(source, target)
    bundle.os.replace = crash_at_the_index
    saver.save(sess, os.path.join(directory, "m"), global_step=None if step == "-" else 2)
"""


@pytest.mark.parametrize("step", ["numbered", "-"])
def test_a_crash_mid_save_never_leaves_a_latest_checkpoint_that_cannot_restore(tmp_path,
                                                                               step):
    script = tmp_path / "crash.py"
    script.write_text(CRASHING_SAVE)
    done = subprocess.run([sys.executable, str(script), str(tmp_path), step],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr[-2000:]
    latest = tf.train.latest_checkpoint(str(tmp_path))
    if step == "-":
        # the second save overwrote the same prefix: its old index went first, so the
        # state file's checkpoint no longer exists rather than pointing at new data
        assert latest is None
        return
    assert latest == str(tmp_path / "m-1")       # the crashed m-2 has data but no index
    with tf.Graph().as_default():
        w = tf.Variable(np.zeros(3, np.float32), name="w")
        with tf.Session() as sess:
            tf.train.Saver().restore(sess, latest)
            np.testing.assert_array_equal(sess.run(w), [1.0, 1.0, 1.0])


def test_keep_checkpoint_every_n_hours_preserves_old_ones(graph, tmp_path, monkeypatch):
    import tracejit.train.checkpoint_files as files
    clock = [1000.0]
    monkeypatch.setattr(files.time, "time", lambda: clock[0])
    _model()
    saver = tf.train.Saver(max_to_keep=2, keep_checkpoint_every_n_hours=1)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i in range(6):
            clock[0] += 1500          # 25 minutes a save: every third passes the hour
            saver.save(sess, str(tmp_path / "m"), global_step=i)
    kept = sorted(int(p.name[2:-6]) for p in tmp_path.glob("m-*.index"))
    # the last two, and of those older the first newer than an hour after the start
    # (the next keep time then moves an hour on: past every later one here)
    assert kept == [2, 4, 5]
    assert saver.last_checkpoints == [str(tmp_path / "m-4"), str(tmp_path / "m-5")]
