"""``tf.nn.dynamic_rnn``, ``tf.nn.static_rnn``, their bidirectional forms, and the
sequence ops they use (``tf.reverse_sequence``, ``tf.sequence_mask``).

``dynamic_rnn`` computes what TensorFlow 1's does (a ``tf.while_loop`` over time reading
each step's input from a TensorArray and writing each output into another) as one op
replayed as the IR's ``scan``: the inputs' steps are its xs and the outputs its ys, so
each step's slice is read and written in place, the sequence compiles to one native
loop, and the gradient stores one step's residuals per iteration. With
``sequence_length``, an example's outputs past its length are zeros and its state is
carried through unchanged, exactly as TF computes them. ``static_rnn`` unrolls the
steps in Python (the PTB tutorial's form).

>>> import numpy as np, tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     x = tf.placeholder(tf.float32, [None, 5, 3])
...     cell = tf.nn.rnn_cell.GRUCell(4)
...     outputs, state = tf.nn.dynamic_rnn(cell, x, sequence_length=[5, 2], dtype=tf.float32)
...     with tf.Session() as sess:
...         sess.run(tf.global_variables_initializer())
...         out = sess.run(outputs, {x: np.ones((2, 5, 3), np.float32)})
...     [v.name for v in tf.trainable_variables()][0], out.shape, float(abs(out[1, 2:]).sum())
('rnn/gru_cell/gates/kernel:0', (2, 5, 4), 0.0)
"""

from __future__ import annotations

import types

import numpy as np

from ...ir import dtypes as dt
from ...ir.errors import ShapeError
from ...ir.source import user_location
from ...trace import array_ops, math_ops, pytree
from ...trace import control_flow as core
from ...trace.tracing import to_tensor
from . import rnn_cell_wrappers
from .control_flow import create_control_op, outer_values
from .graph import Tensor, get_default_graph, known_value
from .ops import convert_to_tensor, graph_arg, graph_op, ops
from .regions import record
from .rnn_cell import state_leaves, zeros_of
from .shapes import TensorShape
from .variable_scope import variable_scope

__all__ = ["dynamic_rnn", "static_rnn", "bidirectional_dynamic_rnn",
           "static_bidirectional_rnn", "reverse_sequence", "sequence_mask"]


# ---- sequence ops ------------------------------------------------------------------------------

def _reverse_sequence(x, seq_lengths, seq_axis, batch_axis):
    order = [batch_axis, seq_axis] + [a for a in range(x.ndim) if a not in (batch_axis,
                                                                           seq_axis)]
    moved = array_ops.transpose(x, order)
    batch, steps = moved.shape[0], moved.shape[1]
    t = array_ops.reshape(array_ops.range(steps, dtype=dt.int32), (1, steps))
    lengths = array_ops.reshape(math_ops.cast(seq_lengths, dt.int32), (batch, 1))
    # NOTE: within its length an example's step t comes from step length - 1 - t; past
    # it, from t itself (TF leaves that part as it is)
    source = math_ops.where(t < lengths, lengths - 1 - t, t)
    rows = source + array_ops.reshape(array_ops.range(batch, dtype=dt.int32) * steps,
                                      (batch, 1))
    flat = array_ops.reshape(moved, (batch * steps,) + tuple(moved.shape[2:]))
    picked = array_ops.reshape(array_ops.gather(flat, array_ops.reshape(rows, (-1,))),
                               moved.shape)
    return array_ops.transpose(picked, [order.index(a) for a in range(x.ndim)])


def reverse_sequence(input, seq_lengths, seq_axis=None, batch_axis=None, name=None,
                     seq_dim=None, batch_dim=None):
    """Reverse the first ``seq_lengths[b]`` steps (along ``seq_axis``) of each example
    ``b`` (along ``batch_axis``); the steps after them stay where they are."""
    seq_axis = seq_dim if seq_axis is None else seq_axis
    batch_axis = (batch_dim if batch_dim is not None else 0) if batch_axis is None \
        else batch_axis
    if seq_axis is None:
        raise ValueError("reverse_sequence needs seq_axis")
    x = convert_to_tensor(graph_arg(input))
    rank = x.shape.ndims
    if rank is not None:
        seq_axis, batch_axis = seq_axis % rank, batch_axis % rank
        if seq_axis == batch_axis:
            raise ValueError(f"seq_axis ({seq_axis}) and batch_axis ({batch_axis}) must "
                             "differ")
    return graph_op(_reverse_sequence, "ReverseSequence")(x, seq_lengths, seq_axis,
                                                          batch_axis, name=name)


def _sequence_mask(lengths, maxlen, dtype):
    lengths = math_ops.cast(lengths, dt.int32)
    if maxlen is None:
        width = known_value(math_ops.reduce_max(lengths)) if lengths.size else 0
    else:
        width = known_value(to_tensor(maxlen))
    if width is None:
        raise ShapeError("sequence_mask's width (maxlen, else the largest length) must be "
                         "known when the step is traced: give maxlen", op="sequence_mask",
                         location=user_location())
    steps = array_ops.range(int(np.asarray(width)), dtype=dt.int32)
    mask = steps < array_ops.expand_dims(lengths, -1)
    return mask if dt.as_dtype(dtype) is dt.bool_ else math_ops.cast(mask, dtype)


def sequence_mask(lengths, maxlen=None, dtype=dt.bool_, name=None):
    """``mask[..., t] = t < lengths[...]``, ``maxlen`` (default: the largest length) wide."""
    return graph_op(_sequence_mask, "SequenceMask")(lengths, maxlen, dt.as_dtype(dtype),
                                                    name=name)


# ---- the pieces both RNNs share ----------------------------------------------------------------

def _copy_through(time, sequence_length, old, new):
    """``new``, except for the examples whose sequence ended before ``time``: ``old``."""
    done = math_ops.greater_equal(time, sequence_length)
    return math_ops.where(array_ops.reshape(done, (-1,) + (1,) * (new.ndim - 1)), old, new)


_copy_op = graph_op(_copy_through, "Select")


def _check_cell(cell) -> None:
    for attribute in ("output_size", "state_size", "zero_state"):
        if not hasattr(cell, attribute):
            raise TypeError(f"The argument 'cell' ({cell!r}) is not an RNNCell: "
                            f"'{attribute}' property is missing.")
    if not callable(cell):
        raise TypeError(f"The argument 'cell' ({cell!r}) is not an RNNCell: it is not "
                        "callable.")


def _lengths(sequence_length):
    if sequence_length is None:
        return None
    lengths = ops["cast"](convert_to_tensor(graph_arg(sequence_length)), dt.int32)
    if lengths.shape.ndims not in (None, 1):
        raise ValueError(f"sequence_length must be a vector of length batch_size, but saw "
                         f"shape: {lengths.shape}")
    return ops["identity"](lengths, name="sequence_length")


def _initial_state(cell, initial_state, batch_size, dtype):
    if initial_state is not None:
        return initial_state
    if not dtype:
        raise ValueError("If there is no initial_state, you must give a dtype.")
    return cell.zero_state(batch_size, dtype)


def _state_dtype(dtype, state):
    if dtype is not None:
        return dt.as_dtype(dtype)
    return graph_arg(state_leaves(state)[0]).dtype


def _step(cell, inputs, state, time, lengths, zero_output):
    """One step of the cell, with TF's copy-through past each sequence's length."""
    output, new_state = cell(inputs, state)
    if lengths is None:
        return output, new_state
    out_def = pytree.flatten(output, [])
    outputs = [_copy_op(time, lengths, zero, new) for zero, new in
               zip(state_leaves(zero_output), state_leaves(output), strict=True)]
    state_def = pytree.flatten(new_state, [])
    states = [_copy_op(time, lengths, graph_arg(old), new) for old, new in
              zip(state_leaves(state), state_leaves(new_state), strict=True)]
    for old, new in zip(state_leaves(state), states, strict=True):
        new.set_shape(graph_arg(old).shape)
    return pytree.unflatten(out_def, iter(outputs)), pytree.unflatten(state_def, iter(states))


def _batch_size(first: Tensor, axis: int):
    """The static batch size where known, else ``tf.shape(x)[axis]``."""
    dims = first.shape.dims
    if dims is not None and dims[axis] is not None:
        return dims[axis]
    return ops["shape"](first)[axis]


# ---- dynamic_rnn -------------------------------------------------------------------------------

def dynamic_rnn(cell, inputs, sequence_length=None, initial_state=None, dtype=None,
                parallel_iterations=None, swap_memory=False, time_major=False, scope=None):
    """Run ``cell`` over ``inputs`` [batch, time, depth] (``time_major``: [time, batch,
    depth]; a nested structure of such tensors is allowed). Returns ``(outputs,
    final_state)``: outputs [batch, time, output_size] in the cell's output structure.
    Variables live under ``scope`` (default ``rnn``): ``rnn/basic_lstm_cell/kernel``."""
    _check_cell(cell)
    with variable_scope(scope or "rnn"):
        leaves: list = []
        in_def = pytree.flatten(inputs, leaves)
        flat = [convert_to_tensor(graph_arg(x)) for x in leaves]
        for x in flat:
            if x.shape.ndims is not None and x.shape.ndims < 3:
                raise ValueError(f"Shape {x.shape} must have rank at least 3: dynamic_rnn's "
                                 "inputs are [batch, time, depth] (time_major: [time, batch, "
                                 "depth])")
        if not time_major:
            flat = [ops["transpose"](x, [1, 0] + list(range(2, x.shape.ndims))) for x in flat]
        lengths = _lengths(sequence_length)
        batch_size = _batch_size(flat[0], 1)
        state = _initial_state(cell, initial_state, batch_size, dtype)
        outputs, final_state = _dynamic_loop(cell, in_def, flat, state, lengths,
                                             _state_dtype(dtype, state), batch_size)
        if not time_major:
            outputs = [ops["transpose"](y, [1, 0] + list(range(2, y.shape.ndims)))
                       for y in outputs]
        return pytree.unflatten(pytree.flatten(cell.output_size, []), iter(outputs)), \
            final_state


def _dynamic_loop(cell, in_def, flat, state, lengths, dtype, batch_size):
    """The cell over time as one op: the IR's ``scan`` with the inputs' steps as its xs
    and the outputs as its ys (what TF's input and output TensorArrays amount to: each
    step's slice is read and written in place, and the gradient flows back the same
    way), carrying the time and the state. It runs every step; past the longest
    sequence the copy-through makes a step change nothing, so the results are those of
    TF's loop, which stops there."""
    for x in flat:
        if x.shape.dims is None or any(d is None for d in x.shape.dims[2:]):
            raise ValueError("Input size (depth of inputs) must be accessible via shape "
                             f"inference, but saw value None (inputs of shape {x.shape})")
    graph = get_default_graph()
    state_def = pytree.flatten(state, [])
    states = [convert_to_tensor(graph_arg(v)) for v in state_leaves(state)]
    with graph.name_scope("dynamic_rnn"):
        zero_output = None if lengths is None else \
            zeros_of(cell.output_size, batch_size, dtype)
    n = len(states)

    def call(args):
        time, carried, step_inputs = args[0], args[1:1 + n], args[1 + n:]
        for x, whole in zip(step_inputs, flat, strict=True):
            x.set_shape(whole.shape[1:])
        output, new_state = _step(cell, pytree.unflatten(in_def, iter(step_inputs)),
                                  pytree.unflatten(state_def, iter(carried)), time, lengths,
                                  zero_output)
        return [time + 1, *state_leaves(new_state), *state_leaves(output)]

    specs = [(TensorShape([]), dt.int32, "time")] + \
        [(v.shape, v.dtype, "state") for v in states] + \
        [(x.shape[1:], x.dtype, "input") for x in flat]
    with graph.name_scope("while") as scope:
        region = record(graph, "the cell's step in tf.nn.dynamic_rnn", call, specs)
    _check_state(region.leaves[1:1 + n], states)
    externals = region.externals

    def replay(values):
        outer = outer_values(externals, values[n + len(flat):])

        def step(carry, xs):
            found = region.run(outer, [*carry, *xs])
            return found[:1 + n], found[1 + n:]
        carry, ys = core.scan(step, [np.int32(0), *values[:n]], list(values[n:n + len(flat)]))
        return [*carry[1:], *ys]

    created = create_control_op(graph, "While", scope, states + flat + externals, [region],
                                replay, [t.dtype for t in region.leaves[1:]])
    final = pytree.unflatten(state_def, iter(created.outputs[:n]))
    outputs = created.outputs[n:]
    static_steps, static_batch = flat[0].shape.dims[0], \
        batch_size if isinstance(batch_size, int) else None
    for y, size in zip(outputs, state_leaves(cell.output_size), strict=True):
        y.set_shape([static_steps, static_batch, *TensorShape(size).dims])
    return outputs, final


def _check_state(new: list, old: list) -> None:
    """The cell's new state must be its state's kind: tracejit's loop carries it."""
    if len(new) != len(old):
        raise ValueError(f"the cell returned a state of {len(new)} tensors for a state of "
                         f"{len(old)}")
    for k, (after, before) in enumerate(zip(new, old, strict=True)):
        if after.dtype is not before.dtype or not after.shape.is_compatible_with(
                before.shape):
            raise ValueError(f"the cell's new state {k} is {after.dtype.name} {after.shape}, "
                             f"its state {before.dtype.name} {before.shape}: the state must "
                             "keep its shape and type from step to step")


# ---- static_rnn --------------------------------------------------------------------------------

def static_rnn(cell, inputs, initial_state=None, dtype=None, sequence_length=None,
               scope=None):
    """The cell applied to each tensor of the list ``inputs`` (each [batch, depth]) in
    turn, unrolled while the graph is built. Returns ``(outputs list, final_state)``."""
    _check_cell(cell)
    if not isinstance(inputs, (list, tuple)):
        raise TypeError("inputs must be a sequence")
    if not inputs:
        raise ValueError("inputs must not be empty")
    with variable_scope(scope or "rnn"):
        first = convert_to_tensor(graph_arg(state_leaves(inputs[0])[0]))
        for x in state_leaves(list(inputs)):
            dims = convert_to_tensor(graph_arg(x)).shape.dims
            if dims is not None and len(dims) >= 2 and any(d is None for d in dims[1:]):
                raise ValueError("Input size (dimension 1 of inputs) must be accessible via "
                                 f"shape inference, but saw value None (shape {dims})")
        batch_size = _batch_size(first, 0)
        state = _initial_state(cell, initial_state, batch_size, dtype)
        lengths = _lengths(sequence_length)
        zero_output = None
        if lengths is not None:
            zero_output = zeros_of(cell.output_size, batch_size, _state_dtype(dtype, state))
        outputs = []
        for time, x in enumerate(inputs):
            output, state = _step(cell, x, state, time, lengths, zero_output)
            outputs.append(output)
        return outputs, state


# ---- both directions ---------------------------------------------------------------------------

def bidirectional_dynamic_rnn(cell_fw, cell_bw, inputs, sequence_length=None,
                              initial_state_fw=None, initial_state_bw=None, dtype=None,
                              parallel_iterations=None, swap_memory=False, time_major=False,
                              scope=None):
    """``dynamic_rnn`` forwards (scope ``bidirectional_rnn/fw``) and over each
    sequence reversed within its length (``bidirectional_rnn/bw``, its outputs reversed
    back). Returns ``((output_fw, output_bw), (state_fw, state_bw))``."""
    _check_cell(cell_fw)
    _check_cell(cell_bw)
    time_axis, batch_axis = (0, 1) if time_major else (1, 0)

    def reverse(x):
        if sequence_length is None:
            return ops["reverse"](x, [time_axis])
        return reverse_sequence(x, sequence_length, seq_axis=time_axis, batch_axis=batch_axis)

    with variable_scope(scope or "bidirectional_rnn"):
        with variable_scope("fw") as fw_scope:
            output_fw, state_fw = dynamic_rnn(cell_fw, inputs, sequence_length,
                                              initial_state_fw, dtype, time_major=time_major,
                                              scope=fw_scope)
        with variable_scope("bw") as bw_scope:
            reversed_inputs = pytree.tree_map(reverse, inputs)
            backward, state_bw = dynamic_rnn(cell_bw, reversed_inputs, sequence_length,
                                             initial_state_bw, dtype, time_major=time_major,
                                             scope=bw_scope)
    output_bw = pytree.tree_map(reverse, backward)
    return (output_fw, output_bw), (state_fw, state_bw)


def _reverse_steps(steps: list, sequence_length) -> list:
    """A list of [batch, ...] steps reversed within each example's length."""
    if sequence_length is None:
        return list(reversed(steps))
    leaves_per_step = [state_leaves(s) for s in steps]
    step_def = pytree.flatten(steps[0], [])
    columns = []
    for k in range(len(leaves_per_step[0])):
        stacked = ops["stack"]([leaves[k] for leaves in leaves_per_step])
        columns.append(ops["unstack"](reverse_sequence(stacked, sequence_length, seq_axis=0,
                                                       batch_axis=1)))
    return [pytree.unflatten(step_def, iter(column[t] for column in columns))
            for t in range(len(steps))]


def static_bidirectional_rnn(cell_fw, cell_bw, inputs, initial_state_fw=None,
                             initial_state_bw=None, dtype=None, sequence_length=None,
                             scope=None):
    """``static_rnn`` both ways; each step's outputs concatenated (forward first).
    Returns ``(outputs, state_fw, state_bw)``."""
    _check_cell(cell_fw)
    _check_cell(cell_bw)
    if not isinstance(inputs, (list, tuple)):
        raise TypeError("inputs must be a list")
    if not inputs:
        raise ValueError("inputs must not be empty")
    with variable_scope(scope or "bidirectional_rnn"):
        with variable_scope("fw") as fw_scope:
            output_fw, state_fw = static_rnn(cell_fw, inputs, initial_state_fw, dtype,
                                             sequence_length, scope=fw_scope)
        with variable_scope("bw") as bw_scope:
            backward, state_bw = static_rnn(cell_bw, _reverse_steps(list(inputs),
                                                                    sequence_length),
                                            initial_state_bw, dtype, sequence_length,
                                            scope=bw_scope)
    output_bw = _reverse_steps(backward, sequence_length)
    outputs = []
    for fw, bw in zip(output_fw, output_bw, strict=True):
        joined = [ops["concat"]([a, b], 1) for a, b in
                  zip(state_leaves(fw), state_leaves(bw), strict=True)]
        outputs.append(pytree.unflatten(pytree.flatten(fw, []), iter(joined)))
    return outputs, state_fw, state_bw


# ``tf.contrib.rnn``: the TF 1.x names tutorials import from there
contrib_rnn = types.SimpleNamespace(
    static_rnn=static_rnn, static_bidirectional_rnn=static_bidirectional_rnn,
    **{name: getattr(rnn_cell_wrappers, name) for name in rnn_cell_wrappers.CELL_NAMES})
