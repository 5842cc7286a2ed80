"""The IR's values: TensorType, Var, Eqn, Graph.

A Graph is a flat SSA program: ``inputs``, ``eqns`` in topological order, and
``outputs``. Graphs are immutable, and two graphs are equal when they have the
same structure (the same ops on the same types in the same order, wired the same
way), whatever objects their Vars are: equality and hashing go through a
canonical key in which each Var is replaced by its position. Compile caches
key on that.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from .dtypes import DType, as_dtype
from .printer import print_graph
from .source import SourceLoc

if TYPE_CHECKING:
    from .opdef import OpDef


class TensorType(NamedTuple):
    """The abstract value of a tensor: its static shape and element type."""

    shape: tuple[int, ...]
    dtype: DType

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __str__(self) -> str:
        return f"{self.dtype.short}[{','.join(map(str, self.shape))}]"


@dataclass(frozen=True, slots=True)
class VarMeta:
    """What a Var carries besides its type. Not part of graph equality."""

    source: SourceLoc | None = None   # the user's line that created the value
    name: str | None = None           # a user-given name (TF1 graphs name their tensors)
    device: str | None = None         # requested placement, e.g. "/cpu:0"


_NO_META = VarMeta()


class Var:
    """One SSA value. Compared by identity; graphs compare structurally."""

    __slots__ = ("type", "meta")

    def __init__(self, type: TensorType, meta: VarMeta = _NO_META):
        self.type = type
        self.meta = meta

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> DType:
        return self.type.dtype

    def __repr__(self) -> str:
        return f"Var({self.type})"


def _param_key(value: Any):
    """A hashable key under which NaN equals NaN and -0.0 differs from 0.0."""
    if isinstance(value, float):
        return ("f", struct.pack("<d", value))
    if isinstance(value, tuple):
        return tuple(_param_key(v) for v in value)
    return value


class Params(Mapping):
    """An op's parameters: an immutable, hashable mapping with sorted keys."""

    __slots__ = ("_items", "_dict", "_key")

    def __init__(self, values: Mapping[str, Any] | None = None):
        items = tuple(sorted((values or {}).items()))
        self._items = items
        self._dict = dict(items)
        self._key = tuple((k, _param_key(v)) for k, v in items)

    def __getitem__(self, key: str) -> Any:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other) -> bool:
        return isinstance(other, Params) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return "Params(" + ", ".join(f"{k}={v!r}" for k, v in self._items) + ")"


@dataclass(frozen=True, slots=True, eq=False)
class Eqn:
    """``outs = op(*ins; params)``."""

    op: OpDef
    ins: tuple[Var, ...]
    outs: tuple[Var, ...]
    params: Params

    def __repr__(self) -> str:
        return f"Eqn({self.op.name}, {len(self.ins)} in, {len(self.outs)} out, {self.params!r})"


class Graph:
    """An immutable SSA program. Build new graphs; never mutate one."""

    __slots__ = ("inputs", "eqns", "outputs", "name", "stage", "_key", "_hash")

    def __init__(self, inputs, eqns, outputs, *, name: str = "main", stage: str = "traced"):
        self.inputs: tuple[Var, ...] = tuple(inputs)
        self.eqns: tuple[Eqn, ...] = tuple(eqns)
        self.outputs: tuple[Var, ...] = tuple(outputs)
        self.name = name
        self.stage = stage    # the pass that produced this graph
        self._key = None
        self._hash = None

    def replace(self, **changes) -> Graph:
        fields = dict(inputs=self.inputs, eqns=self.eqns, outputs=self.outputs,
                      name=self.name, stage=self.stage)
        fields.update(changes)
        return Graph(fields.pop("inputs"), fields.pop("eqns"), fields.pop("outputs"), **fields)

    def canonical_key(self) -> tuple:
        """The structure of the graph with every Var replaced by its position."""
        if self._key is None:
            index: dict[int, int] = {}

            def number(var: Var) -> int:
                return index.setdefault(id(var), len(index))

            inputs = tuple((number(v), v.type, v.meta.device) for v in self.inputs)
            eqns = []
            for eqn in self.eqns:
                ins = tuple(index.get(id(v), -1) for v in eqn.ins)
                outs = tuple((number(v), v.type, v.meta.device) for v in eqn.outs)
                eqns.append((eqn.op.name, ins, outs, eqn.params))
            outputs = tuple(index.get(id(v), -1) for v in self.outputs)
            self._key = (inputs, tuple(eqns), outputs)
        return self._key

    def __eq__(self, other) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return self is other or (hash(self) == hash(other)
                                 and self.canonical_key() == other.canonical_key())

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(self.canonical_key())
        return self._hash

    def __str__(self) -> str:
        return print_graph(self)

    def __repr__(self) -> str:
        return (f"Graph({self.name!r}, {len(self.inputs)} inputs, {len(self.eqns)} eqns, "
                f"{len(self.outputs)} outputs, stage={self.stage!r})")


def tensor_type(shape, dtype) -> TensorType:
    """A TensorType from any int sequence and anything :func:`as_dtype` accepts."""
    return TensorType(tuple(int(d) for d in shape), as_dtype(dtype))


_TYPE_TEXT = re.compile(r"^\s*(\w+)\s*\[\s*([0-9,\s]*)\]\s*$")


def parse_tensor_type(text: str) -> TensorType:
    """A type in its printed form, ``f32[128,784]`` or ``i32[]`` (what command lines
    and ahead-of-time builds take for an argument); ValueError for anything else.

    >>> parse_tensor_type("f32[2, 3]")
    TensorType(shape=(2, 3), dtype=tracejit.float32)
    """
    match = _TYPE_TEXT.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a type like f32[128,784] or i32[]")
    try:
        dtype = as_dtype(match.group(1))
    except TypeError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    return TensorType(tuple(int(d) for d in match.group(2).replace(" ", "").split(",") if d),
                      dtype)
