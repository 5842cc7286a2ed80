"""The two kinds of tensor a user holds: ``Tracer`` (a value being traced, which has a
type but no contents yet) and ``Array`` (a concrete value, from eager mode or a jit
call). Both share Python's operators and the NumPy-like methods through ``Tensor``.
"""

from __future__ import annotations

import numpy as np

from ..ir import dtypes as dt
from ..ir.core import TensorType
from ..ir.errors import TracerError
from ..ir.source import user_location
from ..runtime.device import DeviceValue


class Tensor:
    """Operators and methods common to traced and concrete tensors."""

    __slots__ = ()
    __array_priority__ = 1000   # NumPy defers binary operators to us

    # The subclasses provide: type (TensorType), weak (bool).
    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> dt.DType:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return len(self.type.shape)

    @property
    def size(self) -> int:
        return self.type.size

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # arithmetic
    def __add__(self, o): return _m.add(self, o)
    def __radd__(self, o): return _m.add(o, self)
    def __sub__(self, o): return _m.subtract(self, o)
    def __rsub__(self, o): return _m.subtract(o, self)
    def __mul__(self, o): return _m.multiply(self, o)
    def __rmul__(self, o): return _m.multiply(o, self)
    def __truediv__(self, o): return _m.divide(self, o)
    def __rtruediv__(self, o): return _m.divide(o, self)
    def __floordiv__(self, o): return _m.floordiv(self, o)
    def __rfloordiv__(self, o): return _m.floordiv(o, self)
    def __mod__(self, o): return _m.mod(self, o)
    def __rmod__(self, o): return _m.mod(o, self)
    def __pow__(self, o): return _m.pow(self, o)
    def __rpow__(self, o): return _m.pow(o, self)
    def __matmul__(self, o): return _m.matmul(self, o)
    def __rmatmul__(self, o): return _m.matmul(o, self)
    def __neg__(self): return _m.negative(self)
    def __pos__(self): return self
    def __abs__(self): return _m.abs(self)
    def __invert__(self): return _m.invert(self)
    def __and__(self, o): return _m.logical_and(self, o)
    def __rand__(self, o): return _m.logical_and(o, self)
    def __or__(self, o): return _m.logical_or(self, o)
    def __ror__(self, o): return _m.logical_or(o, self)
    def __xor__(self, o): return _m.logical_xor(self, o)
    def __rxor__(self, o): return _m.logical_xor(o, self)

    # comparisons are elementwise, as in NumPy, JAX and TensorFlow 2
    def __lt__(self, o): return _m.less(self, o)
    def __le__(self, o): return _m.less_equal(self, o)
    def __gt__(self, o): return _m.greater(self, o)
    def __ge__(self, o): return _m.greater_equal(self, o)
    def __eq__(self, o): return _m.equal(self, o)   # type: ignore[override]
    def __ne__(self, o): return _m.not_equal(self, o)   # type: ignore[override]
    __hash__ = object.__hash__

    def __getitem__(self, index):
        return _indexing.getitem(self, index)

    # NumPy-like methods
    @property
    def T(self):
        return _a.transpose(self)

    def reshape(self, *shape):
        return _a.reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *perm):
        return _a.transpose(self, (perm[0] if len(perm) == 1 else perm) or None)

    def astype(self, dtype):
        return _m.cast(self, dtype)

    def flatten(self):
        return _a.reshape(self, (-1,))

    ravel = flatten

    def squeeze(self, axis=None):
        return _a.squeeze(self, axis)

    def _reduce(self, fn, axis, keepdims, dtype, out):
        if out is not None:
            raise TypeError("out= is not supported on tracejit tensors")
        result = fn(self, axis=axis, keepdims=keepdims)
        return result if dtype is None else _m.cast(result, dtype)

    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        return self._reduce(_m.reduce_sum, axis, keepdims, dtype, out)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        return self._reduce(_m.reduce_mean, axis, keepdims, dtype, out)

    def max(self, axis=None, out=None, keepdims=False):
        return self._reduce(_m.reduce_max, axis, keepdims, None, out)

    def min(self, axis=None, out=None, keepdims=False):
        return self._reduce(_m.reduce_min, axis, keepdims, None, out)

    def prod(self, axis=None, dtype=None, out=None, keepdims=False):
        return self._reduce(_m.reduce_prod, axis, keepdims, dtype, out)

    def any(self, axis=None, out=None, keepdims=False):
        return self._reduce(_m.reduce_any, axis, keepdims, None, out)

    def all(self, axis=None, out=None, keepdims=False):
        return self._reduce(_m.reduce_all, axis, keepdims, None, out)

    def argmax(self, axis=None, out=None):
        if out is not None:
            raise TypeError("out= is not supported on tracejit tensors")
        return _m.np_argmax(self, axis)

    def argmin(self, axis=None, out=None):
        if out is not None:
            raise TypeError("out= is not supported on tracejit tensors")
        return _m.np_argmin(self, axis)


class Tracer(Tensor):
    """A value inside a trace: a Var of the graph being built."""

    __slots__ = ("var", "trace", "weak", "known")

    def __init__(self, var, trace, weak: bool = False, known: np.ndarray | None = None):
        self.var = var
        self.trace = trace
        self.weak = weak
        # NOTE: the value, where it is known while tracing: small results of pure ops on
        # constants, such as shapes (``tf.shape(x)[0]``), so that they can size reshapes,
        # fills and random draws. Computing with the tracer still records ops.
        self.known = known

    @property
    def type(self) -> TensorType:
        return self.var.type

    def __repr__(self) -> str:
        return f"Tracer<{self.type}>"

    def _no_value(self, what: str, instead: str):
        raise TracerError(
            f"{what} of a traced tensor {self.type} is not known while tracing: the "
            f"function is being recorded, not run. {instead}",
            location=user_location())

    def __bool__(self):
        self._no_value("the truth value",
                       "To branch on it, use tracejit.cond(pred, true_fn, false_fn, *operands) "
                       "(tf.cond); to loop while it holds, tracejit.while_loop(cond_fn, "
                       "body_fn, init) (tf.while_loop); to choose between two values, "
                       "tracejit.where(cond, a, b); or pass the value as a static argument "
                       "(static_argnums) to branch in Python.")

    def __float__(self):
        self._no_value("the Python float", "Keep computing with tensor ops, or return the "
                       "value from the jitted function and convert it outside.")

    def __int__(self):
        if self.known is not None and self.known.size == 1:
            return int(self.known.reshape(()))
        self._no_value("the Python int", "Use a static argument (static_argnums) for values "
                       "that decide shapes or loop counts.")

    __index__ = __int__

    def __complex__(self):
        self._no_value("the Python complex", "tracejit has no complex dtype.")

    def __iter__(self):
        self._no_value("iteration", "Index with x[i] for i in range(x.shape[0]), or use "
                       "tracejit.unstack(x) to split it into a list of tensors.")

    def __array__(self, dtype=None, copy=None):
        if self.known is not None:
            return self.known if dtype is None else self.known.astype(dtype)
        self._no_value("the NumPy value", "Return the tensor from the jitted function and "
                       "convert the result outside it.")


class Array(Tensor):
    """A concrete tensor. NumPy accepts it (``np.asarray(a)``, ``a.numpy()``)."""

    __slots__ = ("value", "weak")

    def __init__(self, value: np.ndarray, weak: bool = False):
        self.value = value
        self.weak = weak

    @property
    def type(self) -> TensorType:
        return TensorType(self.value.shape, dt.as_dtype(self.value.dtype))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def dtype(self) -> dt.DType:
        return dt.as_dtype(self.value.dtype)

    def numpy(self) -> np.ndarray:
        return self.value

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and np.dtype(dtype) != self.value.dtype:
            return self.value.astype(dtype)
        return self.value.copy() if copy else self.value

    def item(self):
        return self.value.item()

    def tolist(self):
        return self.value.tolist()

    def __bool__(self):
        return bool(self.value)

    def __float__(self):
        return float(self.value)

    def __int__(self):
        return int(self.value)

    def __index__(self):
        return self.value.__index__()

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        body = np.array2string(self.value, separator=", ", prefix="Array(")
        return f"Array({body}, dtype={self.dtype.name}{', weak' if self.weak else ''})"

    def __format__(self, spec):
        return format(self.value, spec) if self.ndim == 0 else format(str(self), spec)


_HOST_VALUE = Array.__dict__["value"]     # the slot Array keeps its NumPy value in


class DeviceArray(Array):
    """An Array committed to a device (``tj.device_put``): operations on it run there,
    and their results are committed there too, as JAX's committed arrays are. On a
    host-memory device its value is host memory; on a device with memory of its own (a
    GPU) it holds a :class:`~tracejit.runtime.device.DeviceValue` (``resident``), which
    jitted calls committed to that device take in place, and ``value`` is downloaded
    (once) only when host code asks for it."""

    __slots__ = ("device", "resident")
    # NOTE: whether any was ever made: until then a call skips looking for commitment
    # (a jitted step's Python path is a few microseconds; the search cost 5% of W8).
    made = False

    def __init__(self, value, weak: bool = False, device: str = "cpu"):
        if isinstance(value, DeviceValue):
            self.resident = value
        else:
            self.resident = None
            _HOST_VALUE.__set__(self, value)
        self.weak = weak
        self.device = device
        DeviceArray.made = True

    @property
    def value(self) -> np.ndarray:
        try:
            return _HOST_VALUE.__get__(self)
        except AttributeError:      # resident on its device: download once
            host = np.asarray(self.resident)
            _HOST_VALUE.__set__(self, host)
            return host

    @value.setter
    def value(self, new) -> None:
        _HOST_VALUE.__set__(self, new)

    def jit_argument(self):
        """What a jitted call passes: the resident value in place, else the host one."""
        return self.resident if self.resident is not None else self.value

    def jit_key(self) -> tuple:
        source = self.resident if self.resident is not None else self.value
        return (source.shape, source.dtype, self.weak)

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, device={self.device!r})"


# The operators and methods above call the op functions, whose modules build Tensors and
# so import this one; tracejit.trace binds them here once they are loaded, and this
# module imports none of them.
_a = _m = _indexing = None


def bind_operators(array_ops, math_ops, indexing) -> None:
    """Give Tensor's operators and methods their op functions (tracejit.trace's init)."""
    global _a, _m, _indexing
    _a, _m, _indexing = array_ops, math_ops, indexing
