"""``tf.nn.rnn_cell``: TensorFlow 1's recurrent cells, with its variable names.

A cell maps ``(inputs [batch, depth], state)`` to ``(output, new_state)``; ``state`` is a
tensor or a tuple of them (``LSTMStateTuple(c, h)``). As in TF 1.x, a cell is a layer:
its first call opens a variable scope named after it (``basic_lstm_cell``,
``basic_lstm_cell_1``, ... within the enclosing scope) and creates its variables there
with ``tf.get_variable``; later calls reuse them. So the names match TensorFlow's and
its checkpoints load: ``rnn/basic_lstm_cell/kernel``,
``rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel``, ``rnn/gru_cell/gates/kernel``,
``rnn/gru_cell/candidate/bias``. The gate layouts are TF's too: an LSTM's kernel holds
the ``i, j, f, o`` blocks (input gate, new input, forget gate, output gate) side by
side; a GRU's ``gates`` kernel the reset then update gate.

>>> import numpy as np, tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     cell = tf.nn.rnn_cell.BasicLSTMCell(4)
...     x = tf.placeholder(tf.float32, [None, 3])
...     out, state = cell(x, cell.zero_state(2, tf.float32))
...     [v.name for v in tf.trainable_variables()], out.shape.as_list()
(['basic_lstm_cell/kernel:0', 'basic_lstm_cell/bias:0'], [2, 4])
"""

from __future__ import annotations

import collections
import re

from ... import initializers as init
from ...ir import dtypes as dt
from ...trace import pytree
from .graph import get_default_graph
from .ops import convert_to_tensor, nn_ops_table, ops
from .shapes import TensorShape
from .variable_scope import get_variable, variable_scope

__all__ = ["LSTMStateTuple", "RNNCell", "LayerRNNCell", "BasicRNNCell", "BasicLSTMCell",
           "LSTMCell", "GRUCell", "state_leaves", "zeros_of", "input_depth_of"]


class LSTMStateTuple(collections.namedtuple("LSTMStateTuple", ("c", "h"))):
    """An LSTM's state: the memory ``c`` and the output ``h``."""

    __slots__ = ()

    @property
    def dtype(self):
        c, h = self
        if c.dtype is not h.dtype:
            raise TypeError(f"Inconsistent internal state: {c.dtype} vs {h.dtype}")
        return c.dtype


def state_leaves(structure) -> list:
    """The tensors (or sizes) of a state structure, in TF's nest order."""
    leaves: list = []
    pytree.flatten(structure, leaves)
    return leaves


def _unique_name(default_name: str, owner) -> str:
    """``default_name``, or ``default_name_1``, ... as TF numbers the layers opened in one
    entry of a named variable scope (``owner``: that entry, or the graph at the top).
    NOTE: counted per entry, as TF resets a scope's counts when it is entered again by
    name: a model built again under ``variable_scope("Model", reuse=True)`` finds the
    same names, while two cells of one scope get two."""
    counts = owner.__dict__.setdefault("_cell_scope_counts", {})
    n = counts.get(default_name, 0)
    counts[default_name] = n + 1
    return default_name if n == 0 else f"{default_name}_{n}"


def _snake(name: str) -> str:
    """``BasicLSTMCell`` -> ``basic_lstm_cell``, as TF names a layer after its class."""
    first = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", first).lower()


class RNNCell:
    """The base of every cell: ``state_size``, ``output_size``, ``zero_state``, and
    ``__call__(inputs, state, scope=None)`` with TF's variable scoping. Subclasses
    define ``call(inputs, state)`` and, for variables, ``build(inputs_shape)``."""

    def __init__(self, trainable=True, name=None, dtype=None, reuse=None, _reuse=None,
                 **unused):
        self._base_name = name or _snake(type(self).__name__)
        self._reuse = reuse if reuse is not None else _reuse
        self.dtype = None if dtype is None else dt.as_dtype(dtype)
        self.trainable = trainable
        self.built = False
        self._scope = None            # the layer's own variable scope, from the first call
        # the variable scope entry current at the first call (TF's rnncell_scope), or
        # the graph where that is the top
        self._outer_scope = None

    @property
    def state_size(self):
        raise NotImplementedError(f"{type(self).__name__} must define state_size")

    @property
    def output_size(self):
        raise NotImplementedError(f"{type(self).__name__} must define output_size")

    @property
    def name(self) -> str:
        return self._base_name

    @property
    def scope_name(self) -> str:
        return self._scope.name if self._scope is not None else self._base_name

    def build(self, inputs_shape) -> None:
        """Create the cell's variables (in its scope); cells without any keep this."""

    def call(self, inputs, state):
        raise NotImplementedError(f"{type(self).__name__} must define call(inputs, state)")

    def __call__(self, inputs, state, scope=None):
        if scope is not None:
            with variable_scope(scope) as given:
                return self._layer_call(inputs, state, given)
        graph = get_default_graph()
        if self._outer_scope is None:
            stack = graph.variable_scope_stack
            self._outer_scope = stack[-1] if stack else graph
        if self._outer_scope is graph:
            return self._layer_call(inputs, state, None)
        with variable_scope(self._outer_scope):
            return self._layer_call(inputs, state, None)

    def _layer_call(self, inputs, state, scope):
        inputs = convert_to_tensor(inputs)
        if self._scope is None:
            if scope is not None:
                self._scope = scope
            elif self._reuse:
                with variable_scope(self._base_name) as captured:
                    self._scope = captured
            else:
                with variable_scope(_unique_name(self._base_name, self._outer_scope)) \
                        as captured:
                    self._scope = captured
        with variable_scope(self._scope, reuse=True if self.built or self._reuse else None):
            if not self.built:
                self.build(inputs.shape)
                self.built = True
            return self.call(inputs, state)

    def add_variable(self, name, shape, initializer=None, dtype=None):
        """A variable of this cell (``tf.get_variable`` in its scope)."""
        return get_variable(name, shape, dtype=dtype or self.dtype or dt.float32,
                            initializer=initializer, trainable=self.trainable)

    def zero_state(self, batch_size, dtype):
        """Zeros of ``state_size`` for ``batch_size`` examples (a number or a scalar
        tensor), in the state's structure."""
        graph = get_default_graph()
        with graph.name_scope(f"{type(self).__name__}ZeroState"):
            return zeros_of(self.state_size, batch_size, dtype)

    def get_initial_state(self, inputs=None, batch_size=None, dtype=None):
        if inputs is not None:
            batch_size = ops["shape"](inputs)[0] if inputs.shape.dims is None or \
                inputs.shape.dims[0] is None else inputs.shape.dims[0]
            dtype = dtype or inputs.dtype
        return self.zero_state(batch_size, dtype)


def zeros_of(sizes, batch_size, dtype):
    """Zeros ``[batch_size, size]`` for each size of the structure ``sizes``."""
    leaves: list = []
    treedef = pytree.flatten(sizes, leaves)
    static = batch_size if isinstance(batch_size, int) else None
    zeros = []
    for size in leaves:
        dims = list(TensorShape(size).dims)
        if static is not None:
            zeros.append(ops["zeros"]([static, *dims], dtype=dtype))
        else:
            shape = ops["stack"]([convert_to_tensor(batch_size, dt.int32), *dims])
            zeros.append(ops["zeros"](shape, dtype=dtype))
    return pytree.unflatten(treedef, iter(zeros))


LayerRNNCell = RNNCell


def _linear(args: list, kernel, bias):
    """``concat(args, 1) @ kernel + bias``."""
    joined = args[0] if len(args) == 1 else ops["concat"](args, 1)
    return nn_ops_table["bias_add"](ops["matmul"](joined, kernel), bias)


def _activation(activation):
    return activation if activation is not None else ops["tanh"]


class _OutputIsState(RNNCell):
    """A cell whose state is its output: ``num_units`` wide."""

    def __init__(self, num_units, activation, reuse, name, dtype, **kwargs):
        super().__init__(name=name, dtype=dtype, reuse=reuse, **kwargs)
        self._num_units = int(num_units)
        self._activation = _activation(activation)

    @property
    def state_size(self):
        return self._num_units

    @property
    def output_size(self):
        return self._num_units


class BasicRNNCell(_OutputIsState):
    """``output = new_state = activation(W [inputs, state] + b)``: ``kernel``
    [depth + num_units, num_units] and ``bias`` [num_units]."""

    def __init__(self, num_units, activation=None, reuse=None, name=None, dtype=None,
                 **kwargs):
        super().__init__(num_units, activation, reuse, name, dtype, **kwargs)

    def build(self, inputs_shape):
        depth = input_depth_of(inputs_shape, self)
        self._kernel = self.add_variable("kernel", [depth + self._num_units, self._num_units])
        self._bias = self.add_variable("bias", [self._num_units], init.zeros())

    def call(self, inputs, state):
        output = self._activation(_linear([inputs, state], self._kernel, self._bias))
        return output, output


def input_depth_of(inputs_shape, cell) -> int:
    shape = TensorShape(inputs_shape)
    if shape.dims is None or shape.dims[-1] is None:
        raise ValueError(f"Expected inputs.shape[-1] to be known, saw shape: {shape} (the "
                         f"inputs of {type(cell).__name__})")
    return int(shape.dims[-1])


class BasicLSTMCell(RNNCell):
    """The LSTM of Zaremba et al. (2014), TF's ``BasicLSTMCell``: one ``kernel``
    [depth + num_units, 4 num_units] for the i, j, f, o blocks, a ``bias``, and
    ``forget_bias`` added to the forget gate (1.0 by default; the PTB tutorial uses 0)."""

    def __init__(self, num_units, forget_bias=1.0, state_is_tuple=True, activation=None,
                 reuse=None, name=None, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, reuse=reuse, **kwargs)
        self._num_units = int(num_units)
        self._forget_bias = float(forget_bias)
        self._state_is_tuple = state_is_tuple
        self._activation = _activation(activation)

    @property
    def state_size(self):
        n = self._num_units
        return LSTMStateTuple(n, n) if self._state_is_tuple else 2 * n

    @property
    def output_size(self):
        return self._num_units

    def build(self, inputs_shape):
        depth = input_depth_of(inputs_shape, self)
        n = self._num_units
        self._kernel = self.add_variable("kernel", [depth + n, 4 * n])
        self._bias = self.add_variable("bias", [4 * n], init.zeros())

    def call(self, inputs, state):
        sigmoid = ops["sigmoid"]
        if self._state_is_tuple:
            c, h = state
        else:
            c, h = ops["split"](state, 2, axis=1)
        i, j, f, o = ops["split"](_linear([inputs, h], self._kernel, self._bias), 4, axis=1)
        new_c = c * sigmoid(f + self._forget_bias) + sigmoid(i) * self._activation(j)
        new_h = self._activation(new_c) * sigmoid(o)
        new_state = LSTMStateTuple(new_c, new_h) if self._state_is_tuple else \
            ops["concat"]([new_c, new_h], 1)
        return new_h, new_state


class LSTMCell(RNNCell):
    """TF's ``LSTMCell``: BasicLSTMCell's gates, plus optional peephole connections
    (``w_f_diag``, ``w_i_diag``, ``w_o_diag``), a ``cell_clip`` on the memory, and a
    projection of the output to ``num_proj`` (``projection/kernel``, clipped to
    ``proj_clip``). ``initializer`` initializes the kernels and peepholes."""

    def __init__(self, num_units, use_peepholes=False, cell_clip=None, initializer=None,
                 num_proj=None, proj_clip=None, num_unit_shards=None, num_proj_shards=None,
                 forget_bias=1.0, state_is_tuple=True, activation=None, reuse=None, name=None,
                 dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, reuse=reuse, **kwargs)
        if num_unit_shards is not None or num_proj_shards is not None:
            raise ValueError("num_unit_shards and num_proj_shards (partitioned kernels) are "
                             "deprecated in TensorFlow and not supported by tracejit")
        self._num_units = int(num_units)
        self._use_peepholes = use_peepholes
        self._cell_clip = cell_clip
        self._initializer = initializer
        self._num_proj = None if num_proj is None else int(num_proj)
        self._proj_clip = proj_clip
        self._forget_bias = float(forget_bias)
        self._state_is_tuple = state_is_tuple
        self._activation = _activation(activation)

    @property
    def state_size(self):
        n, m = self._num_units, self._num_proj or self._num_units
        return LSTMStateTuple(n, m) if self._state_is_tuple else n + m

    @property
    def output_size(self):
        return self._num_proj or self._num_units

    def build(self, inputs_shape):
        depth = input_depth_of(inputs_shape, self)
        n, h_depth = self._num_units, self._num_proj or self._num_units
        self._kernel = self.add_variable("kernel", [depth + h_depth, 4 * n], self._initializer)
        self._bias = self.add_variable("bias", [4 * n], init.zeros())
        if self._use_peepholes:
            self._w_f_diag = self.add_variable("w_f_diag", [n], self._initializer)
            self._w_i_diag = self.add_variable("w_i_diag", [n], self._initializer)
            self._w_o_diag = self.add_variable("w_o_diag", [n], self._initializer)
        if self._num_proj is not None:
            self._proj_kernel = self.add_variable("projection/kernel", [n, self._num_proj],
                                                  self._initializer)

    def call(self, inputs, state):
        sigmoid, act = ops["sigmoid"], self._activation
        n, m_depth = self._num_units, self._num_proj or self._num_units
        input_depth_of(inputs.shape, self)
        if self._state_is_tuple:
            c_prev, m_prev = state
        else:
            c_prev, m_prev = ops["split"](state, [n, m_depth], axis=1)
        i, j, f, o = ops["split"](_linear([inputs, m_prev], self._kernel, self._bias), 4,
                                  axis=1)
        if self._use_peepholes:
            c = sigmoid(f + self._forget_bias + self._w_f_diag * c_prev) * c_prev + \
                sigmoid(i + self._w_i_diag * c_prev) * act(j)
        else:
            c = sigmoid(f + self._forget_bias) * c_prev + sigmoid(i) * act(j)
        if self._cell_clip is not None:
            c = ops["clip_by_value"](c, -self._cell_clip, self._cell_clip)
        if self._use_peepholes:
            m = sigmoid(o + self._w_o_diag * c) * act(c)
        else:
            m = sigmoid(o) * act(c)
        if self._num_proj is not None:
            m = ops["matmul"](m, self._proj_kernel)
            if self._proj_clip is not None:
                m = ops["clip_by_value"](m, -self._proj_clip, self._proj_clip)
        new_state = LSTMStateTuple(c, m) if self._state_is_tuple else ops["concat"]([c, m], 1)
        return m, new_state


class GRUCell(_OutputIsState):
    """The GRU of Cho et al. (2014), TF's ``GRUCell``: ``gates/kernel`` computes the
    reset gate r and update gate u (bias initialized to 1), ``candidate/kernel`` the
    candidate from ``[inputs, r * state]``; ``new_h = u * state + (1 - u) * candidate``."""

    def __init__(self, num_units, activation=None, reuse=None, kernel_initializer=None,
                 bias_initializer=None, name=None, dtype=None, **kwargs):
        super().__init__(num_units, activation, reuse, name, dtype, **kwargs)
        self._kernel_initializer = kernel_initializer
        self._bias_initializer = bias_initializer

    def build(self, inputs_shape):
        depth = input_depth_of(inputs_shape, self)
        n = self._num_units
        self._gate_kernel = self.add_variable("gates/kernel", [depth + n, 2 * n],
                                              self._kernel_initializer)
        self._gate_bias = self.add_variable("gates/bias", [2 * n],
                                            self._bias_initializer or init.Constant(1.0))
        self._candidate_kernel = self.add_variable("candidate/kernel", [depth + n, n],
                                                   self._kernel_initializer)
        self._candidate_bias = self.add_variable("candidate/bias", [n],
                                                 self._bias_initializer or init.zeros())

    def call(self, inputs, state):
        gates = ops["sigmoid"](_linear([inputs, state], self._gate_kernel, self._gate_bias))
        r, u = ops["split"](gates, 2, axis=1)
        candidate = self._activation(_linear([inputs, r * state], self._candidate_kernel,
                                             self._candidate_bias))
        new_h = u * state + (1 - u) * candidate
        return new_h, new_h
