"""How an op is declared: the OpDef record, its parameter specs, tags, and the one table.

Every op is declared exactly once (in ``ops_*.py`` beside this file) with its
arity, parameters, shape/dtype rule, NumPy reference implementation, gradient
rule and category tags. Passes and backends ask an op for its tags, never test
membership in hand-written lists of ops.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .core import Params, TensorType
from .dtypes import DType, as_dtype
from .errors import DTypeError, ParamError, ShapeError


class Tag(enum.Enum):
    ELEMENTWISE = "elementwise"     # output[i] depends on input[i] only (after broadcasting)
    UNARY = "unary"
    BINARY = "binary"
    COMPARISON = "comparison"       # produces bool from two operands
    LOGICAL = "logical"             # bool operands
    COMMUTATIVE = "commutative"     # op(a, b) == op(b, a)
    REDUCE = "reduce"               # collapses axes
    MOVEMENT = "movement"           # rearranges elements without arithmetic
    LINALG = "linalg"               # matmul and friends: call BLAS
    CREATION = "creation"           # no tensor inputs (constants, iota, fill)
    RANDOM = "random"               # counter-based random bits
    STATEFUL = "stateful"           # has an effect; never folded, deduplicated or removed
    TRANSCENDENTAL = "transcendental"  # needs a polynomial approximation in codegen
    # output[i] = input[f(i)] for an index map f: fused, a read through it is an index
    # computation, not a pass over memory (reshapes, broadcasts, transposes, slices, ...)
    INDEX_MAP = "index_map"
    RESHAPE = "reshape"             # the same elements in the same row-major order
    BROADCAST = "broadcast"         # replicates along new or size-1 axes
    # runs graphs held in its params (regions): passes recurse into them, never fold
    # the op whole (its work may be unbounded), and a backend lowers it as native
    # branches or loops around the regions' code
    CONTROL_FLOW = "control_flow"
    LOOP = "loop"                   # a CONTROL_FLOW op that runs a region repeatedly
    # a CONTROL_FLOW op that runs one of params["branches"], chosen by its first operand
    # (branch_index in ops_control.py), on its other operands
    BRANCH = "branch"


REQUIRED = object()


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: how to normalize a user's value, and its default (or REQUIRED)."""

    convert: Callable[[Any], Any]
    default: Any = REQUIRED


# Normalizers for the parameter kinds ops use. Each returns a hashable value.
def int_param(value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"expected an int, got {value!r}")
    return int(value)


def float_param(value) -> float:
    return float(value)


def bool_param(value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"expected a bool, got {value!r}")
    return bool(value)


def ints_param(value) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)):
        return (int_param(value),)
    return tuple(int_param(v) for v in value)


def dtype_param(value) -> DType:
    return as_dtype(value)


def scalar_param(value):
    """A Python number (bool, int or float) carried as a parameter, e.g. a fill value."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return float(value)


@dataclass(frozen=True, eq=False)
class OpDef:
    """One row of the op table."""

    name: str
    infer: Callable[[tuple[TensorType, ...], Params], tuple[TensorType, ...]]
    impl: Callable[..., Any]
    arity: int | None                      # None: one or more inputs
    params: Mapping[str, ParamSpec] = field(default_factory=dict)
    tags: frozenset[Tag] = frozenset()
    vjp: Callable | None = None            # gradient rule, added by the autodiff work
    # ``(eqn, differentiate) -> (eqns, saved)``: equations computing ``eqn``'s outputs
    # (first, in order, the same Vars) plus residuals as further outputs, which autodiff
    # swaps in for ``eqn``; it then calls ``vjp(..., saved=saved)``. Loops record
    # per-iteration values this way. None: ``vjp`` needs nothing more.
    with_residuals: Callable | None = None
    # ``(g, ins, outs, cts, params) -> (rows, row_indices) | None``: the cotangent of the
    # first input as the rows it receives and their indices along axis 0, without the
    # dense zeros around them (gather's: the rows it read). Autodiff uses it where asked
    # for row-sparse gradients (TensorFlow's IndexedSlices); None from the rule, or no
    # rule, means dense.
    sparse_vjp: Callable | None = None
    doc: str = ""

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"<op {self.name}>"

    def has(self, tag: Tag) -> bool:
        return tag in self.tags

    def make_params(self, values: Mapping[str, Any]) -> Params:
        """Validate and normalize user-facing parameter values, filling in defaults."""
        unknown = set(values) - set(self.params)
        if unknown:
            raise ParamError(f"unknown parameter(s) {sorted(unknown)}; "
                             f"{self.name} takes {sorted(self.params) or 'none'}", op=self.name)
        out = {}
        for name, spec in self.params.items():
            if name in values:
                try:
                    out[name] = spec.convert(values[name])
                except (TypeError, ValueError) as exc:
                    raise ParamError(f"parameter {name}={values[name]!r}: {exc}",
                                     op=self.name) from None
            elif spec.default is REQUIRED:
                raise ParamError(f"missing parameter {name!r}", op=self.name)
            else:
                out[name] = spec.default
        return Params(out)

    def infer_types(self, in_types: Sequence[TensorType], params: Params) -> tuple[TensorType, ...]:
        if self.arity is not None and len(in_types) != self.arity:
            raise ParamError(f"takes {self.arity} input(s), got {len(in_types)}", op=self.name)
        if self.arity is None and not in_types:
            raise ParamError("takes at least one input", op=self.name)
        return tuple(self.infer(tuple(in_types), params))

    def evaluate(self, arrays: Sequence[np.ndarray], params: Params) -> tuple[np.ndarray, ...]:
        """Run the NumPy reference implementation; always returns a tuple of arrays."""
        result = self.impl(*arrays, **params)
        return result if isinstance(result, tuple) else (result,)


OPS: dict[str, OpDef] = {}


def declare(name: str, *, infer, impl, arity: int | None, params=None, tags=(), vjp=None,
            doc: str = "", with_residuals=None, sparse_vjp=None) -> OpDef:
    """Add an op to the table. Each name may be declared once."""
    if name in OPS:
        raise ValueError(f"op {name!r} declared twice")
    op = OpDef(name=name, infer=infer, impl=impl, arity=arity, params=dict(params or {}),
               tags=frozenset(tags), vjp=vjp, doc=doc, with_residuals=with_residuals,
               sparse_vjp=sparse_vjp)
    OPS[name] = op
    return op


def get_op(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        raise ParamError(f"unknown op {name!r}") from None


# ---- helpers shared by shape rules -------------------------------------------------------

def broadcast_shapes(op: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    """NumPy broadcasting of static shapes, with an error naming the op and the shapes."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(ndim):
        size = 1
        for s in shapes:
            d = s[axis - ndim + len(s)] if axis - ndim + len(s) >= 0 else 1
            if d == 1:
                continue
            if size not in (1, d):
                pretty = " and ".join(str(list(s)) for s in shapes)
                raise ShapeError(f"shapes {pretty} cannot be broadcast together", op=op)
            size = d
        out.append(size)
    return tuple(out)


def normalize_axis(op: str, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ParamError(f"axis {axis} is out of range for a tensor of rank {ndim}", op=op)
    return axis % ndim


def normalize_axes(op: str, axes, ndim: int) -> tuple[int, ...]:
    """Axes made non-negative and checked; ``None`` means all axes."""
    if axes is None:
        return tuple(range(ndim))
    out = tuple(sorted(normalize_axis(op, a, ndim) for a in axes))
    if len(set(out)) != len(out):
        raise ParamError(f"repeated axis in {list(axes)}", op=op)
    return out


def require_dtype(op: str, t: TensorType, allowed: Sequence[DType], what: str) -> None:
    if t.dtype not in allowed:
        raise DTypeError(f"expects {what}, got {t.dtype.name} (tensor {t})", op=op)


def require_same_dtype(op: str, types: Sequence[TensorType]) -> DType:
    first = types[0].dtype
    for t in types[1:]:
        if t.dtype is not first:
            pretty = ", ".join(str(t) for t in types)
            raise DTypeError(f"operands must have one dtype, got {pretty}", op=op)
    return first


def num_elements(shape: Sequence[int]) -> int:
    return math.prod(shape)
