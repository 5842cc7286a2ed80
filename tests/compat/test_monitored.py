"""MonitoredTrainingSession with checkpoints, summaries and hooks: the schedule of saves
and summaries TensorFlow's hooks keep, resuming from the checkpoint directory, and the
hooks that stop or fail a run."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

import tracejit.compat.v1 as tf

X = np.array([[1.0], [2.0], [3.0]], np.float32)
Y = np.array([[2.0], [4.0], [6.0]], np.float32)


def _program():
    x = tf.placeholder(tf.float32, [None, 1], name="x")
    y = tf.placeholder(tf.float32, [None, 1], name="y")
    w = tf.Variable(tf.zeros([1, 1]), name="w")
    step = tf.train.get_or_create_global_step()
    loss = tf.reduce_mean(tf.square(tf.matmul(x, w) - y), name="mse")
    tf.summary.scalar("loss", loss)
    tf.summary.histogram("weights", w)
    train = tf.train.GradientDescentOptimizer(0.05).minimize(loss, global_step=step)
    return x, y, w, step, loss, train


class _StepSeen(tf.train.SessionRunHook):
    """Records the global step when the session starts and when it ends."""

    def __init__(self, step, seen):
        self.step, self.seen = step, seen

    def after_create_session(self, session, coord):
        self.seen.append(int(session.run(self.step)))

    def end(self, session):
        self.seen.append(int(session.run(self.step)))


def _train(checkpoint_dir, last_step, **kwargs):
    seen = []
    with tf.Graph().as_default():
        x, y, w, step, loss, train = _program()
        hooks = [tf.train.StopAtStepHook(last_step=last_step), tf.train.NanTensorHook(loss),
                 _StepSeen(step, seen)]
        final = tf.train.FinalOpsHook(w)
        with tf.train.MonitoredTrainingSession(checkpoint_dir=checkpoint_dir,
                                               hooks=hooks + [final], **kwargs) as sess:
            while not sess.should_stop():
                sess.run(train, {x: X, y: Y})
    tf.summary.FileWriterCache.clear()
    return seen, final.final_ops_values


def _accumulator(directory):
    acc = event_accumulator.EventAccumulator(str(directory), size_guidance={
        event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0})
    acc.Reload()
    return acc


def test_checkpoints_and_summaries_on_tensorflows_schedule_then_resume(tmp_path):
    seen, weight = _train(str(tmp_path), 12, save_checkpoint_steps=5, save_summaries_steps=2)
    assert seen == [0, 12]
    state = tf.train.get_checkpoint_state(str(tmp_path))
    # saved when the session starts, every 5 steps, and at the end
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == [
        "model.ckpt-0", "model.ckpt-5", "model.ckpt-10", "model.ckpt-12"]
    np.testing.assert_allclose(tf.train.load_variable(str(tmp_path), "w"), weight, rtol=1e-6)
    acc = _accumulator(tmp_path)
    # the first step's summary, then every second step
    assert [e.step for e in acc.Scalars("loss")] == [1, 3, 5, 7, 9, 11]
    assert [e.step for e in acc.Histograms("weights")] == [1, 3, 5, 7, 9, 11]
    assert acc.Graph() is not None and any(n.name == "mse" for n in acc.Graph().node)

    # a restarted job resumes where it stopped
    resumed, _ = _train(str(tmp_path), 20, save_checkpoint_steps=5, save_summaries_steps=2)
    assert resumed == [12, 20]
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("model.ckpt-20")


def test_without_a_checkpoint_dir_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seen, _ = _train(None, 3)
    assert seen == [0, 3] and os.listdir(tmp_path) == []


def test_logging_and_step_counter_hooks(tmp_path, caplog):
    with tf.Graph().as_default():
        x, y, w, step, loss, train = _program()
        counter = tf.train.StepCounterHook(every_n_steps=2, output_dir=str(tmp_path))
        hooks = [tf.train.StopAtStepHook(last_step=6),
                 tf.train.LoggingTensorHook({"loss": loss, "step": step}, every_n_iter=3),
                 counter]
        with caplog.at_level(logging.INFO, logger="tracejit.train"):
            with tf.train.MonitoredTrainingSession(hooks=hooks) as sess:
                while not sess.should_stop():
                    sess.run(train, {x: X, y: Y})
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("loss = ")]
    assert len(lines) == 2 and "step = 0" in lines[0] and "step = 3" in lines[1]
    assert [s for s, _ in counter.rates] == [3, 5] and all(r > 0 for _, r in counter.rates)
    tf.summary.FileWriterCache.clear()
    assert [e.step for e in _accumulator(tmp_path).Scalars("global_step/sec")] == [3, 5]


def test_nan_loss_fails_or_stops():
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [])
        step = tf.train.get_or_create_global_step()
        loss = tf.sqrt(x)
        bump = tf.assign_add(step, 1)
        with tf.train.MonitoredTrainingSession(hooks=[tf.train.NanTensorHook(loss)]) as sess:
            sess.run(bump, {x: 4.0})
            with pytest.raises(tf.train.NanLossDuringTrainingError, match="NaN loss"):
                sess.run(bump, {x: -1.0})
        hook = tf.train.NanTensorHook(loss, fail_on_nan_loss=False)
        with tf.train.MonitoredTrainingSession(hooks=[hook]) as sess:
            sess.run(bump, {x: -1.0})
            assert sess.should_stop()


def test_out_of_range_ends_the_session_normally_and_end_hooks_run():
    with tf.Graph().as_default():
        step = tf.train.get_or_create_global_step()
        final = tf.train.FinalOpsHook(step)
        with tf.train.MonitoredTrainingSession(hooks=[final]) as sess:
            sess.run(tf.assign_add(step, 1) if False else step)
            raise tf.errors.OutOfRangeError("input exhausted")
        assert final.final_ops_values == 0
        with pytest.raises(ValueError, match="boom"):
            with tf.train.MonitoredTrainingSession() as sess:
                raise ValueError("boom")


def test_scaffold_init_fn_and_graph_is_final(tmp_path):
    calls = []
    with tf.Graph().as_default() as graph:
        v = tf.Variable(1.0, name="v")
        tf.train.get_or_create_global_step()
        scaffold = tf.train.Scaffold(init_fn=lambda scaffold, sess: calls.append(sess.run(v)))
        with tf.train.MonitoredTrainingSession(scaffold=scaffold,
                                               checkpoint_dir=str(tmp_path)) as sess:
            assert graph.finalized
            with pytest.raises(RuntimeError, match="finalized"):
                tf.constant(1.0)
            assert sess.run(v) == 1.0
        assert calls == [1.0]
    tf.summary.FileWriterCache.clear()
    with tf.Graph().as_default():
        v = tf.Variable(5.0, name="v")
        tf.train.get_or_create_global_step()
        scaffold = tf.train.Scaffold(init_fn=lambda scaffold, sess: calls.append("again"))
        with tf.train.MonitoredTrainingSession(scaffold=scaffold,
                                               checkpoint_dir=str(tmp_path)) as sess:
            assert sess.run(v) == 1.0            # restored, not initialized
        assert calls == [1.0]                      # init_fn runs only on a fresh start
    tf.summary.FileWriterCache.clear()
