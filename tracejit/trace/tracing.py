"""Recording ops: the Trace (a GraphBuilder plus bookkeeping), and ``bind``, the one place
where every front-end function either records an equation or runs an op eagerly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..ir import dtypes as dt
from ..ir import ops
from ..ir.builder import GraphBuilder
from ..ir.const_value import ConstValue
from ..ir.core import TensorType, Var, VarMeta
from ..ir.errors import DTypeError, ParamError, TracejitError
from ..ir.opdef import OpDef, Tag, get_op
from ..ir.regions import has_effect
from ..ir.source import user_location
from ..runtime.registry import get_device, local_device
from .autocast import autocast_dtype
from .device_scope import committed_device, current_device
from .values import Array, DeviceArray, Tensor, Tracer


class Trace:
    """An open recording: a builder, and the Vars captured for concrete constants."""

    parent: Trace | None = None     # the enclosing trace, for a region (regions.py)

    def __init__(self, name: str = "main"):
        self.builder = GraphBuilder(name)
        self._constants: dict[int, tuple[Any, Var]] = {}   # id(Array) -> (Array, Var)
        self.closed = False
        # Variables read in this trace become extra graph inputs (in order of first read);
        # assignments become extra outputs, written back after the program runs.
        self.variable_inputs: dict[int, tuple[Any, Var]] = {}
        self.variable_values: dict[int, Var] = {}
        self.variable_updates: dict[int, tuple[Any, Var]] = {}

    def read_variable(self, variable) -> Tracer:
        key = id(variable)
        current = self.variable_values.get(key)
        if current is None:
            current = self.builder.add_input(variable.type, VarMeta(name=variable.name,
                                                                    device=variable.device))
            self.variable_inputs[key] = (variable, current)
            self.variable_values[key] = current
        return Tracer(current, self)

    def assign_variable(self, variable, value: Tensor) -> Tracer:
        var = self.var_of(value)
        key = id(variable)
        if key not in self.variable_inputs:
            # NOTE: written before read: still an input, so the graph's signature (and any
            # in-place update a backend does) sees the variable's buffer.
            self.read_variable(variable)
        if variable.device is not None and var.meta.device != variable.device and \
                not any(var is v for v in self.builder.inputs):     # made by an equation
            # the update is computed where the variable lives, whatever the scope around
            # it says, as TensorFlow colocates assignments and an optimizer's update ops
            # with their variable: so a parameter server reads and writes it in one step
            var.meta = dataclasses.replace(var.meta, device=variable.device)
        self.variable_values[key] = var
        self.variable_updates[key] = (variable, var)
        return Tracer(var, self)

    def new_input(self, type: TensorType, *, weak: bool = False, name: str | None = None):
        var = self.builder.add_input(type, VarMeta(source=None, name=name))
        return Tracer(var, self, weak)

    def constant_var(self, array: Array) -> Var:
        """The Var holding a concrete value inside this trace (one per Array object)."""
        known = self._constants.get(id(array))
        if known is not None and known[0] is array:
            return known[1]
        op = get_op("constant")
        var = self.builder.emit1(op, (), {"value": ConstValue(array.value)},
                                 VarMeta(source=user_location()))
        self._constants[id(array)] = (array, var)
        return var

    def var_of(self, value: Tensor) -> Var:
        if isinstance(value, Tracer):
            if value.trace is not self:
                raise TracejitError(
                    "a traced value from another trace was used here; values traced inside "
                    "one jit function cannot escape into another (return them instead)",
                    location=user_location())
            return value.var
        return self.constant_var(value)


class _PerThread(threading.local):
    # NOTE: one stack per thread: two threads tracing at once (first calls of jitted
    # functions, compiles of new shapes) must each record into their own trace, and an
    # eager op on one thread must not land in another thread's trace.
    def __init__(self):
        self.traces: list[Trace] = []


_THREAD = _PerThread()


@contextlib.contextmanager
def tracing(trace: Trace):
    stack = _THREAD.traces
    stack.append(trace)
    try:
        yield trace
    finally:
        stack.pop()
        trace.closed = True


def current_trace() -> Trace | None:
    stack = _THREAD.traces
    return stack[-1] if stack else None


def innermost(trace: Trace) -> Trace:
    """The trace an op on values of ``trace`` is recorded in: the region being traced
    now when it is nested in ``trace`` (it captures the outer values), else ``trace``."""
    current = current_trace()
    if current is None or current is trace or current.parent is None:
        return trace
    outer = current.parent
    while outer is not None and outer is not trace:
        outer = outer.parent
    return current if outer is trace else trace


# ---- converting user values ------------------------------------------------------------------

def _python_scalar_array(value) -> np.ndarray:
    try:
        return np.asarray(value, dtype=dt.default_dtype_for_python(value).np_dtype)
    except OverflowError:
        raise DTypeError(f"the Python int {value} is outside the int64 range tracejit "
                         "computes integers in; use float(...) for a floating-point value",
                         location=user_location()) from None


def to_tensor(value, dtype=None) -> Tensor:
    """Any tensor-like value as a Tracer or Array. Python scalars are weakly typed;
    Python lists of floats become float32 (like TensorFlow), NumPy arrays keep their type."""
    if isinstance(value, (Tracer, Array)):
        tensor = value
    elif isinstance(value, Tensor):
        tensor = value.read_value()       # a Variable: read now, or inside the trace
    elif isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
        if dtype is not None:
            return Array(np.asarray(value, dtype=dt.as_dtype(dtype).np_dtype))
        return Array(_python_scalar_array(value), weak=True)
    elif isinstance(value, (np.ndarray, np.generic)):
        tensor = Array(_checked_numpy(value))
    elif isinstance(value, (list, tuple)):
        tensor = _from_sequence(value)
    else:
        raise DTypeError(f"cannot convert {type(value).__name__} to a tensor",
                         location=user_location())
    if dtype is not None and tensor.dtype is not dt.as_dtype(dtype):
        tensor = cast(tensor, dt.as_dtype(dtype))
    return tensor


def _checked_numpy(value) -> np.ndarray:
    array = np.asarray(value)
    if not array.dtype.isnative:        # a byte-swapped array computes in native order
        array = array.astype(array.dtype.newbyteorder("="))
    try:
        dt.as_dtype(array.dtype)
    except TypeError:
        raise DTypeError(f"NumPy dtype {array.dtype} is not supported by tracejit",
                         location=user_location()) from None
    return array


def _only_python_numbers(value) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_only_python_numbers(v) for v in value)
    return isinstance(value, (bool, int, float)) and not isinstance(value, np.generic)


def _from_sequence(value) -> Tensor:
    """Lists of Python numbers take TensorFlow's defaults (float32, int32); lists holding
    arrays promote like a binary op would; lists holding traced values are stacked."""
    if _only_python_numbers(value):
        array = np.asarray(value) if len(value) else np.zeros((0,), np.float32)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        elif array.dtype == np.int64 and array.size and \
                -(2**31) <= array.min() and array.max() < 2**31:
            array = array.astype(np.int32)
        return Array(_checked_numpy(array))
    items = [to_tensor(v) for v in value]
    if any(isinstance(i, Tracer) for i in items):
        stacked, weak = promote(*items)
        return bind(ops.STACK, stacked, {"axis": 0}, weak=weak)
    dtype, _ = dt.result_type(*((i.dtype, i.weak) for i in items))
    return Array(np.stack([np.asarray(i.value, dtype=dtype.np_dtype) for i in items]))


# ---- bind: record or run one op ----------------------------------------------------------------

# Results up to this many elements are computed while tracing when every operand is known
# (shapes and what is computed from them; see Tracer.known).
KNOWN_LIMIT = 1024


def _known_value(arg) -> np.ndarray | None:
    if isinstance(arg, Tracer):
        return arg.known
    value = getattr(arg, "value", None)
    return value if isinstance(value, np.ndarray) and value.size <= KNOWN_LIMIT else None


def _known_results(op: OpDef, args, params, outs) -> list:
    """The results' values when they can be known while tracing, else Nones."""
    nothing = [None] * len(outs)
    if has_effect(op, params or {}) or op.has(Tag.RANDOM) or \
            any(v.type.size > KNOWN_LIMIT for v in outs):
        return nothing
    values = [_known_value(a) for a in args]
    if any(v is None for v in values):
        return nothing
    try:
        with np.errstate(all="ignore"):
            results = op.evaluate(values, op.make_params(params or {}))
    except Exception:       # noqa: BLE001 (a value we cannot know is simply not known)
        return nothing
    return [np.asarray(r) for r in results]


def bind(op: OpDef, args: Sequence[Tensor], params: Mapping[str, Any] | None = None,
         *, weak: bool = False):
    """Apply ``op`` to tensors: record it in the active trace if any argument is traced,
    otherwise run it now. Returns one tensor, or a tuple for multi-output ops.
    Errors are re-raised pointing at the user's line. Under a mixed-precision policy
    (autocast.py) the float arguments are cast first to the dtype it gives for ``op``."""
    cast_to = autocast_dtype(op)
    if cast_to is not None:
        target, sources = cast_to
        args = [cast(a, target) if a.dtype in sources else a for a in args]
    trace = None
    for arg in args:
        if isinstance(arg, Tracer):
            trace = innermost(arg.trace)
            break
    if trace is None and not args:
        trace = current_trace()
    try:
        if trace is not None:
            ins = [trace.var_of(a) for a in args]
            outs = trace.builder.emit(op, ins, params,
                                      VarMeta(source=user_location(), device=current_device()))
            known = _known_results(op, args, params, outs)
            results = tuple(Tracer(v, trace, weak, k) for v, k in zip(outs, known, strict=True))
        else:
            checked = op.make_params(params or {})
            op.infer_types([a.type for a in args], checked)
            pin = current_device()
            committed = committed_device(args) if DeviceArray.made else None
            # a scope's device, else the arguments' committed one, else the default
            device = (local_device(pin) if pin is not None else None) or \
                get_device(committed)
            values = device.run_op(op, [a.value for a in args], checked)
            if committed is not None:
                results = tuple(DeviceArray(v, weak, committed) for v in values)
            else:
                results = tuple(Array(v, weak) for v in values)
    except TracejitError as err:
        raise err.at(user_location()) from None
    return results[0] if len(results) == 1 else results


def cast(x, dtype) -> Tensor:
    """Convert ``x`` to ``dtype`` (float to int truncates toward zero and saturates)."""
    x = to_tensor(x)
    target = dt.as_dtype(dtype)
    if x.dtype is target:
        return x
    return bind(ops.CAST, [x], {"dtype": target})


def promote(*values) -> tuple[list[Tensor], bool]:
    """Convert values to tensors of one dtype; returns them and whether the result is weak."""
    # NOTE: a Python float is converted straight to the result type (always a float type),
    # not through its float32 default: ``x64 + 0.1`` adds exactly 0.1, ``x64 * 1e300`` is
    # not inf.
    tensors = [None if type(v) is float else to_tensor(v) for v in values]
    dtype, weak = dt.result_type(*((dt.float32, True) if t is None else (t.dtype, t.weak)
                                   for t in tensors))
    return [to_tensor(v, dtype) if t is None else cast(t, dtype)
            for v, t in zip(values, tensors, strict=True)], weak


def static_ints(value, what: str, op: str) -> tuple[int, ...]:
    """A static int or int sequence (``begin``, ``axis``...) as a tuple; a traced tensor
    is a ParamError naming ``what`` and the user's line."""
    if isinstance(value, Tensor):
        try:
            value = np.asarray(value)
        except TypeError:
            raise ParamError(f"{what} must be known while tracing (Python ints, or a static "
                             "argument), not a traced tensor", op=op,
                             location=user_location()) from None
    if isinstance(value, (int, np.integer)):
        return (int(value),)
    return tuple(int(v) for v in np.asarray(value).reshape(-1))
