"""``tf.train``: the optimizers (tracejit.train's, applied inside the Session's replay),
the global step, and the learning-rate schedules.

A hyperparameter may be a graph tensor or a ``tf.Variable`` (a placeholder, a schedule
such as :func:`exponential_decay`): it becomes an input of the op ``apply_gradients``
records, and the core optimizer reads its replayed value on every run."""

from __future__ import annotations

import inspect
import itertools
import types

import numpy as np

from ... import train as core_train
from ...cluster.server import Server  # noqa: F401
from ...cluster.spec import ClusterSpec
from ...io.example import (  # noqa: F401 -- tf.train.Example and its parts
    BytesList,
    Example,
    Feature,
    FeatureList,
    FeatureLists,
    Features,
    FloatList,
    Int64List,
    SequenceExample,
)
from ...ir import dtypes as dt
from ...ir.errors import TracejitError
from ...runtime.devices import parse_device
from ...trace import math_ops
from .graph import Tensor, get_default_graph
from .ops import gradients, graph_arg
from .schedules import (  # noqa: F401
    exponential_decay,
    inverse_time_decay,
    piecewise_constant,
    polynomial_decay,
)
from .variables import GraphKeys, Variable, trainable_variables


class Optimizer:
    """A TF1 optimizer over graph variables, delegating the math to tracejit.train."""

    core_name: str = ""

    def __init__(self, *args, **kwargs):
        kwargs.pop("use_locking", None)
        kwargs.pop("name", None)
        core_class = getattr(core_train, self.core_name)
        arguments = inspect.signature(core_class).bind_partial(*args, **kwargs).arguments
        # NOTE: graph values become callables the core optimizer resolves once per apply;
        # they return what the replay passed in for them (see apply_gradients).
        self._graph_hypers = {}
        self._replayed: dict = {}
        self._wrapped: dict[int, Variable] = {}     # core slot id -> its graph Variable
        for name, value in arguments.items():
            if name == "global_step" and hasattr(value, "core"):
                arguments[name] = value.core      # read where the update runs
                continue
            value = graph_arg(value)
            if isinstance(value, Tensor):
                self._graph_hypers[name] = value
                arguments[name] = lambda name=name: self._replayed[name]
        self._core = core_class(**arguments)

    def compute_gradients(self, loss, var_list=None, **unused):
        var_list = list(var_list) if var_list is not None else trainable_variables()
        if not var_list:
            raise ValueError("No variables to optimize.")
        grads = gradients(loss, [v.value() for v in var_list])
        return list(zip(grads, var_list, strict=True))

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not pairs:
            raise ValueError("No gradients provided for any variable: "
                             f"{[v.name for _, v in grads_and_vars]}")
        core_step = None if global_step is None else global_step.core

        names = list(self._graph_hypers)

        def apply(grads, hypers):
            # NOTE: returns nothing: the updates are effects of the replayed trace.
            self._replayed = dict(zip(names, hypers, strict=True))
            self._core.apply_gradients(
                [(g, v.core) for g, (_, v) in zip(grads, pairs, strict=True)],
                global_step=core_step)

        self._register_state([v for _, v in pairs])
        op = get_default_graph().create_op(
            type(self).__name__, apply,
            ([g for g, _ in pairs], [self._graph_hypers[n] for n in names]),
            name=name or "train")
        get_default_graph().add_to_collection(GraphKeys.TRAIN_OP, op)
        return op

    def _register_state(self, variables) -> None:
        """Create the optimizer's slots and accumulators now, as TensorFlow does in
        ``apply_gradients``, and put them in GLOBAL_VARIABLES (not trainable), so that
        initializing or saving "all variables" includes them."""
        try:
            self._core._create_slots([v.core for v in variables])
        except (KeyError, TypeError, TracejitError):
            return      # NOTE: a hyperparameter fed at run time: slots are made then
        for core in self._core.variables():
            if id(core) not in self._wrapped:
                self._wrapped[id(core)] = Variable.from_core(core)

    def minimize(self, loss, global_step=None, var_list=None, name=None, **unused):
        return self.apply_gradients(self.compute_gradients(loss, var_list), global_step, name)

    def get_slot(self, var, name):
        """The slot as a graph Variable (``sess.run`` fetches it), or None."""
        core = self._core.get_slot(var.core, name)
        if core is None:
            return None
        if id(core) not in self._wrapped:
            self._wrapped[id(core)] = Variable.from_core(core)
        return self._wrapped[id(core)]

    def get_slot_names(self):
        return self._core.get_slot_names()


def _wrap(name):
    return type(name, (Optimizer,), {"core_name": name,
                                     "__doc__": f"TF1 ``tf.train.{name}``."})


GradientDescentOptimizer = _wrap("GradientDescentOptimizer")
MomentumOptimizer = _wrap("MomentumOptimizer")
AdagradOptimizer = _wrap("AdagradOptimizer")
AdagradDAOptimizer = _wrap("AdagradDAOptimizer")
AdadeltaOptimizer = _wrap("AdadeltaOptimizer")
AdamOptimizer = _wrap("AdamOptimizer")
RMSPropOptimizer = _wrap("RMSPropOptimizer")
FtrlOptimizer = _wrap("FtrlOptimizer")


def create_global_step(graph=None):
    graph = graph or get_default_graph()
    if graph.get_collection(GraphKeys.GLOBAL_STEP):
        raise ValueError("\"global_step\" already exists.")
    with graph.name_scope(None):
        step = Variable(np.zeros((), np.int64), trainable=False, name="global_step",
                        dtype=dt.int64, collections=[GraphKeys.GLOBAL_VARIABLES,
                                                     GraphKeys.GLOBAL_STEP])
    return step


def get_global_step(graph=None):
    found = (graph or get_default_graph()).get_collection(GraphKeys.GLOBAL_STEP)
    return found[0] if found else None


def get_or_create_global_step(graph=None):
    return get_global_step(graph) or create_global_step(graph)


class ExponentialMovingAverage:
    """``tf.train.ExponentialMovingAverage``: ``apply(vars)`` makes a shadow variable per
    variable (``"v/ExponentialMovingAverage"``, initialized to the variable's initial
    value, in GLOBAL_VARIABLES, not trainable) and returns the op that moves each shadow
    toward its variable: ``shadow -= (1 - decay) * (shadow - value)``. With
    ``num_updates`` the decay is ``min(decay, (1 + n) / (10 + n))``."""

    def __init__(self, decay, num_updates=None, zero_debias=False,
                 name="ExponentialMovingAverage"):
        self._decay = decay
        self._num_updates = num_updates
        self._name = name
        self._averages: dict[int, Variable] = {}

    @property
    def name(self) -> str:
        return self._name

    def apply(self, var_list=None):
        graph = get_default_graph()
        var_list = list(var_list) if var_list is not None else trainable_variables()
        pairs = []
        for var in var_list:
            if not isinstance(var, Variable):
                raise TypeError(f"ExponentialMovingAverage.apply takes tf.Variables, got "
                                f"{var!r}")
            if not var.dtype.is_float:
                raise TypeError(f"The variables must be half, float, or double: {var.name}")
            shadow = self._averages.get(id(var))
            if shadow is None:
                with graph.name_scope(None):
                    shadow = Variable(var.initial_value, trainable=False,
                                      name=self.average_name(var))
                self._averages[id(var)] = shadow
                graph.add_to_collection(GraphKeys.MOVING_AVERAGE_VARIABLES, var)
            pairs.append((var, shadow))
        decay, steps = self._decay, graph_arg(self._num_updates)

        def update(values, steps):
            rate = decay
            if steps is not None:
                n = math_ops.cast(steps, dt.float32)
                rate = math_ops.minimum(decay, (1.0 + n) / (10.0 + n))
            for (_, shadow), value in zip(pairs, values, strict=True):
                old = shadow.core.read_value()
                shadow.core.assign(old - (1.0 - math_ops.cast(rate, old.dtype)) * (old - value))

        return graph.create_op("AssignMovingAvg", update,
                               ([v._graph_element() for v, _ in pairs], steps),
                               name=self._name)

    def average(self, var) -> Variable | None:
        return self._averages.get(id(var))

    def average_name(self, var) -> str:
        return f"{var.op.name}/{self._name}"

    def variables_to_restore(self, moving_avg_variables=None) -> dict:
        """Checkpoint names to variables: each moving-averaged variable under its
        average's name, every other global variable under its own."""
        graph = get_default_graph()
        chosen = moving_avg_variables
        if chosen is None:
            chosen = graph.get_collection(GraphKeys.MOVING_AVERAGE_VARIABLES) + \
                trainable_variables()
        names: dict = {}
        for var in chosen:
            names[self.average_name(var)] = var
        shadows = {id(s) for s in self._averages.values()}
        averaged = {id(v) for v in chosen}
        for var in graph.get_collection(GraphKeys.GLOBAL_VARIABLES):
            if id(var) not in shadows and id(var) not in averaged:
                names[var.op.name] = var
        return names


def moving_average_variables(scope=None):
    return get_default_graph().get_collection(GraphKeys.MOVING_AVERAGE_VARIABLES, scope)


# The op types a replica_device_setter puts on the parameter servers by default.
PS_OPS = ("Variable", "VariableV2", "AutoReloadVariable", "MutableHashTable",
          "MutableHashTableV2", "MutableHashTableOfTensors", "MutableHashTableOfTensorsV2",
          "MutableDenseHashTable", "MutableDenseHashTableV2", "VarHandleOp")


def replica_device_setter(ps_tasks=0, ps_device="/job:ps", worker_device="/job:worker",
                          merge_devices=True, cluster=None, ps_ops=None, ps_strategy=None):
    """A device function for ``tf.device``: variables (``ps_ops``) go to the parameter
    servers round-robin over ``ps_tasks`` (``ps_device/task:i``), every other op to
    ``worker_device``; with ``merge_devices`` an op's own device fields win. None when
    there are no parameter servers (``ps_tasks=0`` and no ``cluster``), as in TF."""
    if cluster is not None:
        spec = cluster if isinstance(cluster, ClusterSpec) else ClusterSpec(cluster)
        ps_job = parse_device(ps_device or "").job or "ps"
        jobs = spec.job_tasks(ps_job) if ps_job in spec.jobs else []
        ps_tasks = len(jobs) if not ps_tasks else ps_tasks
    if ps_tasks == 0:
        return None
    ops_on_ps = tuple(ps_ops) if ps_ops is not None else PS_OPS
    next_task = itertools.count()
    choose = ps_strategy or (lambda op: next(next_task) % ps_tasks)

    def place(op):
        current = parse_device(op.device or "")
        if op.type in ops_on_ps:
            target = parse_device(ps_device).merged(parse_device(f"/task:{choose(op)}")) \
                if ps_tasks else parse_device(ps_device)
        else:
            target = parse_device(worker_device or "")
        return str(target.merged(current) if merge_devices else target)

    return place


class GreedyLoadBalancingStrategy:
    """A ``ps_strategy`` for :func:`replica_device_setter`: each new parameter-server op
    goes to the task with the least load so far, ``load_fn(op)`` adding to it (ties to
    the lowest task), as ``tf.contrib.training.GreedyLoadBalancingStrategy``."""

    def __init__(self, num_tasks: int, load_fn):
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be at least 1, got {num_tasks}")
        self._loads = [0] * num_tasks
        self._load_fn = load_fn

    def __call__(self, op) -> int:
        task = min(range(len(self._loads)), key=lambda i: (self._loads[i], i))
        self._loads[task] += self._load_fn(op)
        return task


def byte_size_load_fn(op) -> int:
    """The bytes of a variable op's value (its first output): the load a
    GreedyLoadBalancingStrategy balances."""
    if not op.outputs:
        return 0
    tensor = op.outputs[0]
    if not tensor.shape.is_fully_defined():
        raise ValueError(f"byte_size_load_fn: {op.name} has shape {tensor.shape}, not fully "
                         "defined")
    return int(np.prod(tensor.shape.as_list(), dtype=np.int64)) * tensor.dtype.itemsize


# NOTE: imported last: they use the optimizers and the global step defined above
from .coordinator import (  # noqa: E402,F401
    Coordinator,
    LooperThread,
    QueueRunner,
    add_queue_runner,
    start_queue_runners,
)
from .file_ops import match_filenames_once  # noqa: E402,F401
from .hooks import (  # noqa: E402,F401
    CheckpointSaverHook,
    FeedFnHook,
    FinalOpsHook,
    GlobalStepWaiterHook,
    LoggingTensorHook,
    NanLossDuringTrainingError,
    NanTensorHook,
    SecondOrStepTimer,
    SessionRunArgs,
    SessionRunContext,
    SessionRunHook,
    SessionRunValues,
    StepCounterHook,
    StopAtStepHook,
    SummarySaverHook,
)
from .input import (  # noqa: E402,F401
    batch,
    batch_join,
    input_producer,
    limit_epochs,
    maybe_batch,
    maybe_batch_join,
    maybe_shuffle_batch,
    maybe_shuffle_batch_join,
    range_input_producer,
    shuffle_batch,
    shuffle_batch_join,
    slice_input_producer,
    string_input_producer,
)
from .meta_graph_export import export_meta_graph  # noqa: E402,F401
from .meta_graph_import import import_meta_graph  # noqa: E402,F401
from .monitored import (  # noqa: E402,F401
    ChiefSessionCreator,
    MonitoredSession,
    MonitoredTrainingSession,
    Scaffold,
    SingularMonitoredSession,
    Supervisor,
    WorkerSessionCreator,
)
from .saver import (  # noqa: E402,F401
    CheckpointSaverListener,
    NewCheckpointReader,
    Saver,
    SaverDef,
    checkpoint_exists,
    get_checkpoint_state,
    init_from_checkpoint,
    latest_checkpoint,
    list_variables,
    load_checkpoint,
    load_variable,
    write_graph,
)
from .sync_replicas import SyncReplicasOptimizer  # noqa: E402,F401

# tf.train.queue_runner: the module TF 1.x kept them in (tf.train.queue_runner.QueueRunner)
queue_runner = types.SimpleNamespace(QueueRunner=QueueRunner, add_queue_runner=add_queue_runner,
                                     start_queue_runners=start_queue_runners)
