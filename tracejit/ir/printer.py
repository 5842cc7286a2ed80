"""The IR's text form. :func:`tracejit.ir.parser.parse_graph` is its exact inverse.

    func main(a:f32[128,784], b:i32[128]) stage=traced {
      c:f32[128,784] = add a a
      d:f32[128] = sum[axes=(1,), keepdims=false] c
      return d, c
    }

Format decisions (the parser reads all of it back; it also allows free whitespace inside
a line, blank lines and lines holding only a ``# comment``):

* Vars are named a, b, ..., z, aa, ab, ... in order of definition (inputs, then each
  equation's outputs). Every graph, nested ones included, has its own naming scope.
* An equation is ``outs = op[params] ins``; ``()`` stands for no outputs, the ``[...]``
  is left out when the op has no params. Params are sorted by name.
* Param values: ints; floats as Python's ``repr`` (``1e-05``, ``-0.0``, ``inf``,
  ``-inf``) and NaN as ``nan``, ``-nan`` or ``nan(0x<64-bit pattern>)``, so every float
  reads back bit for bit; ``true``/``false``; ``none``;
  strings in double quotes with ``\\" \\\\ \\n \\t \\r \\xNN \\uNNNN \\UNNNNNNNN`` escapes;
  tuples (``(1,)`` for a 1-tuple, ``()`` empty); dtypes by short name (``f32``, ``bf16``);
  arrays as ``array(f32[2,2], [1.0, 2.0, 3.0, 4.0])`` up to 16 elements, larger ones
  (and any whose elements would not read back bit for bit, e.g. signalling NaNs) as
  ``array(f32[1000], b64"...")`` holding the raw little-endian bytes; a Graph as a
  nested ``func ... { ... }`` block, indented one level deeper.
* Var metadata goes in braces after the type: ``c:f32[3]{device="/cpu:0"}``. The
  device is always printed, because it is part of graph equality. The user-given name
  and the source location are debugging aids outside graph equality, so they are printed
  only with ``locations=True`` (so equal graphs print equally by default):
  ``c:f32[3]{device="/cpu:0", name="loss"}``. With ``locations=True`` an equation line
  ends with ``  # file:line in fn``, the source of its first output (written
  ``# loc("file", line, "fn")`` when the plain form could not be read back
  unambiguously). Sources that cannot go in that comment (of inputs, and of further
  outputs whose source differs from the first's) go in the braces as
  ``loc=loc("file", line, "fn")`` or ``loc=none``.
"""

from __future__ import annotations

import base64
import math
import re
import struct
import sys
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from .const_value import ConstValue
from .dtypes import DType, as_dtype

if TYPE_CHECKING:
    from .core import Graph, Var
from .source import SourceLoc

__all__ = ["print_graph", "format_value", "format_type", "format_float", "name_vars",
           "var_name", "quote", "double", "LITERAL_ARRAY_MAX", "NAN_BITS", "SIGN_BIT"]

LITERAL_ARRAY_MAX = 16      # arrays with more elements are printed as base64 bytes
INDENT = "  "
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@runtime_checkable
class _GraphShaped(Protocol):
    """A graph-valued param (a control-flow body). NOTE: recognized by shape, not by
    class, so that printer.py sits below core.py, whose ``Graph.__str__`` prints here."""

    inputs: Any
    eqns: Any
    outputs: Any


def print_graph(graph: Graph, *, locations: bool = False) -> str:
    """The text form of ``graph``, without a trailing newline.

    >>> from tracejit.ir import GraphBuilder, ops
    >>> from tracejit.ir.core import tensor_type
    >>> b = GraphBuilder()
    >>> x = b.add_input(tensor_type([3], "f32"))
    >>> print(print_graph(b.build([b.emit1(ops.NEG, [x])])))
    func main(a:f32[3]) stage=traced {
      b:f32[3] = neg a
      return b
    }
    """
    return _GraphPrinter(graph, locations).text("")


def var_name(index: int) -> str:
    """a, b, ..., z, aa, ab, ...: bijective base 26, so every name is short and unique."""
    letters = []
    index += 1
    while index:
        index, digit = divmod(index - 1, 26)
        letters.append(chr(ord("a") + digit))
    return "".join(reversed(letters))


def name_vars(graph: Graph) -> dict[int, str]:
    """Printed names by ``id(var)``, in order of first appearance.

    For a valid graph that is the order of definition. An invalid graph still gets a
    name for every var (one used before its definition is named at the use), so the
    printer and the verifier's messages can show it.
    """
    names: dict[int, str] = {}

    def see(var: Var) -> None:
        if id(var) not in names:
            names[id(var)] = var_name(len(names))

    for var in graph.inputs:
        see(var)
    for eqn in graph.eqns:
        for var in eqn.ins:
            see(var)
        for var in eqn.outs:
            see(var)
    for var in graph.outputs:
        see(var)
    return names


def quote(text: str) -> str:
    """A double-quoted string literal that the parser reads back exactly."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_SHORT_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def format_name(text: str) -> str:
    """A graph, stage or op name: bare when it is an identifier, else quoted."""
    return text if IDENT.fullmatch(text) else quote(text)


def format_type(type_) -> str:
    return f"{type_.dtype.short}[{','.join(str(d) for d in type_.shape)}]"


def format_float(value: float) -> str:
    """Exact text for a double: ``repr`` is the shortest text that reads back to the same
    value; NaN, which repr spells ``nan`` whatever its sign and payload, is spelled so
    that those read back too (Params equality compares floats bit for bit)."""
    if not math.isnan(value):
        return repr(value)
    bits = struct.unpack("<Q", struct.pack("<d", value))[0]
    if bits == NAN_BITS:
        return "nan"
    if bits == NAN_BITS | SIGN_BIT:
        return "-nan"
    return f"nan(0x{bits:016x})"


def double(bits: int) -> float:
    """The float with the 64-bit pattern ``bits``."""
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


NAN_BITS = struct.unpack("<Q", struct.pack("<d", math.nan))[0]
SIGN_BIT = 1 << 63


def format_value(value: Any, indent: str = "", locations: bool = False) -> str:
    """One param value; ``indent`` is the indentation of the line holding it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        return quote(value)
    if value is None:
        return "none"
    if isinstance(value, tuple):
        items = [format_value(v, indent, locations) for v in value]
        return "(" + items[0] + ",)" if len(items) == 1 else "(" + ", ".join(items) + ")"
    if isinstance(value, DType):
        return value.short
    if isinstance(value, ConstValue):
        return format_array(value.array)
    if isinstance(value, _GraphShaped):
        return _GraphPrinter(value, locations).text(indent)
    raise TypeError(f"cannot print a param of type {type(value).__name__}: {value!r}")


def format_array(array: np.ndarray) -> str:
    dtype = as_dtype(array.dtype)
    head = f"array({dtype.short}[{','.join(str(d) for d in array.shape)}], "
    if array.size <= LITERAL_ARRAY_MAX:
        items = [format_scalar(v) for v in array.reshape(-1).tolist()]
        literal = array_from_items(array.reshape(-1).tolist(), dtype)
        # NOTE: only when the literal reads back to the very same bytes (not so for NaN
        # payloads or negative NaNs); the bytes form is always exact.
        if literal.tobytes() == array.tobytes():
            return head + "[" + ", ".join(items) + "])"
    return head + 'b64"' + base64.b64encode(little_endian_bytes(array)).decode("ascii") + '")'


def format_scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value)
    return str(value)


def array_from_items(items: list, dtype: DType) -> np.ndarray:
    """The inverse of printing elements: Python scalars to an array of ``dtype``."""
    return np.array(items, dtype=dtype.np_dtype)


def little_endian_bytes(array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array)
    return (array.byteswap() if sys.byteorder == "big" else array).tobytes()


def format_loc(loc: SourceLoc) -> str:
    return f"loc({quote(loc.file)}, {loc.line}, {quote(loc.function)})"


def format_loc_comment(loc: SourceLoc) -> str:
    """``file:line in fn`` where that reads back unambiguously, else the ``loc(...)`` form."""
    file, fn = loc.file, loc.function
    plain = (isinstance(loc.line, int) and not isinstance(loc.line, bool) and loc.line >= 0
             and file and file.isprintable() and file == file.strip()
             and not file.startswith("loc(")
             and fn and fn.isprintable() and not any(c.isspace() for c in fn))
    return f"{file}:{loc.line} in {fn}" if plain else format_loc(loc)


class _GraphPrinter:
    def __init__(self, graph: Graph, locations: bool):
        self.graph = graph
        self.locations = locations
        self.names = name_vars(graph)

    def text(self, indent: str) -> str:
        g = self.graph
        inner = indent + INDENT
        decls = ", ".join(self.decl(v, show_loc=v.meta.source is not None) for v in g.inputs)
        lines = [f"func {format_name(g.name)}({decls}) stage={format_name(g.stage)} {{"]
        lines.extend(self.eqn_line(eqn, inner) for eqn in g.eqns)
        outs = ", ".join(self.names[id(v)] for v in g.outputs)
        lines.append(f"{inner}return {outs}" if outs else f"{inner}return")
        lines.append(indent + "}")
        return "\n".join(lines)

    def eqn_line(self, eqn, indent: str) -> str:
        first = eqn.outs[0].meta.source if eqn.outs else None
        # NOTE: the comment carries the first output's source, and the parser gives it to
        # every output without a loc of its own; only outputs that differ need one.
        outs = ", ".join(self.decl(v, show_loc=i > 0 and v.meta.source != first)
                         for i, v in enumerate(eqn.outs)) or "()"
        line = f"{indent}{outs} = {format_name(eqn.op.name)}"
        if eqn.params:
            line += "[" + ", ".join(f"{k}={format_value(v, indent, self.locations)}"
                                    for k, v in eqn.params.items()) + "]"
        for var in eqn.ins:
            line += " " + self.names[id(var)]
        if self.locations and first is not None:
            line += "  # " + format_loc_comment(first)
        return line

    def decl(self, var: Var, *, show_loc: bool) -> str:
        meta = var.meta
        attrs = []
        if meta.device is not None:
            attrs.append(f"device={quote(meta.device)}")
        if self.locations and meta.name is not None:
            attrs.append(f"name={quote(meta.name)}")
        if self.locations and show_loc:
            attrs.append("loc=" + ("none" if meta.source is None else format_loc(meta.source)))
        text = f"{self.names[id(var)]}:{format_type(var.type)}"
        return text + "{" + ", ".join(attrs) + "}" if attrs else text
