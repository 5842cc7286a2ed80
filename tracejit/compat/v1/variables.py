"""TF1 variables: ``tf.Variable``, assignments, the collections and the initializer ops
(``get_variable`` with ``variable_scope`` and reuse: variable_scope.py).

A TF1 Variable wraps a tracejit Variable (which holds the value). Its value tensor
is an op that reads it; its initializer op assigns the initial value. A Session
refuses to read a variable it has not initialized, as TensorFlow does.
"""

from __future__ import annotations

import numpy as np

from ...ir import dtypes as dt
from ...runtime.devices import DeviceError
from ...runtime.registry import local_device
from ...trace.variables import Variable as CoreVariable
from .default_session import get_default_session
from .graph import Tensor, get_default_graph
from .ops import convert_to_tensor, group
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
