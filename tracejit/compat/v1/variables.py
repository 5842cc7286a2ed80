"""TF1 variables: ``tf.Variable``, ``get_variable`` with ``variable_scope`` and reuse, and
the initializer ops.

A TF1 Variable wraps a tracejit Variable (which holds the value). Its value tensor
is an op that reads it; its initializer op assigns the initial value. A Session
refuses to read a variable it has not initialized, as TensorFlow does.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import numpy as np

from ...ir import dtypes as dt
from ...runtime.devices import DeviceError
from ...runtime.registry import local_device
from ...trace.variables import Variable as CoreVariable
from .default_session import get_default_session
from .graph import Tensor, get_default_graph
from .ops import convert_to_tensor, group
from .partitioned import partitioned_variable
from .shapes import TensorShape
from .strings import string


class GraphKeys:
    GLOBAL_VARIABLES = "variables"
    TRAINABLE_VARIABLES = "trainable_variables"
    LOCAL_VARIABLES = "local_variables"
    GLOBAL_STEP = "global_step"
    LOSSES = "losses"
    SUMMARIES = "summaries"
    UPDATE_OPS = "update_ops"
    REGULARIZATION_LOSSES = "regularization_losses"
    QUEUE_RUNNERS = "queue_runners"
    TRAIN_OP = "train_op"
    MOVING_AVERAGE_VARIABLES = "moving_average_variables"
    METRIC_VARIABLES = "metric_variables"
    WEIGHTS = "weights"
    BIASES = "biases"
    MODEL_VARIABLES = "model_variables"
    TABLE_INITIALIZERS = "table_initializer"


class Variable:
    """``tf.Variable(initial_value, trainable=True, name=None, dtype=None)`` in a graph."""

    def __init__(self, initial_value=None, trainable=True, name=None, dtype=None,
                 collections=None, validate_shape=True, expected_shape=None, **unused):
        graph = get_default_graph()
        # NOTE: a variable made inside a tf.cond branch or tf.while_loop body is made in
        # the graph itself, as TensorFlow's init_scope does (see _attach).
        with graph.outside_regions():
            if callable(initial_value):
                initial_value = initial_value()
            initial = convert_to_tensor(initial_value, dtype=dtype)
        if not initial.shape.is_fully_defined() and validate_shape:
            raise ValueError(f"initial_value must have a fully defined shape, got "
                             f"{initial.shape}")
        base = graph.unique_name(name or "Variable")
        shape = tuple(initial.shape.as_list())
        core = CoreVariable(np.zeros(shape, initial.dtype.np_dtype), name=base,
                            trainable=trainable)
        self._attach(graph, core, base, initial, trainable, collections)

    def _attach(self, graph, core, base: str, initial: Tensor, trainable: bool,
                collections) -> None:
        # NOTE: outside any control_dependencies block, as TensorFlow creates variables:
        # an optimizer's slots made under `control_dependencies(update_ops)` must not
        # make the initializer run the update ops (and need their placeholders).
        with graph.outside_regions():
            self._attach_ops(graph, core, base, initial, trainable, collections)

    def _attach_ops(self, graph, core, base, initial, trainable, collections) -> None:
        self.graph = graph
        self.name = base + ":0"
        self.core = core
        self.initial_value = initial
        # The value op carries the variable's own name, so "W:0" fetches it.
        read = graph.create_op("VariableV2", self.core.read_value, name=base, absolute=True)
        read.reads = self
        self.core.device = _local_or_none(read.device)
        self._value = read.outputs[0]
        assign = graph.create_op("Assign", self.core.assign, (initial,), name=f"{base}/Assign",
                                 absolute=True)
        assign.initializes = self
        self.initializer = assign
        self.op = read
        self.trainable = trainable
        for key in collections or ([GraphKeys.GLOBAL_VARIABLES] +
                                   ([GraphKeys.TRAINABLE_VARIABLES] if trainable else [])):
            graph.add_to_collection(key, self)

    @classmethod
    def from_core(cls, core: CoreVariable, collections=None) -> Variable:
        """A graph variable for a tracejit Variable made elsewhere (an optimizer's slot):
        its initializer assigns the value ``core`` holds now."""
        graph = get_default_graph()
        self = cls.__new__(cls)
        with graph.name_scope(None), graph.control_dependencies(None):
            base = graph.unique_name(core.name)
            initial = convert_to_tensor(core.numpy(), name=f"{base}/Initializer")
            self._attach(graph, core, base, initial, False,
                         collections or [GraphKeys.GLOBAL_VARIABLES])
        return self

    @classmethod
    def without_initializer(cls, name: str, shape, dtype, op_type: str = "VariableV2",
                            trainable: bool = True) -> Variable:
        """A variable whose op is named ``name`` exactly and which has no initializer
        yet (a graph read from a GraphDef assigns its initial value with its own op; see
        graph_def_nodes.py). It joins no collection."""
        graph = get_default_graph()
        self = cls.__new__(cls)
        dtype = dt.as_dtype(dtype)
        core = CoreVariable(np.zeros(tuple(shape), dtype.np_dtype), name=name,
                            trainable=trainable)
        with graph.outside_regions():
            self.graph, self.name, self.core = graph, name + ":0", core
            read = graph.create_op(op_type, core.read_value, name=name, absolute=True)
            read.reads = self
            core.device = _local_or_none(read.device)
            self._value, self.op = read.outputs[0], read
        self.initial_value = self.initializer = None
        self.trainable = trainable
        return self

    # ---- as a tensor ------------------------------------------------------------------------

    def _graph_element(self) -> Tensor:
        """The tensor an op reading this variable takes. Inside ``control_dependencies``
        a new read, created there: it runs after the dependencies (so ``identity(v)``
        after ``assign_add(v, 1)`` sees the new value, as in TensorFlow); elsewhere the
        variable's own value tensor, so gradients with respect to it reach every use.
        Inside a ``tf.cond`` branch or ``tf.while_loop`` body, always a new read there:
        a loop reads the value its body last assigned (as resource variables do)."""
        if not self.graph.in_control_scope() and not self.graph.in_region():
            return self._value
        return self.new_read(f"{self.op.name}/read")

    def new_read(self, name: str, absolute: bool = False) -> Tensor:
        """A new op reading the variable where it runs (after its control inputs)."""
        read = self.graph.create_op("ReadVariableOp", self.core.read_value, name=name,
                                    absolute=absolute)
        read.reads = self
        return read.outputs[0]

    def value(self) -> Tensor:
        # NOTE: inside a branch or loop body, read there (gradients and optimizers
        # in a body see the value the body computes with).
        return self._graph_element() if self.graph.in_region() else self._value

    read_value = value

    @property
    def dtype(self):
        return self._value.dtype

    @property
    def shape(self) -> TensorShape:
        return self._value.shape

    def get_shape(self) -> TensorShape:
        return self._value.shape

    @property
    def device(self):
        return self.op.device

    def initialized_value(self) -> Tensor:
        return self.initial_value

    def eval(self, session=None):
        return self._value.eval(session=session)

    def load(self, value, session=None) -> None:
        self.core.load(value)
        (session or get_default_session()).mark_initialized(self)

    # ---- assignment ops ---------------------------------------------------------------------

    def _assign_op(self, kind, method, value, name):
        value = convert_to_tensor(value, dtype=self.dtype)
        op = self.graph.create_op(kind, getattr(self.core, method), (value,),
                                  name=name or kind)
        if kind == "Assign":
            op.initializes = self
        else:
            op.reads = self
        return op.outputs[0]

    def assign(self, value, use_locking=False, name=None, read_value=True):
        return self._assign_op("Assign", "assign", value, name)

    def assign_add(self, delta, use_locking=False, name=None, read_value=True):
        return self._assign_op("AssignAdd", "assign_add", delta, name)

    def assign_sub(self, delta, use_locking=False, name=None, read_value=True):
        return self._assign_op("AssignSub", "assign_sub", delta, name)

    def __repr__(self) -> str:
        return f"<tf.Variable '{self.name}' shape={self.shape} dtype={self.dtype.name}>"

    # Operators act on the value tensor.
    def __getattr__(self, attr):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        return getattr(self._value, attr)


def _forward(name):
    return lambda self, *args: getattr(self.value(), name)(*args)


for _name in ("add", "radd", "sub", "rsub", "mul", "rmul", "truediv", "rtruediv", "floordiv",
              "rfloordiv", "mod", "rmod", "pow", "rpow", "matmul", "rmatmul", "neg", "abs",
              "lt", "le", "gt", "ge", "getitem", "and", "or", "xor", "invert"):
    setattr(Variable, f"__{_name}__", _forward(f"__{_name}__"))


def assign(ref, value, validate_shape=None, use_locking=None, name=None):
    return ref.assign(value, name=name)


def assign_add(ref, value, use_locking=None, name=None):
    return ref.assign_add(value, name=name)


def assign_sub(ref, value, use_locking=None, name=None):
    return ref.assign_sub(value, name=name)


# ---- collections and initializer ops ----------------------------------------------------------

def global_variables(scope=None):
    return get_default_graph().get_collection(GraphKeys.GLOBAL_VARIABLES, scope)


all_variables = global_variables


def trainable_variables(scope=None):
    return get_default_graph().get_collection(GraphKeys.TRAINABLE_VARIABLES, scope)


def local_variables(scope=None):
    return get_default_graph().get_collection(GraphKeys.LOCAL_VARIABLES, scope)


def variables_initializer(var_list, name="init"):
    return group(*[v.initializer for v in var_list], name=name)


def global_variables_initializer():
    return variables_initializer(global_variables())


initialize_all_variables = global_variables_initializer


def local_variables_initializer():
    return variables_initializer(local_variables(), name="init_local")


def _host_op(op_type: str, name: str, dtype, value) -> Tensor:
    """A tensor whose value the Session computes itself: ``value(session)``."""
    graph = get_default_graph()
    op = graph.create_op(op_type, None, name=name)
    probe = np.asarray(value(None))
    op.outputs = [Tensor(op, 0, TensorShape([None] * probe.ndim), dtype)]
    op.host_value = lambda session: np.asarray(value(session))
    return op.outputs[0]


def is_variable_initialized(variable, name="IsVariableInitialized"):
    """A bool scalar: whether the session running it has initialized ``variable``."""
    return _host_op("IsVariableInitialized", name, dt.bool_,
                    lambda session: np.bool_(session is not None
                                             and session.is_initialized(variable)))


def report_uninitialized_variables(var_list=None, name="report_uninitialized_variables"):
    """The names (bytes, as TensorFlow's string tensor) of the variables in ``var_list``
    (default: global and local variables) the session has not initialized."""
    chosen = list(var_list) if var_list is not None else \
        global_variables() + local_variables()

    def names(session):
        missing = [v.op.name.encode() for v in chosen
                   if session is None or not session.is_initialized(v)]
        return np.array(missing, dtype=object) if missing else np.array([], dtype=object)
    return _host_op("ReportUninitializedVariables", name, string, names)


# ---- get_variable and variable_scope ----------------------------------------------------------

AUTO_REUSE = "auto_reuse"


@dataclass
class VariableScope:
    """What ``get_variable`` inside the scope defaults to: its ``initializer``,
    ``regularizer`` (applied to each variable it creates), ``partitioner``, ``dtype``,
    and a ``custom_getter`` that every ``get_variable`` goes through."""

    name: str
    reuse: object = None
    initializer: object = None
    dtype: object = dt.float32
    regularizer: object = None
    partitioner: object = None
    custom_getter: object = None

    @property
    def original_name_scope(self) -> str:
        return self.name + "/" if self.name else ""

    def reuse_variables(self) -> None:
        self.reuse = True

    def set_initializer(self, initializer) -> None:
        self.initializer = initializer

    def set_regularizer(self, regularizer) -> None:
        self.regularizer = regularizer

    def set_partitioner(self, partitioner) -> None:
        self.partitioner = partitioner

    def set_custom_getter(self, custom_getter) -> None:
        self.custom_getter = custom_getter

    def set_dtype(self, dtype) -> None:
        self.dtype = dtype


def get_variable_scope() -> VariableScope:
    stack = get_default_graph().variable_scope_stack
    return stack[-1] if stack else VariableScope("")


def unique_scope_name(default_name: str, reuse=None) -> str:
    """A fresh scope name for ``default_name`` inside the current scope: ``Conv``, then
    ``Conv_1``, ... (counted per enclosing scope, skipping names whose variables exist),
    as TensorFlow numbers scopes and layers opened without a name."""
    graph = get_default_graph()
    counts = graph.__dict__.setdefault("_layer_scope_counts", {})
    parent = get_variable_scope().name
    prefix = f"{parent}/" if parent else ""
    while True:
        n = counts.get(prefix + default_name, 0)
        counts[prefix + default_name] = n + 1
        scope = default_name if n == 0 else f"{default_name}_{n}"
        taken = any(k.startswith(f"{prefix}{scope}/") for k in graph.variable_store)
        if not taken or reuse:
            return scope


def _chain_getters(custom_getter, outer_getter):
    """A scope's custom getter inside another's: the inner one is called first, with a
    getter that goes through the outer one (TensorFlow's order)."""
    if outer_getter is None or custom_getter is None:
        return custom_getter or outer_getter

    def chained(getter, *args, **kwargs):
        return custom_getter(functools.partial(outer_getter, getter), *args, **kwargs)
    return chained


@contextlib.contextmanager
def variable_scope(name_or_scope, default_name=None, values=None, initializer=None,
                   regularizer=None, caching_device=None, partitioner=None,
                   custom_getter=None, reuse=None, dtype=None, **unused):
    graph = get_default_graph()
    parent = get_variable_scope()
    if name_or_scope is None and default_name is None:
        raise ValueError("variable_scope needs a name_or_scope or a default_name")
    if custom_getter is not None and not callable(custom_getter):
        raise ValueError(f"custom_getter must be callable, got {custom_getter!r}")
    if isinstance(name_or_scope, VariableScope):
        base = name_or_scope          # reopened: its own defaults, not the parent's
        name = base.name
        reuse = base.reuse if reuse is None else reuse
    else:
        base = parent
        local = name_or_scope if name_or_scope is not None else \
            unique_scope_name(default_name, reuse)
        name = f"{parent.name}/{local}" if parent.name and local else (local or parent.name)
    inherited = parent.reuse if reuse is None else reuse
    if parent.reuse is True and reuse is None:
        inherited = True
    scope = VariableScope(
        name, inherited, initializer or base.initializer, dtype or base.dtype,
        regularizer or base.regularizer, partitioner or base.partitioner,
        _chain_getters(custom_getter, base.custom_getter))
    graph.variable_scope_stack.append(scope)
    try:
        with graph.name_scope(name.split("/")[-1] if name else None):
            yield scope
    finally:
        graph.variable_scope_stack.pop()


def _is_value(initializer) -> bool:
    """A tensor, variable, array or Python value (not an initializer to call)."""
    return isinstance(initializer, (Tensor, Variable, np.ndarray, np.generic, int, float,
                                    bool, list, tuple))


def _make_initializer(initializer, shape, dtype):
    from ... import initializers as init
    if initializer is None:
        initializer = init.glorot_uniform() if dtype.is_float else init.zeros()
    if isinstance(initializer, (Tensor, Variable)):
        if shape is not None and not initializer.shape.is_compatible_with(shape):
            raise ValueError(f"the initializer's shape {initializer.shape} does not fit the "
                             f"variable's shape {list(shape)}")
        return initializer
    if callable(initializer):
        return np.asarray(initializer(shape, dtype))
    value = np.asarray(initializer, dtype=dtype.np_dtype)
    return value.copy() if shape is None else np.broadcast_to(value, shape).copy()


def get_variable(name, shape=None, dtype=None, initializer=None, regularizer=None,
                 trainable=True, collections=None, caching_device=None, partitioner=None,
                 validate_shape=True, use_resource=None, custom_getter=None, **unused):
    """The variable ``<scope>/<name>``: made new, or the existing one when the scope
    reuses. Arguments left None take the scope's defaults; a custom getter (the
    argument's, else the scope's) is called as ``custom_getter(getter, name, ...)``."""
    scope = get_variable_scope()
    full = f"{scope.name}/{name}" if scope.name else name
    initializer = scope.initializer if initializer is None else initializer
    if dtype is None and isinstance(initializer, (Tensor, Variable)):
        dtype = initializer.dtype          # as TensorFlow: the initial value decides
    elif dtype is None and isinstance(initializer, (np.ndarray, np.generic)):
        dtype = dt.as_dtype(initializer.dtype)
    arguments = {
        "shape": shape, "dtype": dt.as_dtype(dtype or scope.dtype or dt.float32),
        "initializer": initializer,
        "regularizer": scope.regularizer if regularizer is None else regularizer,
        "reuse": scope.reuse, "trainable": trainable, "collections": collections,
        "caching_device": caching_device,
        "partitioner": scope.partitioner if partitioner is None else partitioner,
        "validate_shape": validate_shape, "use_resource": use_resource}
    custom_getter = scope.custom_getter if custom_getter is None else custom_getter
    if custom_getter is not None:
        return custom_getter(getter=make_variable, name=full, **arguments)
    return make_variable(full, **arguments)


def make_variable(name, shape=None, dtype=None, initializer=None, regularizer=None,
                  reuse=None, trainable=None, collections=None, partitioner=None, **unused):
    """``get_variable`` past the scope's defaults and custom getters (the ``getter`` a
    custom getter receives): ``name`` is the full name."""
    graph = get_default_graph()
    trainable = True if trainable is None else trainable
    dtype = dt.as_dtype(dtype or dt.float32)
    existing = graph.variable_store.get(name)
    if reuse is True or (reuse == AUTO_REUSE and existing is not None):
        if existing is None:
            raise ValueError(f"Variable {name} does not exist, or was not created with "
                             "tf.get_variable(). Did you mean to set reuse=tf.AUTO_REUSE in "
                             "VarScope?")
        if shape is not None and not existing.shape.is_compatible_with(shape):
            raise ValueError(f"Trying to share variable {name}, but specified shape "
                             f"{list(shape)} and found shape {existing.shape.as_list()}.")
        return existing
    if existing is not None:
        raise ValueError(f"Variable {name} already exists, disallowed. Did you mean to set "
                         "reuse=True or reuse=tf.AUTO_REUSE in VarScope?")
    if shape is None and not _is_value(initializer):
        raise ValueError(f"Shape of a new variable ({name}) must be fully defined, but "
                         "instead was None.")
    shape = tuple(int(d) for d in shape) if shape is not None else None
    initial = _make_initializer(initializer, shape, dtype)
    with graph.name_scope(None):
        if partitioner is not None:
            def make_part(value, part_name):
                return Variable(value, trainable=trainable, name=part_name, dtype=dtype,
                                collections=collections)
            variable = partitioned_variable(name, initial, dtype, partitioner, make_part)
        else:
            variable = Variable(initial, trainable=trainable, name=name, dtype=dtype,
                                collections=collections)
    graph.variable_store[name] = variable
    if regularizer is not None:
        with graph.name_scope(f"{name}/Regularizer/"):
            loss = regularizer(variable)
        if loss is not None:
            graph.add_to_collection(GraphKeys.REGULARIZATION_LOSSES, loss)
    return variable


def _local_or_none(device: str) -> str | None:
    """The variable's device when this process has it; else None, the default device
    (without soft placement the Session refuses the variable's ops anyway)."""
    if not device:
        return None
    try:
        local_device(device)
    except DeviceError:
        return None
    return device
