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
    variables_initializer,
)

__all__ = ["MonitoredTrainingSession", "Supervisor", "SessionRunHook", "SessionRunArgs",
           "SessionRunContext", "SessionRunValues", "StopAtStepHook"]

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


def _ready_session(master: str, is_chief: bool, config, init_op, max_wait_secs: float
                   ) -> Session:
    """A session on ``master`` whose model is ready: the chief initializes what no one
    has (``init_op`` when nothing is initialized yet); every other worker waits until
    all variables are initialized, as TensorFlow's SessionManager does."""
    session = Session(master, config=config)
    variables = global_variables() + local_variables()
    missing = [v for v in variables if not session.is_initialized(v)]
    if not missing:
        return session
    if is_chief:
        fresh = len(missing) == len(variables)
        session.run(init_op if init_op is not None and fresh
                    else variables_initializer(missing))
        return session
    report = report_uninitialized_variables(variables)
    deadline = time.monotonic() + max_wait_secs
    while len(session.run(report)):
        if time.monotonic() > deadline:
            raise DeadlineExceededError(
                f"the model was not ready after {max_wait_secs} s: variables "
                f"{[n.decode() for n in session.run(report)][:5]} are not initialized "
                "(is the chief running?)")
        time.sleep(READY_POLL_S)
    return session


class Supervisor:
    """``tf.train.Supervisor(is_chief=True, init_op=..., global_step=..., logdir=...)``,
    the 2016 distributed tutorials' session manager: ``prepare_or_wait_for_session
    (master)`` gives a session whose model is ready (the chief initializes it, the others
    wait for it); ``managed_session(master)`` is the same as a context manager.
    Summaries and checkpoints under ``logdir`` are not written here."""

    USE_DEFAULT = 0

    def __init__(self, graph=None, ready_op=USE_DEFAULT, is_chief=True, init_op=USE_DEFAULT,
                 logdir=None, summary_op=USE_DEFAULT, saver=USE_DEFAULT, global_step=None,
                 recovery_wait_secs=30, **unused):
        self._is_chief = bool(is_chief)
        self._init_op = None if init_op == Supervisor.USE_DEFAULT else init_op
        self.global_step = global_step
        self._stop = False

    @property
    def is_chief(self) -> bool:
        return self._is_chief

    def prepare_or_wait_for_session(self, master: str = "", config=None,
                                    max_wait_secs: float = 7200, **unused) -> Session:
        return _ready_session(master, self._is_chief, config, self._init_op, max_wait_secs)

    def managed_session(self, master: str = "", config=None, **unused):
        import contextlib

        @contextlib.contextmanager
        def managed():
            session = self.prepare_or_wait_for_session(master, config)
            try:
                yield session
            finally:
                session.close()
        return managed()

    def should_stop(self) -> bool:
        return self._stop

    def request_stop(self, ex=None) -> None:
        self._stop = True

    def stop(self, *args, **kwargs) -> None:
        self._stop = True


class MonitoredTrainingSession:
    """``MonitoredTrainingSession(master='', is_chief=True, hooks=None, config=None,
    ...)``: a context manager; ``run`` like Session.run, ``should_stop()``."""

    def __init__(self, master: str = "", is_chief: bool = True, checkpoint_dir=None,
                 scaffold=None, hooks=None, chief_only_hooks=None, config=None,
                 stop_grace_period_secs=120, max_wait_secs=7200, **unused):
        self._hooks = list(hooks or []) + (list(chief_only_hooks or []) if is_chief else [])
        for hook in self._hooks:
            hook.begin()
        self._session = _ready_session(master, is_chief, config, None, max_wait_secs)
        self._stop = False
        for hook in self._hooks:
            hook.after_create_session(self._session, None)

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
        self._session.__enter__()
        return self

    def __exit__(self, *exc):
        self._session.__exit__(*exc)
        for hook in self._hooks:
            hook.end(self._session)
        return False
