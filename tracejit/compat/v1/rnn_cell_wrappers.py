"""Cells made of cells: ``MultiRNNCell`` (a stack), ``DropoutWrapper``,
``ResidualWrapper``, ``DeviceWrapper``; TensorFlow 1's semantics and variable names
(a stack's layers live in ``multi_rnn_cell/cell_0``, ``cell_1``, ...; wrappers add no
scope of their own, so a wrapped cell's variables keep the names they would have).

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     rnn = tf.nn.rnn_cell
...     cell = rnn.MultiRNNCell([rnn.DropoutWrapper(rnn.BasicLSTMCell(3), output_keep_prob=0.5),
...                              rnn.GRUCell(2)])
...     out, state = cell(tf.zeros([1, 4]), cell.zero_state(1, tf.float32))
...     [v.name for v in tf.trainable_variables()][:2]
['multi_rnn_cell/cell_0/basic_lstm_cell/kernel:0', 'multi_rnn_cell/cell_0/basic_lstm_cell/bias:0']
"""

from __future__ import annotations

import types
import zlib

from ...trace import pytree
from .graph import get_default_graph
from .ops import convert_to_tensor, dropout, ops, random_uniform
from .rnn_cell import (
    BasicLSTMCell,
    BasicRNNCell,
    GRUCell,
    LSTMCell,
    LSTMStateTuple,
    RNNCell,
    state_leaves,
)
from .shapes import TensorShape
from .tensor_array import static_value
from .variable_scope import variable_scope

__all__ = ["MultiRNNCell", "DropoutWrapper", "ResidualWrapper", "DeviceWrapper"]


class MultiRNNCell(RNNCell):
    """``cells`` applied in turn, each one's output the next one's input; the state is
    the tuple of their states (or, with ``state_is_tuple=False``, their concatenation)."""

    def __init__(self, cells, state_is_tuple=True):
        super().__init__()
        if not cells:
            raise ValueError("Must specify at least one cell for MultiRNNCell.")
        if not isinstance(cells, (list, tuple)):
            raise TypeError(f"cells must be a list or tuple, but saw: {cells}.")
        self._cells = list(cells)
        self._state_is_tuple = state_is_tuple
        if not state_is_tuple and any(isinstance(c.state_size, tuple) for c in self._cells):
            raise ValueError("Some cells return tuples of states, but the flag state_is_tuple "
                             "is not set.  State sizes are: "
                             f"{[c.state_size for c in self._cells]}")

    @property
    def state_size(self):
        sizes = tuple(cell.state_size for cell in self._cells)
        return sizes if self._state_is_tuple else sum(sizes)

    @property
    def output_size(self):
        return self._cells[-1].output_size

    def zero_state(self, batch_size, dtype):
        if not self._state_is_tuple:
            return super().zero_state(batch_size, dtype)
        with get_default_graph().name_scope("MultiRNNCellZeroState"):
            return tuple(cell.zero_state(batch_size, dtype) for cell in self._cells)

    def call(self, inputs, state):
        if self._state_is_tuple and not isinstance(state, (tuple, list)):
            raise ValueError(f"Expected state to be a tuple of length {len(self._cells)}, but "
                             f"received: {state}")
        if not self._state_is_tuple:
            state = ops["split"](state, [c.state_size for c in self._cells], axis=1)
        current, new_states = inputs, []
        for k, cell in enumerate(self._cells):
            with variable_scope(f"cell_{k}"):
                current, new = cell(current, state[k])
            new_states.append(new)
        return current, (tuple(new_states) if self._state_is_tuple
                         else ops["concat"](new_states, 1))


class _Wrapper(RNNCell):
    """A cell around ``cell``: the same sizes and zero state, no scope of its own."""

    def __init__(self, cell):
        super().__init__()
        if not isinstance(cell, RNNCell) and not callable(cell):
            raise TypeError(f"The parameter cell is not a RNNCell: {cell!r}")
        self.cell = cell

    @property
    def wrapped_cell(self):
        return self.cell

    @property
    def state_size(self):
        return self.cell.state_size

    @property
    def output_size(self):
        return self.cell.output_size

    def zero_state(self, batch_size, dtype):
        with get_default_graph().name_scope(f"{type(self).__name__}ZeroState"):
            return self.cell.zero_state(batch_size, dtype)

    def __call__(self, inputs, state, scope=None):
        return self.call(inputs, state, scope)


def _keep_prob(value, name: str):
    """A keep probability: a float where known while the graph is built, else a tensor."""
    tensor = convert_to_tensor(value)
    known = static_value(tensor)
    if known is None:
        return tensor
    known = float(known)
    if known < 0 or known > 1:
        raise ValueError(f"Parameter {name} must be between 0 and 1: {known}")
    return known


def _drops(visitor, value) -> list[bool]:
    """Per leaf of ``value``: whether the state dropout applies (TF's
    ``dropout_state_filter_visitor``, traversed as nest's shallow structures are)."""
    return _decided(visitor, visitor(value), value)


def _decided(visitor, decision, value) -> list[bool]:
    if not isinstance(decision, bool):      # a structure of decisions for the parts
        return [d for child, part in zip(value, decision, strict=True)
                for d in _decided(visitor, part, child)]
    if decision and isinstance(value, (tuple, list)) and \
            not isinstance(value, LSTMStateTuple):
        return [d for child in value for d in _drops(visitor, child)]
    return [decision] * len(state_leaves(value))


def default_dropout_state_filter_visitor(substate):
    """TF's default: an LSTM's memory ``c`` is not dropped, everything else is."""
    if isinstance(substate, LSTMStateTuple):
        return LSTMStateTuple(c=False, h=True)
    return True


class DropoutWrapper(_Wrapper):
    """Dropout on the cell's inputs, outputs and (``state_keep_prob``) new state.

    ``variational_recurrent=True`` (Gal & Ghahramani, 2016) draws one mask per run for
    each of inputs, state and outputs, shared by every time step and every example, as
    TensorFlow does (``dtype`` and, for input dropout, ``input_size`` are then needed).
    Otherwise each call draws new masks. Keep probabilities may be tensors."""

    def __init__(self, cell, input_keep_prob=1.0, output_keep_prob=1.0, state_keep_prob=1.0,
                 variational_recurrent=False, input_size=None, dtype=None, seed=None,
                 dropout_state_filter_visitor=None, **unused):
        super().__init__(cell)
        with get_default_graph().name_scope("DropoutWrapperInit"):
            self._input_keep_prob = _keep_prob(input_keep_prob, "input_keep_prob")
            self._state_keep_prob = _keep_prob(state_keep_prob, "state_keep_prob")
            self._output_keep_prob = _keep_prob(output_keep_prob, "output_keep_prob")
        self._seed = seed
        self._state_filter = dropout_state_filter_visitor or \
            default_dropout_state_filter_visitor
        self._variational = variational_recurrent
        self._noise = {"input": None, "state": None, "output": None}
        if variational_recurrent:
            if dtype is None:
                raise ValueError("When variational_recurrent=True, dtype must be provided")
            if _applies(self._input_keep_prob):
                if input_size is None:
                    raise ValueError("When variational_recurrent=True and input_keep_prob < "
                                     "1.0 or is unknown, input_size must be provided")
                self._noise["input"] = self._batch_noise(input_size, "input", dtype)
            self._noise["state"] = self._batch_noise(cell.state_size, "state", dtype)
            self._noise["output"] = self._batch_noise(cell.output_size, "output", dtype)

    def _seed_for(self, salt: str, index: int):
        if self._seed is None:
            return None
        return (int(self._seed) + zlib.crc32(f"{salt}_{index}".encode())) & 0x7FFFFFFF

    def _batch_noise(self, sizes, salt: str, dtype) -> list:
        """One uniform [1, size] draw per leaf of ``sizes``: shared by all examples."""
        return [random_uniform([1, *TensorShape(size).dims], seed=self._seed_for(salt, k),
                               dtype=dtype)
                for k, size in enumerate(state_leaves(sizes))]

    def _dropout(self, values, salt: str, keep_prob, drops=None):
        leaves: list = []
        treedef = pytree.flatten(values, leaves)
        drops = drops or [True] * len(leaves)
        noise = self._noise[salt]
        out = []
        for k, (value, drop) in enumerate(zip(leaves, drops, strict=True)):
            if not drop:
                out.append(value)
            elif noise is not None:
                out.append(value / keep_prob * ops["floor"](keep_prob + noise[k]))
            else:
                out.append(dropout(value, keep_prob=keep_prob, seed=self._seed_for(salt, k)))
        return pytree.unflatten(treedef, iter(out))

    def call(self, inputs, state, scope=None):
        if _applies(self._input_keep_prob):
            inputs = self._dropout(inputs, "input", self._input_keep_prob)
        output, new_state = self.cell(inputs, state, scope=scope)
        if _applies(self._state_keep_prob):
            new_state = self._dropout(new_state, "state", self._state_keep_prob,
                                      _drops(self._state_filter, new_state))
        if _applies(self._output_keep_prob):
            output = self._dropout(output, "output", self._output_keep_prob)
        return output, new_state


def _applies(keep_prob) -> bool:
    return not isinstance(keep_prob, float) or keep_prob < 1.0


class ResidualWrapper(_Wrapper):
    """``output = inputs + cell's output`` (or ``residual_fn(inputs, output)``)."""

    def __init__(self, cell, residual_fn=None):
        super().__init__(cell)
        self._residual_fn = residual_fn

    def call(self, inputs, state, scope=None):
        output, new_state = self.cell(inputs, state, scope=scope)
        if self._residual_fn is not None:
            return self._residual_fn(inputs, output), new_state
        ins, outs = state_leaves(inputs), state_leaves(output)
        if len(ins) != len(outs):
            raise ValueError("ResidualWrapper: the inputs and the cell's output must have "
                             "the same structure")
        added = []
        for x, y in zip(ins, outs, strict=True):
            x = convert_to_tensor(x)
            if not x.shape.is_compatible_with(y.shape):
                raise ValueError(f"ResidualWrapper: the inputs' shape {x.shape} does not "
                                 f"match the cell's output shape {y.shape}")
            added.append(x + y)
        return pytree.unflatten(pytree.flatten(output, []), iter(added)), new_state


class DeviceWrapper(_Wrapper):
    """Runs the cell on ``device``."""

    def __init__(self, cell, device):
        super().__init__(cell)
        self._device = device

    def call(self, inputs, state, scope=None):
        with get_default_graph().device(self._device):
            return self.cell(inputs, state, scope=scope)


# ``tf.nn.rnn_cell``
CELL_NAMES = ("RNNCell", "BasicRNNCell", "BasicLSTMCell", "LSTMCell", "GRUCell",
              "LSTMStateTuple", "MultiRNNCell", "DropoutWrapper", "ResidualWrapper",
              "DeviceWrapper")
rnn_cell_namespace = types.SimpleNamespace(
    RNNCell=RNNCell, BasicRNNCell=BasicRNNCell, BasicLSTMCell=BasicLSTMCell, LSTMCell=LSTMCell,
    GRUCell=GRUCell, LSTMStateTuple=LSTMStateTuple, MultiRNNCell=MultiRNNCell,
    DropoutWrapper=DropoutWrapper, ResidualWrapper=ResidualWrapper,
    DeviceWrapper=DeviceWrapper)
