"""``tf.Session``: run parts of a TF1 graph.

``run(fetches, feed_dict)`` finds the operations the fetches need (stopping at fed
tensors, so feeding an intermediate cuts the graph there), checks that every
placeholder they need is fed and every variable they read is initialized, and
replays those operations inside one trace. The replay is a ``JitFunction`` cached
per (fetches, fed tensors), so each new set of fed shapes compiles once and later
steps are a dictionary lookup and one program call.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading

import numpy as np

from ...cluster.remote import RemoteError
from ...cluster.session import connect
from ...cluster.spec import ClusterError
from ...config import settings
from ...ir.errors import DTypeError, ShapeError
from ...ir.source import user_location
from ...runtime.device import Resident
from ...runtime.devices import DeviceError
from ...runtime.partitions import StepTimeout
from ...runtime.registry import devices, get_device, local_device
from ...trace import pytree
from ...trace.jit import JitFunction
from .config import ConfigProto
from .default_session import default_session
from .errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    UnimplementedError,
)
from .feeds import fed_array, outside_regions
from .graph import Graph, Operation, Tensor, get_default_graph, replay_ops
from .host_ops import HostRun, ancestors_on_host, batch_plan, pump_plan, run_batch_plan
from .special_runs import needs_host, run_with_host


class _Plan:
    """What one (fetches, fed tensors) combination runs: ordered ops and the program."""

    device_of = None        # op -> the device it runs on (None: the session's default)

    def __init__(self, ops: list[Operation], fed: list[Tensor], targets: list, initializes,
                 executor: str | None = None):
        self.ops = ops
        self.fed = fed
        self.targets = targets
        self.initializes = initializes
        self.program = JitFunction(self._replay, executor=executor)
        self.program.__name__ = "session_run"

    def _replay(self, *fed_values):
        values = {id(t): v for t, v in zip(self.fed, fed_values, strict=True)}
        replay_ops(self.ops, values, self.device_of)
        return [values[id(t)] for t in self.targets if isinstance(t, Tensor)]


def placed_device(op: Operation, soft: bool) -> str | None:
    """Where ``op`` runs: the device it is pinned to when this process has it; with soft
    placement, an absent one means the default (None)."""
    if not op.device:
        return None
    try:
        device = local_device(op.device)
    except DeviceError:
        if soft:
            return None
        raise
    return None if device is None else str(device.spec)


class Session:
    """``Session(target='', graph=None, config=None)``; a context manager."""

    def __init__(self, target: str = "", graph: Graph | None = None, config=None):
        if config is not None and not isinstance(config, ConfigProto):
            raise TypeError(f"config must be a tf.ConfigProto, got {type(config).__name__}")
        self.config = config if config is not None else ConfigProto()
        # a target is a task of a cluster: its devices resolve while this session runs
        self._cluster = None
        if target:
            with _AsTfErrors():
                self._cluster = connect(target,
                                        timeout_ms=self.config.operation_timeout_in_ms)
        self.graph = graph or get_default_graph()
        self._plans: dict = {}
        self._host_ops: dict = {}     # (targets, fed) -> the host ops they need
        self._host_runs: dict = {}    # (targets, fed) -> HostRun, where there are some
        self._special: dict = {}      # (targets, fed) -> whether run_with_host must run
        self._batch_plans: dict = {}  # id(op) -> (op, host_ops.batch_plan(op))
        self._planning = threading.RLock()
        self._resources: dict = {}    # host resources: queues, readers, iterators
        self._placed: set[int] = set()        # ops whose placement was logged
        self._initialized: set[int] = set()
        self._closed = False
        self._contexts: list = []

    # ---- context management -----------------------------------------------------------------

    def __enter__(self):
        stack = contextlib.ExitStack()
        stack.enter_context(self.graph.as_default())
        stack.enter_context(self.as_default())
        self._contexts.append(stack)
        return self

    def __exit__(self, *exc):
        self._contexts.pop().close()
        self.close()

    def as_default(self):
        return default_session(self)

    def close(self) -> None:
        self._closed = True
        self._plans.clear()
        self._special.clear()
        self._host_runs.clear()
        # NOTE: threads blocked on this session's queues wake and end (TF cancels them)
        for _, on_close in list(self._resources.values()):
            if on_close is not None:
                on_close()
        self._resources.clear()

    # ---- running ----------------------------------------------------------------------------

    def run(self, fetches, feed_dict=None, options=None, run_metadata=None):
        if self._closed:
            raise RuntimeError("Attempted to use a closed Session.")
        if self._cluster is None:
            return _string_scalars_as_bytes(self._run(fetches, feed_dict))
        with _AsTfErrors(), self._cluster.running(self.config.operation_timeout_in_ms):
            return _string_scalars_as_bytes(self._run(fetches, feed_dict))

    def run_batched(self, op, limit: int) -> bool:
        """Run the host op ``op`` up to ``limit`` times in a row as one batch, as a
        queue runner runs its enqueue (see ``host_ops.batch_plan``); False, having run
        nothing, where its chain has no batched form (the caller then uses ``run``)."""
        if self._closed:
            raise RuntimeError("Attempted to use a closed Session.")
        if self._cluster is not None:
            return False            # ops placed on other tasks run through the cluster
        found = self._batch_plans.get(id(op))
        if found is None:
            found = self._batch_plans[id(op)] = (op, batch_plan(op))
        if found[1] is None:
            return False
        run_batch_plan(self, found[1], limit)
        return True

    def run_pump(self, op, limit: int) -> bool:
        """Run the queue runner's enqueue ``op`` over and over in native code, up to
        ``limit`` elements at a time, until a queue closes (raising as a run would);
        False, having run nothing, where its chain cannot (host_ops.pump_plan)."""
        if self._closed:
            raise RuntimeError("Attempted to use a closed Session.")
        if self._cluster is not None:
            return False
        key = ("pump", id(op))
        found = self._batch_plans.get(key)
        if found is None:
            found = self._batch_plans[key] = (op, pump_plan(op))
        if found[1] is None:
            return False
        source, tables = found[1]
        return op.host_pump(self, source, tables, limit)

    def _run(self, fetches, feed_dict, host_done: frozenset = frozenset()):
        leaves: list = []
        treedef = pytree.flatten(fetches, leaves)
        targets = [self._as_target(f) for f in leaves]
        feed_dict = self._resolved_feeds(feed_dict)
        fed_ids = frozenset(map(id, feed_dict))
        key = (tuple(id(t) for t in targets), fed_ids)
        found = self._host_ops.get(key)
        if found is None:
            # NOTE: cached: the walk over the graph would otherwise cost every step
            found = self._host_ops[key] = ancestors_on_host(targets, set(fed_ids))
        hosts = [op for op in found if id(op) not in host_done]
        if hosts:
            run = self._host_runs.get(key)
            if run is None:
                run = self._host_runs[key] = HostRun(targets, found, fed_ids)
            results = run.run(self, self._run, self._step_values, feed_dict or {}, host_done)
            return pytree.unflatten(treedef, iter(results))
        special = self._special.get(key)
        if special is None:
            special = self._special[key] = needs_host(targets, feed_dict)
        if special:
            return run_with_host(self, self._run, self._run_step, self._feeds, treedef,
                                 targets, feed_dict)
        return self._run_step(treedef, targets, feed_dict)

    def _step_values(self, targets, feed_dict) -> list:
        """The compiled step alone: the values of the list ``targets``."""
        return self._run_step(pytree.flatten(targets, []), targets, feed_dict)

    def _run_step(self, treedef, targets, feed_dict, converted=None):
        """The compiled step alone: ``targets`` from the fed values."""
        fed, arrays = converted or self._feeds(feed_dict or {})
        key = (tuple(id(t) for t in targets), tuple(id(t) for t in fed))
        plan = self._plans.get(key)
        if plan is None:
            # NOTE: queue runners' threads run steps of their own on this session
            with self._planning:
                plan = self._plans.get(key)
                if plan is None:
                    plan = self._plan(targets, fed)
                    self._plans[key] = plan
        self._check_initialized(plan)
        threads = self.config.intra_op_parallelism_threads
        try:
            with settings(threads=threads) if threads > 0 else contextlib.nullcontext():
                outputs = iter(plan.program(*arrays))
        except (ShapeError, DTypeError) as err:
            # NOTE: the graph met the fed shapes: what TensorFlow checks at run time.
            op = getattr(err, "graph_op", None)
            text = f"{err.op}: {err.bare_message}" if err.op else err.bare_message
            if op is not None:
                text += f"\n  [[node {op.name} (defined at {op.location})]]"
            raise InvalidArgumentError(text, op=op, location=err.location) from None
        self._initialized.update(plan.initializes)
        results = [np.asarray(next(outputs)) if isinstance(t, Tensor) else None
                   for t in targets]
        return pytree.unflatten(treedef, iter(results))

    def step_function(self, fetches, fed) -> tuple[JitFunction, list[Tensor]]:
        """``(function, fed tensors)``: the jitted step a run of ``fetches`` (a list of
        tensors or names) with the tensors ``fed`` fed calls. It takes the fed values in
        that order, reads the session's variables and returns the fetches' values; an
        ahead-of-time build traces it (tracejit.aot.compile_session)."""
        targets = [self._as_target(f) for f in fetches]
        tensors = list(self._resolved_feeds(dict.fromkeys(fed)))
        hosts = ancestors_on_host(targets, {id(t) for t in tensors})
        if hosts:
            raise UnimplementedError(f"{hosts[0].name} ({hosts[0].type}) runs in Python on "
                                     "the host: feed its result instead",
                                     location=user_location())
        plan = self._plan(targets, tensors)
        self._check_initialized(plan)
        return plan.program, tensors

    def _as_target(self, fetch):
        try:
            element = self.graph.as_graph_element(fetch)
        except (KeyError, ValueError, TypeError) as exc:
            raise TypeError(f"Fetch argument {fetch!r} cannot be interpreted as a Tensor or "
                            f"Operation: {exc}") from None
        if element.graph is not self.graph:
            raise ValueError(f"Fetch {element.name!r} is not an element of this session's "
                             "graph")
        outside_regions(element, "fetch")
        return element

    def _resolved_feeds(self, feed_dict) -> dict:
        """``feed_dict`` keyed by this graph's Tensors (names and Tensors accepted); a
        key that is not one of its tensors is a clear TypeError."""
        resolved = {}
        # NOTE: a SparseTensor key feeds its parts (sparse.py)
        items = [pair for key, value in (feed_dict or {}).items()
                 for pair in (key.feed_items(value) if hasattr(key, "feed_items")
                              else [(key, value)])]
        for key, value in items:
            if isinstance(key, Tensor) and key.graph is self.graph:
                tensor = key         # the usual key, and every key of a nested run
            else:
                try:
                    tensor = self.graph.as_graph_element(key)
                except (KeyError, ValueError, TypeError) as exc:
                    raise TypeError(f"Cannot interpret feed_dict key {key!r} as a Tensor: "
                                    f"{exc}") from None
                if not isinstance(tensor, Tensor):
                    raise TypeError(f"Cannot feed {key!r}: it is an Operation, not a Tensor")
            outside_regions(tensor, "feed")
            resolved[tensor] = value
        return resolved

    def _feeds(self, feed_dict) -> tuple[list[Tensor], list[np.ndarray]]:
        """The fed tensors (``feed_dict`` resolved by ``_resolved_feeds``) and their values
        as arrays of their dtypes."""
        fed = list(feed_dict)
        return fed, [fed_array(tensor, value) for tensor, value in feed_dict.items()]

    def _plan(self, targets, fed) -> _Plan:
        fed_ids = {id(t) for t in fed}
        needed: dict[int, Operation] = {}
        needed_by: dict[int, str] = {}
        stack = []
        for target in targets:
            if isinstance(target, Tensor) and id(target) in fed_ids:
                continue        # a fetched tensor that is also fed comes back as fed
            op = target if isinstance(target, Operation) else target.op
            stack.append((op, target.name))
        while stack:
            op, root = stack.pop()
            if id(op) in needed or (getattr(op, "host_compute", None) is not None
                                    and getattr(op, "gradient_rule", None) is None):
                continue        # a host op ran before this step (host_ops.HostRun)
            # NOTE: one with an overriding gradient is replayed: that ties its fed results
            # to its inputs (gradient_override.py)
            if getattr(op, "host_run", None) is not None:
                raise UnimplementedError(
                    f"{op.name} ({op.type}) runs a step of its own (it exchanges with other "
                    f"replicas): fetch it with session.run, not as a dependency of "
                    f"'{root}'", location=user_location())
            if getattr(op, "host_value", None) is not None or \
                    getattr(op, "host_encode", None) is not None:
                raise UnimplementedError(
                    f"{op.name} ({op.type}) is known to the session only: fetch it with "
                    f"session.run, do not compute with it (needed by '{root}')",
                    location=user_location())
            needed[id(op)] = op
            needed_by[id(op)] = root
            for tensor in op.inputs:
                if id(tensor) not in fed_ids:
                    stack.append((tensor.op, root))
            for control in op.control_inputs:
                stack.append((control, root))
        for op in needed.values():
            if op.type == "Placeholder" and not all(id(t) in fed_ids for t in op.outputs):
                raise InvalidArgumentError(
                    f"You must feed a value for placeholder tensor '{op.outputs[0].name}' "
                    f"with dtype {op.outputs[0].dtype.name} and shape {op.outputs[0].shape}: "
                    f"fetch '{needed_by[id(op)]}' needs it", location=user_location())
        ordered = sorted(needed.values(), key=lambda o: o.order)
        self._check_devices(ordered)
        if self.config.log_device_placement:
            self._log_placement(ordered)
        initializes = {id(op.initializes) for op in ordered
                       if getattr(op, "initializes", None) is not None}
        plan = _Plan(ordered, fed, targets, initializes,
                     executor=self._cluster.default if self._cluster else None)
        # NOTE: not the bound method: a plan the session keeps must not refer back to
        # it (a cycle would keep a session nobody closed, and its pipelines, alive until
        # the garbage collector happens to run)
        plan.device_of = functools.partial(placed_device,
                                           soft=self.config.allow_soft_placement)
        plan.reads = [op.reads for op in ordered if getattr(op, "reads", None) is not None]
        plan.reads += [v for op in ordered for v in getattr(op, "inner_reads", ())]
        if self._cluster is not None:
            # NOTE: every variable of the graph, not just those the ops name: an
            # optimizer's slots are read and written inside its apply op
            self._place_variables(plan.reads + [op.initializes for op in ordered
                                                if getattr(op, "initializes", None)]
                                  + self.graph.get_collection("variables")
                                  + self.graph.get_collection("local_variables"))
        return plan

    def _place_variables(self, variables) -> None:
        """A cluster session: each variable lives on the task its op is placed on
        (a parameter server keeps it there for every session and worker)."""
        for variable in variables:
            where = self._device_of(variable.op)
            self._cluster.place_variable(variable.core,
                                         local_device(where) if where else None)

    def _check_devices(self, ops: list[Operation]) -> None:
        """An op pinned to a device this process lacks (``/gpu:0``, ``/cpu:3`` with two
        CPU devices, another job's device) fails unless soft placement lets it run
        elsewhere, with TensorFlow's message listing the devices there are."""
        if self.config.allow_soft_placement:
            return
        for op in ops:
            if not op.device:
                continue
            try:
                local_device(op.device)
            except DeviceError as exc:
                available = [str(d.spec) for d in devices()]
                if self._cluster is not None:
                    available = [f"/job:{job}/replica:0/task:{task}/device:CPU:0"
                                 for job, task, _ in self._cluster.devices.cluster.tasks()]
                raise InvalidArgumentError(
                    f"Cannot assign a device for operation {op.name}: {{{{node {op.name}}}}} "
                    f"was explicitly assigned to {op.device} but available devices are [ "
                    f"{', '.join(available)} ] ({exc.bare_message}). Make sure the device "
                    "specification refers to a valid device, or create the Session with "
                    "config=tf.ConfigProto(allow_soft_placement=True).",
                    op=op, location=op.location) from None

    def _device_of(self, op: Operation) -> str | None:
        return placed_device(op, self.config.allow_soft_placement)

    def _log_placement(self, ops: list[Operation]) -> None:
        """``log_device_placement``: one line an op, the first time the session places it,
        as TensorFlow prints them: the device it runs on."""
        default = str(get_device().spec)
        for op in ops:
            if id(op) not in self._placed:
                self._placed.add(id(op))
                print(f"{op.name}: ({op.type}): {self._device_of(op) or default}",
                      file=sys.stderr)

    def _check_initialized(self, plan: _Plan) -> None:
        for variable in plan.reads:
            if id(variable) not in plan.initializes and not self.is_initialized(variable):
                raise FailedPreconditionError(
                    f"Attempting to use uninitialized value {variable.name}: run "
                    "tf.global_variables_initializer() (or the variable's initializer) in "
                    "this session first", location=user_location())

    def resource(self, key, make, on_close=None):
        """The session's own instance of a stateful host resource (a queue, a reader, an
        iterator): made by ``make()`` the first time ``key`` is asked for, as TensorFlow
        gives each session its own queues; ``on_close(resource)`` runs when the session
        closes (a queue cancels its waiting threads)."""
        with self._planning:
            found = self._resources.get(key)
            if found is None:
                made = make()
                found = self._resources[key] = \
                    (made, None if on_close is None else (lambda: on_close(made)))
            return found[0]

    def mark_initialized(self, variable) -> None:
        self._initialized.add(id(variable))

    def is_initialized(self, variable) -> bool:
        """Initialized by this session -- or, for a variable living on another task, by
        anyone (a parameter server's variables outlive the sessions)."""
        if id(variable) in self._initialized:
            return True
        if self._cluster is None:
            return False
        with _AsTfErrors(), self._cluster.running(self.config.operation_timeout_in_ms):
            self._place_variables([variable])
            value = variable.core._value
            if isinstance(value, Resident):
                if value.initialized():
                    self._initialized.add(id(variable))
                    return True
        return False


class InteractiveSession(Session):
    """A Session that installs itself as the default session when created."""

    def __init__(self, target: str = "", graph: Graph | None = None, config=None):
        super().__init__(target, graph, config)
        self._default = self.as_default()
        self._default.__enter__()

    def close(self) -> None:
        if not self._closed:
            self._default.__exit__(None, None, None)
        super().close()


class _AsTfErrors:
    """Cluster failures as TensorFlow reports them: a request past its deadline is a
    DeadlineExceededError, a variable no one initialized a FailedPreconditionError, any
    other refusal by a task an InternalError (each naming the task and the user's line).
    NOTE: a class, not a contextlib generator, so that the user's line is the first frame
    outside tracejit when the error is raised."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, StepTimeout):
            raise DeadlineExceededError(exc.bare_message, location=user_location()) from None
        if isinstance(exc, RemoteError):
            mapped = {"UninitializedVariable": FailedPreconditionError,
                      "DeadlineExceeded": DeadlineExceededError,   # a wait the task timed out
                      "WireError": InvalidArgumentError,
                      "Malformed": InvalidArgumentError}.get(exc.kind, InternalError)
            raise mapped(exc.bare_message, location=user_location()) from None
        if isinstance(exc, ClusterError):
            raise InvalidArgumentError(exc.bare_message, location=user_location()) from None
        return False


def _string_scalars_as_bytes(results):
    """A fetched tf.string scalar is ``bytes``, as TensorFlow returns it (not a 0-d
    object array)."""
    leaves: list = []
    treedef = pytree.flatten(results, leaves)
    if not any(isinstance(v, np.ndarray) and v.dtype == object and v.ndim == 0
               for v in leaves):
        return results
    return pytree.unflatten(treedef, iter(
        v.item() if isinstance(v, np.ndarray) and v.dtype == object and v.ndim == 0 else v
        for v in leaves))
