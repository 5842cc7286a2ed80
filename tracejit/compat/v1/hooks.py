"""``tf.train.SessionRunHook`` and the hooks TF1 training loops use.

A hook sees each ``MonitoredTrainingSession.run``: ``before_run`` may add fetches
(``SessionRunArgs``), ``after_run`` sees their values and may ``request_stop()``. Hooks
that act every N steps or seconds share ``SecondOrStepTimer`` and read the global step
as TensorFlow's do: the value fetched with a step is read before the step's update, so
a hook that must know the new step reads it again.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2

from .graph import Tensor, get_default_graph
from .saver import write_graph
from .summary_writer import FileWriterCache
from .variables import GraphKeys

log = logging.getLogger("tracejit.train")

__all__ = ["SessionRunHook", "SessionRunArgs", "SessionRunContext", "SessionRunValues",
           "SecondOrStepTimer", "StopAtStepHook", "CheckpointSaverHook", "SummarySaverHook",
           "StepCounterHook", "LoggingTensorHook", "NanTensorHook",
           "NanLossDuringTrainingError", "FeedFnHook", "FinalOpsHook", "GlobalStepWaiterHook"]


class SessionRunHook:
    def begin(self):
        pass

    def after_create_session(self, session, coord):
        pass

    def before_run(self, run_context):
        return None

    def after_run(self, run_context, run_values):
        pass

    def end(self, session):
        pass


@dataclass
class SessionRunArgs:
    fetches: object
    feed_dict: dict | None = None
    options: object = None


@dataclass
class SessionRunValues:
    results: object
    options: object = None
    run_metadata: object = None


@dataclass
class SessionRunContext:
    original_args: SessionRunArgs
    session: object
    stop_requested: bool = field(default=False)

    def request_stop(self) -> None:
        self.stop_requested = True


def _global_step_tensor(hook: str) -> Tensor:
    found = get_default_graph().get_collection(GraphKeys.GLOBAL_STEP)
    if not found:
        raise RuntimeError(f"Global step should be created to use {hook}.")
    return found[0].value() if hasattr(found[0], "value") else found[0]


class SecondOrStepTimer:
    """Triggers every ``every_secs`` seconds or every ``every_steps`` steps (one of
    them); the first step always triggers."""

    def __init__(self, every_secs=None, every_steps=None):
        if (every_secs is None) == (every_steps is None):
            raise ValueError("Either every_secs or every_steps should be provided.")
        self._every_secs = every_secs
        self._every_steps = every_steps
        self.reset()

    def reset(self) -> None:
        self._last_step = None
        self._last_time = None

    def should_trigger_for_step(self, step) -> bool:
        if self._last_step is None:
            return True
        if step == self._last_step:
            return False
        if self._every_secs is not None:
            return time.time() >= self._last_time + self._every_secs
        return step >= self._last_step + self._every_steps

    def update_last_triggered_step(self, step):
        """Record a trigger; returns (seconds, steps) since the previous one."""
        now = time.time()
        elapsed = None if self._last_time is None else \
            (now - self._last_time, step - self._last_step)
        self._last_time, self._last_step = now, step
        return elapsed if elapsed is not None else (None, None)

    def last_triggered_step(self):
        return self._last_step


class StopAtStepHook(SessionRunHook):
    """Stop once the global step reaches ``last_step`` (or ``num_steps`` past the step
    the session started at)."""

    def __init__(self, num_steps=None, last_step=None):
        if (num_steps is None) == (last_step is None):
            raise ValueError("exactly one of num_steps and last_step must be given")
        self._num_steps = num_steps
        self._last_step = last_step

    def begin(self):
        self._step = _global_step_tensor("StopAtStepHook")

    def after_create_session(self, session, coord):
        if self._last_step is None:
            self._last_step = int(session.run(self._step)) + self._num_steps

    def before_run(self, run_context):
        return SessionRunArgs(self._step)

    def after_run(self, run_context, run_values):
        # NOTE: the value fetched with the step is read before its update; one more
        # read sees what the step did (as TF's hook re-reads it)
        if int(run_values.results) + 1 >= self._last_step:
            if int(run_context.session.run(self._step)) >= self._last_step:
                run_context.request_stop()


class CheckpointSaverHook(SessionRunHook):
    """Save a checkpoint when the session starts, every ``save_steps`` steps or
    ``save_secs`` seconds, and at the end; each save is also logged to the directory's
    event file (so TensorBoard marks it) and told to the ``listeners``."""

    def __init__(self, checkpoint_dir, save_secs=None, save_steps=None, saver=None,
                 checkpoint_basename="model.ckpt", scaffold=None, listeners=None,
                 save_graph_def=True):
        if saver is not None and scaffold is not None:
            raise ValueError("You cannot provide both saver and scaffold.")
        self._dir = os.fspath(checkpoint_dir)
        self._path = os.path.join(self._dir, checkpoint_basename)
        self._saver = saver
        self._scaffold = scaffold
        self._timer = SecondOrStepTimer(every_secs=save_secs, every_steps=save_steps)
        self._listeners = list(listeners or [])
        self._save_graph_def = save_graph_def

    def begin(self):
        os.makedirs(self._dir, exist_ok=True)
        self._writer = FileWriterCache.get(self._dir)
        self._step = _global_step_tensor("CheckpointSaverHook")
        for listener in self._listeners:
            listener.begin()

    def _get_saver(self):
        if self._saver is not None:
            return self._saver
        if self._scaffold is not None:
            return self._scaffold.saver
        found = get_default_graph().get_collection("savers")
        if len(found) != 1:
            raise RuntimeError(f"CheckpointSaverHook needs one Saver in the 'savers' "
                               f"collection, found {len(found)}; pass saver= or scaffold=")
        return found[0]

    def after_create_session(self, session, coord):
        step = int(session.run(self._step))
        if self._save_graph_def:
            # as TensorFlow's hook: graph.pbtxt beside the checkpoints, and the graph tab
            write_graph(get_default_graph(), self._dir, "graph.pbtxt")
            self._writer.add_graph(get_default_graph())
        self._save(session, step)
        self._timer.update_last_triggered_step(step)

    def before_run(self, run_context):
        return SessionRunArgs(self._step)

    def after_run(self, run_context, run_values):
        if self._timer.should_trigger_for_step(int(run_values.results) + 1):
            step = int(run_context.session.run(self._step))
            if self._timer.should_trigger_for_step(step):
                self._timer.update_last_triggered_step(step)
                if self._save(run_context.session, step):
                    run_context.request_stop()

    def end(self, session):
        step = int(session.run(self._step))
        if step != self._timer.last_triggered_step():
            self._save(session, step)
        for listener in self._listeners:
            listener.end(session, step)

    def _save(self, session, step: int) -> bool:
        log.info("Saving checkpoints for %d into %s.", step, self._path)
        for listener in self._listeners:
            listener.before_save(session, step)
        path = self._get_saver().save(session, self._path, global_step=step)
        self._writer.add_session_log(
            event_pb2.SessionLog(status=event_pb2.SessionLog.CHECKPOINT, checkpoint_path=path),
            step)
        stop = False
        for listener in self._listeners:
            stop |= bool(listener.after_save(session, step))
        return stop


class SummarySaverHook(SessionRunHook):
    """Run the summary op every ``save_steps`` steps or ``save_secs`` seconds (with the
    step itself: no extra pass) and write its result at the global step."""

    def __init__(self, save_steps=None, save_secs=None, output_dir=None, summary_writer=None,
                 scaffold=None, summary_op=None):
        if (scaffold is None) == (summary_op is None):
            raise ValueError("Exactly one of scaffold or summary_op should be passed.")
        self._summary_op = summary_op
        self._scaffold = scaffold
        self._writer = summary_writer
        self._output_dir = output_dir
        self._timer = SecondOrStepTimer(every_secs=save_secs, every_steps=save_steps)

    def begin(self):
        if self._writer is None and self._output_dir:
            self._writer = FileWriterCache.get(self._output_dir)
        self._step = _global_step_tensor("SummarySaverHook")
        self._next_step = None

    def _ops(self):
        op = self._summary_op if self._summary_op is not None else self._scaffold.summary_op
        if op is None:
            return []
        return list(op) if isinstance(op, (list, tuple)) else [op]

    def before_run(self, run_context):
        self._request = self._timer.should_trigger_for_step(self._next_step) \
            if self._next_step is not None else True
        fetches = {"global_step": self._step}
        if self._request and self._ops():
            fetches["summary"] = self._ops()
        return SessionRunArgs(fetches)

    def after_run(self, run_context, run_values):
        if self._writer is None:
            return
        results = run_values.results
        step = int(results["global_step"]) + 1
        if self._next_step is None or self._request:
            step = int(run_context.session.run(self._step))
        if self._next_step is None:
            self._writer.add_session_log(
                event_pb2.SessionLog(status=event_pb2.SessionLog.START), step)
        if self._request:
            self._timer.update_last_triggered_step(step)
            for summary in results.get("summary", []):
                self._writer.add_summary(summary, step)
        self._next_step = step + 1

    def end(self, session=None):
        if self._writer is not None:
            self._writer.flush()


class StepCounterHook(SessionRunHook):
    """Write ``global_step/sec`` every ``every_n_steps`` steps (or ``every_n_secs``)."""

    def __init__(self, every_n_steps=100, every_n_secs=None, output_dir=None,
                 summary_writer=None):
        if (every_n_steps is None) == (every_n_secs is None):
            raise ValueError("exactly one of every_n_steps and every_n_secs should be "
                             "provided.")
        self._timer = SecondOrStepTimer(every_steps=every_n_steps, every_secs=every_n_secs)
        self._writer = summary_writer
        self._output_dir = output_dir

    def begin(self):
        if self._writer is None and self._output_dir:
            self._writer = FileWriterCache.get(self._output_dir)
        self._step = _global_step_tensor("StepCounterHook")
        self.rates: list[tuple[int, float]] = []

    def before_run(self, run_context):
        return SessionRunArgs(self._step)

    def after_run(self, run_context, run_values):
        step = int(run_values.results) + 1
        if self._timer.should_trigger_for_step(step):
            seconds, steps = self._timer.update_last_triggered_step(step)
            if seconds:
                rate = steps / seconds
                self.rates.append((step, rate))
                log.info("global_step/sec: %g", rate)
                if self._writer is not None:
                    value = summary_pb2.Summary.Value(tag="global_step/sec", simple_value=rate)
                    self._writer.add_summary(summary_pb2.Summary(value=[value]), step)


class LoggingTensorHook(SessionRunHook):
    """Log the values of ``tensors`` (a dict of tag: tensor, or a list) every
    ``every_n_iter`` runs or ``every_n_secs`` seconds, and/or ``at_end``."""

    def __init__(self, tensors, every_n_iter=None, every_n_secs=None, at_end=False,
                 formatter=None):
        if not at_end and (every_n_iter is None) == (every_n_secs is None):
            raise ValueError("either at_end and/or exactly one of every_n_iter and "
                             "every_n_secs must be provided.")
        if every_n_iter is not None and every_n_iter <= 0:
            raise ValueError(f"invalid every_n_iter={every_n_iter}.")
        if isinstance(tensors, dict):
            self._tags, self._tensors = list(tensors), list(tensors.values())
        else:
            self._tensors = list(tensors)
            self._tags = [t if isinstance(t, str) else t.name for t in self._tensors]
        self._timer = None if every_n_iter is None and every_n_secs is None else \
            SecondOrStepTimer(every_secs=every_n_secs, every_steps=every_n_iter)
        self._at_end = at_end
        self._formatter = formatter

    def begin(self):
        graph = get_default_graph()
        self._fetches = [graph.as_graph_element(t) if isinstance(t, str) else t
                         for t in self._tensors]
        self._iteration = 0
        if self._timer is not None:
            self._timer.reset()

    def before_run(self, run_context):
        self._due = self._timer is not None and \
            self._timer.should_trigger_for_step(self._iteration)
        return SessionRunArgs(self._fetches) if self._due else None

    def _log(self, values) -> None:
        named = dict(zip(self._tags, values, strict=True))
        if self._formatter is not None:
            log.info("%s", self._formatter(named))
        else:
            log.info("%s", ", ".join(f"{tag} = {named[tag]}" for tag in self._tags))

    def after_run(self, run_context, run_values):
        if self._due:
            self._timer.update_last_triggered_step(self._iteration)
            self._log(run_values.results)
        self._iteration += 1

    def end(self, session):
        if self._at_end:
            self._log(session.run(self._fetches))


class NanLossDuringTrainingError(RuntimeError):
    def __str__(self):
        return "NaN loss during training."


class NanTensorHook(SessionRunHook):
    """Fail (or, with ``fail_on_nan_loss=False``, stop) when the loss is NaN."""

    def __init__(self, loss_tensor, fail_on_nan_loss=True):
        self._loss = loss_tensor
        self._fail = fail_on_nan_loss

    def before_run(self, run_context):
        return SessionRunArgs(self._loss)

    def after_run(self, run_context, run_values):
        if np.isnan(run_values.results).any():
            if self._fail:
                log.error("Model diverged with loss = NaN.")
                raise NanLossDuringTrainingError
            log.warning("Model diverged with loss = NaN.")
            run_context.request_stop()


class FeedFnHook(SessionRunHook):
    """Adds ``feed_fn()``'s feeds to every run."""

    def __init__(self, feed_fn):
        self.feed_fn = feed_fn

    def before_run(self, run_context):
        return SessionRunArgs(fetches=None, feed_dict=self.feed_fn())


class FinalOpsHook(SessionRunHook):
    """Runs ``final_ops`` when the session ends; ``final_ops_values`` holds the result."""

    def __init__(self, final_ops, final_ops_feed_dict=None):
        self._final_ops = final_ops
        self._feed = final_ops_feed_dict
        self.final_ops_values = None

    def end(self, session):
        if self._final_ops is not None:
            self.final_ops_values = session.run(self._final_ops, feed_dict=self._feed)


class GlobalStepWaiterHook(SessionRunHook):
    """Delays a worker's first step until the global step reaches ``wait_until_step``
    (so the chief trains a little before the others join)."""

    def __init__(self, wait_until_step, poll_secs=0.5, timeout_secs=None):
        self._wait_until = wait_until_step
        self._poll = poll_secs
        self._timeout = timeout_secs

    def begin(self):
        self._waited = self._wait_until <= 0
        self._step = _global_step_tensor("GlobalStepWaiterHook")

    def before_run(self, run_context):
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while not self._waited:
            if int(run_context.session.run(self._step)) >= self._wait_until:
                self._waited = True
                break
            if deadline is not None and time.monotonic() > deadline:
                raise RuntimeError(f"the global step did not reach {self._wait_until} within "
                                   f"{self._timeout} s")
            time.sleep(self._poll)
        return None
