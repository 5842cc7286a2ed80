"""``tf.train.MonitoredTrainingSession`` and its hooks: the session distributed TF1
programs train in.

The chief initializes the variables no one has initialized yet (a parameter server's
variables outlive the workers, so a restarted chief does not reset a trained model);
every other worker waits until the model is ready -- all variables initialized --
before its first step, as TensorFlow's SessionManager makes them wait. Hooks see each
``run``: ``before_run`` may add fetches (``SessionRunArgs``), ``after_run`` sees their
values and may ``request_stop()``; ``StopAtStepHook`` stops at a global step.
Checkpointing (``checkpoint_dir``) is not done here: it is the Saver's issue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .errors import DeadlineExceededError
from .graph import get_default_graph
from .session import Session
from .variables import (
    GraphKeys,
    global_variables,
    local_variables,
    report_uninitialized_variables,
)

__all__ = ["MonitoredTrainingSession", "SessionRunHook", "SessionRunArgs", "SessionRunContext",
           "SessionRunValues", "StopAtStepHook"]

READY_POLL_S = 0.1


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


class StopAtStepHook(SessionRunHook):
    """Stop once the global step reaches ``last_step`` (or ``num_steps`` past the step
    the session started at)."""

    def __init__(self, num_steps=None, last_step=None):
        if (num_steps is None) == (last_step is None):
            raise ValueError("exactly one of num_steps and last_step must be given")
        self._num_steps = num_steps
        self._last_step = last_step

    def begin(self):
        found = get_default_graph().get_collection(GraphKeys.GLOBAL_STEP)
        self._step = found[0] if found else None
        if self._step is None:
            raise RuntimeError("Global step should be created to use StopAtStepHook.")

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


class MonitoredTrainingSession:
    """``MonitoredTrainingSession(master='', is_chief=True, hooks=None, config=None,
    ...)``: a context manager; ``run`` like Session.run, ``should_stop()``."""

    def __init__(self, master: str = "", is_chief: bool = True, checkpoint_dir=None,
                 scaffold=None, hooks=None, chief_only_hooks=None, config=None,
                 stop_grace_period_secs=120, max_wait_secs=7200, **unused):
        self._hooks = list(hooks or []) + (list(chief_only_hooks or []) if is_chief else [])
        for hook in self._hooks:
            hook.begin()
        self._session = Session(master, config=config)
        self._stop = False
        variables = global_variables() + local_variables()
        if is_chief:
            self._initialize(variables)
        else:
            self._wait_until_ready(variables, max_wait_secs)
        for hook in self._hooks:
            hook.after_create_session(self._session, None)

    def _initialize(self, variables) -> None:
        missing = [v for v in variables if not self._session.is_initialized(v)]
        if missing:
            from .variables import variables_initializer
            self._session.run(variables_initializer(missing))

    def _wait_until_ready(self, variables, max_wait_secs: float) -> None:
        report = report_uninitialized_variables(variables)
        deadline = time.monotonic() + max_wait_secs
        while len(self._session.run(report)):
            if time.monotonic() > deadline:
                raise DeadlineExceededError(
                    f"the model was not ready after {max_wait_secs} s: variables "
                    f"{[n.decode() for n in self._session.run(report)][:5]} are not "
                    "initialized (is the chief running?)")
            time.sleep(READY_POLL_S)

    @property
    def graph(self):
        return self._session.graph

    def run(self, fetches, feed_dict=None, options=None, run_metadata=None):
        context = SessionRunContext(SessionRunArgs(fetches, feed_dict, options), self._session)
        extra = [hook.before_run(context) for hook in self._hooks]
        feeds = dict(feed_dict or {})
        for args in extra:
            if args is not None and args.feed_dict:
                feeds.update(args.feed_dict)
        results, extra_results = self._session.run(
            (fetches, [a.fetches if a is not None else [] for a in extra]), feeds)
        for hook, args, value in zip(self._hooks, extra, extra_results, strict=True):
            hook.after_run(context, SessionRunValues(value if args is not None else None))
        self._stop |= context.stop_requested
        return results

    def should_stop(self) -> bool:
        return self._stop

    def close(self) -> None:
        for hook in self._hooks:
            hook.end(self._session)
        self._session.close()

    def __enter__(self):
        self._context = self._session.__enter__()
        return self

    def __exit__(self, *exc):
        self._session.__exit__(*exc)
        for hook in self._hooks:
            hook.end(self._session)
        return False
