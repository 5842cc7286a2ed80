"""``tf.train.MonitoredTrainingSession``: the session TF1 training loops run in.

It makes a ``Scaffold`` (init op, ready op, saver, summary op), opens a session whose
model is ready, runs the hooks around every step, and closes them at the end. The chief
restores the latest checkpoint in ``checkpoint_dir`` when there is one (so a restarted
job resumes where it stopped) and otherwise initializes the variables no one has yet (a
parameter server's variables outlive the workers, so a restarted chief without a
checkpoint does not reset a trained model); every other worker waits until the model is
ready -- all variables initialized -- before its first step, as TensorFlow's
SessionManager makes them wait. With a ``checkpoint_dir`` the chief also saves
checkpoints, summaries and the step rate there (CheckpointSaverHook, SummarySaverHook,
StepCounterHook). ``master`` is a cluster target (``grpc://...``) or '' for this
process.
"""

from __future__ import annotations

import contextlib
import time

from ...train.checkpoint_files import latest_checkpoint
from .errors import DeadlineExceededError, OutOfRangeError
from .graph import get_default_graph
from .hooks import (
    CheckpointSaverHook,
    SessionRunArgs,
    SessionRunContext,
    SessionRunHook,
    SessionRunValues,
    StepCounterHook,
    StopAtStepHook,
    SummarySaverHook,
)
from .lookup_ops import tables_initializer
from .saver import Saver
from .session import Session
from .summary import merge_all
from .variables import (
    GraphKeys,
    global_variables,
    local_variables,
    report_uninitialized_variables,
)

__all__ = ["MonitoredTrainingSession", "MonitoredSession", "SingularMonitoredSession",
           "ChiefSessionCreator", "WorkerSessionCreator", "Scaffold", "Supervisor",
           "SessionRunHook", "SessionRunArgs", "SessionRunContext", "SessionRunValues",
           "StopAtStepHook"]

READY_POLL_S = 0.1
USE_DEFAULT = object()


class Scaffold:
    """What a monitored session needs from the graph, made by ``finalize()`` where not
    given: ``init_op`` (initialize all variables), ``ready_op`` (names of uninitialized
    variables), ``saver`` (the graph's one Saver, or a new one), ``summary_op``
    (``merge_all()``); ``init_fn(scaffold, session)`` runs after a fresh
    initialization."""

    def __init__(self, init_op=None, init_feed_dict=None, init_fn=None, ready_op=None,
                 ready_for_local_init_op=None, local_init_op=None, summary_op=None,
                 saver=None, copy_from_scaffold=None):
        if copy_from_scaffold is not None:
            base = copy_from_scaffold
            init_op = init_op or base.init_op
            init_fn = init_fn or base._init_fn
            ready_op = ready_op or base.ready_op
            summary_op = summary_op or base.summary_op
            saver = saver or base.saver
        self.init_op = init_op
        self.init_feed_dict = init_feed_dict
        self._init_fn = init_fn
        self.ready_op = ready_op
        self.local_init_op = local_init_op
        self.ready_for_local_init_op = ready_for_local_init_op
        self.summary_op = summary_op
        self.saver = saver
        self._finalized = False

    @property
    def init_fn(self):
        return self._init_fn

    def finalize(self) -> Scaffold:
        if self._finalized:
            return self
        graph = get_default_graph()
        if self.ready_op is None:
            self.ready_op = _get_or_default(graph, "ready_op", report_uninitialized_variables)
        if self.summary_op is None:
            self.summary_op = _get_or_default(graph, "summary_op", merge_all)
        if self.local_init_op is None and graph.get_collection(GraphKeys.TABLE_INITIALIZERS):
            # NOTE: as TensorFlow's default local_init_op: lookup tables are filled per
            # session (lookup_ops.py)
            self.local_init_op = _get_or_default(graph, "local_init_op", tables_initializer)
        if self.saver is None:
            savers = graph.get_collection("savers")
            if len(savers) > 1:
                raise RuntimeError(f"More than one item in collection 'savers'. Please "
                                   f"indicate which one to use by passing it to the "
                                   f"Scaffold constructor ({len(savers)} found).")
            self.saver = savers[0] if savers else \
                Saver(sharded=True, allow_empty=True)
            if not savers:
                graph.add_to_collection("savers", self.saver)
        self._finalized = True
        graph.finalize()
        return self


def _get_or_default(graph, collection: str, make):
    """The op kept in ``collection``, or a new one kept there: a second monitored session
    on the same (by then final) graph finds what the first made."""
    found = graph.get_collection(collection)
    if found:
        return found[0]
    made = make()
    if made is not None:
        graph.add_to_collection(collection, made)
    return made


def _initialize(session, variables) -> None:
    """Run the initializers of ``variables`` (existing ops: the graph may be final)."""
    if variables:
        session.run([v.initializer for v in variables])


def _ready_session(master: str, is_chief: bool, config, scaffold: Scaffold | None,
                   max_wait_secs: float, checkpoint_dir=None, checkpoint_path=None
                   ) -> Session:
    """A session on ``master`` whose model is ready. The chief restores a checkpoint when
    there is one, and initializes what is still uninitialized; every other worker waits
    until all variables are initialized, as TensorFlow's SessionManager does."""
    session = Session(master, config=config)
    variables = global_variables() + local_variables()
    if is_chief:
        restore_from = checkpoint_path or \
            (latest_checkpoint(checkpoint_dir) if checkpoint_dir else None)
        if restore_from is not None and scaffold is not None and scaffold.saver is not None:
            scaffold.saver.restore(session, restore_from)
        missing = [v for v in variables if not session.is_initialized(v)]
        if missing:
            fresh = len(missing) == len(variables)
            if fresh and scaffold is not None and scaffold.init_op is not None:
                session.run(scaffold.init_op, scaffold.init_feed_dict)
            else:
                _initialize(session, missing)
            if fresh and restore_from is None and scaffold is not None and \
                    scaffold.init_fn is not None:
                scaffold.init_fn(scaffold, session)
        if scaffold is not None and scaffold.local_init_op is not None:
            session.run(scaffold.local_init_op)
        return session
    report = scaffold.ready_op if scaffold is not None and scaffold.ready_op is not None \
        else report_uninitialized_variables(variables)
    deadline = time.monotonic() + max_wait_secs
    while len(session.run(report)):
        if time.monotonic() > deadline:
            raise DeadlineExceededError(
                f"the model was not ready after {max_wait_secs} s: variables "
                f"{[n.decode() for n in session.run(report)][:5]} are not initialized "
                "(is the chief running?)")
        time.sleep(READY_POLL_S)
    return session


class ChiefSessionCreator:
    """Makes the chief's session: restore or initialize."""

    def __init__(self, scaffold=None, master="", config=None, checkpoint_dir=None,
                 checkpoint_filename_with_path=None):
        self.scaffold = scaffold or Scaffold()
        self._args = (master, True, config)
        self._checkpoint_dir = checkpoint_dir
        self._checkpoint_path = checkpoint_filename_with_path

    def create_session(self) -> Session:
        self.scaffold.finalize()
        master, chief, config = self._args
        return _ready_session(master, chief, config, self.scaffold, 7200,
                              self._checkpoint_dir, self._checkpoint_path)


class WorkerSessionCreator:
    """Makes a non-chief worker's session: wait until the model is ready."""

    def __init__(self, scaffold=None, master="", config=None, max_wait_secs=30 * 60):
        self.scaffold = scaffold or Scaffold()
        self._args = (master, config, max_wait_secs)

    def create_session(self) -> Session:
        self.scaffold.finalize()
        master, config, wait = self._args
        return _ready_session(master, False, config, self.scaffold, wait)


class MonitoredSession:
    """``MonitoredSession(session_creator=None, hooks=None)``: a context manager; ``run``
    like Session.run with the hooks around it, ``should_stop()``. Leaving the ``with``
    block on ``OutOfRangeError`` (an input pipeline ran out) ends it normally, as in
    TensorFlow."""

    def __init__(self, session_creator=None, hooks=None, stop_grace_period_secs=120):
        self._hooks = list(hooks or [])
        creator = session_creator or ChiefSessionCreator()
        for hook in self._hooks:
            hook.begin()
        if creator.scaffold is not None:
            creator.scaffold.finalize()
        self._session = creator.create_session()
        self._stop = False
        self._closed = False
        for hook in self._hooks:
            hook.after_create_session(self._session, None)

    @property
    def graph(self):
        return self._session.graph

    def run(self, fetches, feed_dict=None, options=None, run_metadata=None):
        if self._closed:
            raise RuntimeError("Run called on a closed MonitoredSession.")
        context = SessionRunContext(SessionRunArgs(fetches, feed_dict, options), self._session)
        extra = [hook.before_run(context) for hook in self._hooks]
        feeds = dict(feed_dict or {})
        for args in extra:
            if args is not None and args.feed_dict:
                clash = set(map(id, feeds)) & set(map(id, args.feed_dict))
                if clash:
                    raise RuntimeError("Same tensor is fed by a SessionRunHook and user.")
                feeds.update(args.feed_dict)
        results, extra_results = self._session.run(
            (fetches, [a.fetches if a is not None and a.fetches is not None else []
                       for a in extra]), feeds)
        for hook, args, value in zip(self._hooks, extra, extra_results, strict=True):
            hook.after_run(context, SessionRunValues(value if args is not None else None))
        self._stop |= context.stop_requested
        return results

    def run_step_fn(self, step_fn):
        """``step_fn(step_context)`` with ``step_context.run_with_hooks(...)`` and
        ``request_stop()``."""
        outer = self

        class StepContext:
            session = self._session

            def run_with_hooks(self, *args, **kwargs):
                return outer.run(*args, **kwargs)

            def request_stop(self):
                outer._stop = True
        return step_fn(StepContext())

    def should_stop(self) -> bool:
        return self._stop or self._closed

    def close(self) -> None:
        self._close(run_end_hooks=True)

    def _close(self, run_end_hooks: bool) -> None:
        if self._closed:
            return
        try:
            if run_end_hooks:
                for hook in self._hooks:
                    hook.end(self._session)
        finally:
            self._closed = True
            self._session.close()

    def __enter__(self):
        self._entered = contextlib.ExitStack()
        self._entered.enter_context(self._session.graph.as_default())
        self._entered.enter_context(self._session.as_default())
        return self

    def __exit__(self, kind, exc, tb):
        self._entered.close()
        normal = kind is None or issubclass(kind, (OutOfRangeError, StopIteration))
        self._close(run_end_hooks=normal)
        return kind is not None and normal


class SingularMonitoredSession(MonitoredSession):
    """A MonitoredSession for one process; ``raw_session()`` is the Session inside."""

    def __init__(self, hooks=None, scaffold=None, master="", config=None,
                 checkpoint_dir=None, stop_grace_period_secs=120,
                 checkpoint_filename_with_path=None):
        super().__init__(ChiefSessionCreator(scaffold, master, config, checkpoint_dir,
                                             checkpoint_filename_with_path), hooks)

    def raw_session(self) -> Session:
        return self._session


def _schedule(secs, steps, default: tuple):
    """(secs, steps) of a periodic hook: TensorFlow's default when neither is given;
    otherwise what is given, the other off."""
    if secs is USE_DEFAULT and steps is USE_DEFAULT:
        return default
    return (None if secs is USE_DEFAULT else secs), (None if steps is USE_DEFAULT else steps)


def MonitoredTrainingSession(master="", is_chief=True, checkpoint_dir=None, scaffold=None,
                             hooks=None, chief_only_hooks=None,
                             save_checkpoint_secs=USE_DEFAULT,
                             save_summaries_steps=USE_DEFAULT,
                             save_summaries_secs=USE_DEFAULT, config=None,
                             stop_grace_period_secs=120, log_step_count_steps=100,
                             max_wait_secs=7200, save_checkpoint_steps=USE_DEFAULT,
                             summary_dir=None, **unused) -> MonitoredSession:
    """TF1's training session: see the module's docstring. Defaults as TensorFlow's: a
    checkpoint every 600 s, summaries every 100 steps, the step rate every 100 steps."""
    save_checkpoint_secs, save_checkpoint_steps = _schedule(
        save_checkpoint_secs, save_checkpoint_steps, default=(600, None))
    save_summaries_secs, save_summaries_steps = _schedule(
        save_summaries_secs, save_summaries_steps, default=(None, 100))
    scaffold = scaffold or Scaffold()
    all_hooks = list(hooks or [])
    if not is_chief:
        creator = WorkerSessionCreator(scaffold, master, config, max_wait_secs)
        return MonitoredSession(creator, all_hooks, stop_grace_period_secs)
    all_hooks = list(chief_only_hooks or []) + all_hooks
    creator = ChiefSessionCreator(scaffold, master, config, checkpoint_dir)
    summary_dir = summary_dir or checkpoint_dir
    has_step = bool(get_default_graph().get_collection(GraphKeys.GLOBAL_STEP))
    if has_step and log_step_count_steps and log_step_count_steps > 0:
        all_hooks.append(StepCounterHook(every_n_steps=log_step_count_steps,
                                         output_dir=summary_dir))
    if summary_dir and has_step and (save_summaries_steps or save_summaries_secs):
        all_hooks.append(SummarySaverHook(save_steps=save_summaries_steps or None,
                                          save_secs=save_summaries_secs or None,
                                          output_dir=summary_dir, scaffold=scaffold))
    if checkpoint_dir and has_step and (save_checkpoint_steps or save_checkpoint_secs):
        all_hooks.append(CheckpointSaverHook(checkpoint_dir,
                                             save_steps=save_checkpoint_steps or None,
                                             save_secs=save_checkpoint_secs or None,
                                             scaffold=scaffold))
    return MonitoredSession(creator, all_hooks, stop_grace_period_secs)


class Supervisor:
    """``tf.train.Supervisor(is_chief=True, init_op=..., global_step=..., logdir=...)``,
    the 2016 distributed tutorials' session manager: ``prepare_or_wait_for_session
    (master)`` gives a session whose model is ready (the chief restores the latest
    checkpoint in ``logdir`` or initializes; the others wait); ``managed_session(master)``
    is the same as a context manager. Periodic saving is MonitoredTrainingSession's."""

    USE_DEFAULT = 0

    def __init__(self, graph=None, ready_op=USE_DEFAULT, is_chief=True, init_op=USE_DEFAULT,
                 logdir=None, summary_op=USE_DEFAULT, saver=USE_DEFAULT, global_step=None,
                 recovery_wait_secs=30, **unused):
        self._is_chief = bool(is_chief)
        init = None if init_op == Supervisor.USE_DEFAULT else init_op
        chosen_saver = None if saver == Supervisor.USE_DEFAULT else saver
        if logdir and chosen_saver is None and (global_variables() or local_variables()):
            chosen_saver = Saver(allow_empty=True)
        self._scaffold = Scaffold(init_op=init, saver=chosen_saver)
        self._scaffold.ready_op = report_uninitialized_variables()
        self._logdir = logdir
        self.global_step = global_step
        self.saver = chosen_saver
        self._stop = False

    @property
    def is_chief(self) -> bool:
        return self._is_chief

    def prepare_or_wait_for_session(self, master: str = "", config=None,
                                    max_wait_secs: float = 7200, **unused) -> Session:
        return _ready_session(master, self._is_chief, config, self._scaffold, max_wait_secs,
                              self._logdir)

    def managed_session(self, master: str = "", config=None, **unused):
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
