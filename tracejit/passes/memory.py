"""Memory planning: where every value of a graph lives while the graph runs.

``plan_memory(graph, donated=...)`` is an analysis (it returns a MemoryPlan and leaves
the graph alone); a backend allocates the plan's buffers once per executable and reuses
them on every call, which is what makes first-touch page faults a one-time cost.

* **Lifetimes**: a value is defined at eqn ``first`` (-1 for graph inputs) and last read
  at eqn ``last`` (``len(graph.eqns)`` for graph outputs, which outlive the call).
* **Reuse**: equations are visited in order; each output takes, best fit, a free
  buffer whose capacity ``c`` is compatible with its size ``n`` (``n <= c <= 2n + 64``,
  so a scalar never pins a large buffer), else a new one. A buffer becomes free after
  the last eqn that reads its value.
* **In place**: an output may take the buffer of an operand that dies at that eqn when
  the eqn reads the operand only at the index it writes: an ELEMENTWISE op, or a kernel
  of kind ``elementwise``, whose operand has the output's element count and dtype size
  (a backend honours this by loading an iteration's operands before storing its
  results).
* **Outputs** go to the caller, so they never live in the reusable arena: they get
  buffers of their own (kind ``output``), or the buffer of a **donated** argument
  (``donated``: input indices the caller gives up, e.g. a variable being updated, as in
  ``w_new = w - lr * g``); ``output_aliases`` lists those.
* Values of zero bytes get no buffer (``buffer is None``); so do arguments that are not
  donated (they stay the caller's).

>>> from tracejit.ir import GraphBuilder, ops
>>> from tracejit.ir.core import tensor_type
>>> b = GraphBuilder()
>>> w, g = b.add_input(tensor_type([256], "f32")), b.add_input(tensor_type([256], "f32"))
>>> plan = plan_memory(b.build([b.emit1(ops.SUB, [w, b.emit1(ops.EXP, [g])])]), donated={0})
>>> plan.output_aliases, plan.bytes_without_reuse, plan.bytes_with_reuse
({0: 0}, 2048, 1024)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..ir import ops
from ..ir.core import Eqn, Graph, Var
from ..ir.opdef import Tag

__all__ = ["plan_memory", "MemoryPlan", "ValuePlan", "BufferPlan", "SLACK_BYTES"]

SLACK_BYTES = 64


@dataclass(frozen=True)
class ValuePlan:
    var: Var
    nbytes: int
    first: int                  # defining eqn index; -1 for graph inputs
    last: int                   # last reading eqn index; len(eqns) for graph outputs
    buffer: int | None          # index into MemoryPlan.buffers
    inplace: bool = False       # took the buffer of an operand dying at `first`


@dataclass(frozen=True)
class BufferPlan:
    index: int
    nbytes: int
    kind: str                   # "arena" | "output" | "donated"
    input_index: int | None = None      # for donated buffers: the argument


@dataclass(frozen=True)
class MemoryPlan:
    values: tuple[ValuePlan, ...]       # inputs, then each eqn's outputs in order
    buffers: tuple[BufferPlan, ...]
    inplace: tuple[tuple[int, int, int], ...]   # (eqn, output position, operand position)
    output_aliases: dict[int, int]      # graph output index -> donated input index
    bytes_without_reuse: int            # every eqn output in a buffer of its own
    bytes_with_reuse: int               # the arena and output buffers this plan allocates
    peak_live_bytes: int                # most eqn-output bytes alive at once
    # donated inputs whose buffer the program writes (an eqn's value lands there, or a
    # result is that array); the others are only read, so the caller keeps them intact
    written_inputs: frozenset[int] = frozenset()
    _by_var: dict[int, ValuePlan] = field(default_factory=dict, repr=False, compare=False)

    def value(self, var: Var) -> ValuePlan:
        return self._by_var[id(var)]

    def buffer_of(self, var: Var) -> int | None:
        return self._by_var[id(var)].buffer

    def __str__(self) -> str:
        lines = [f"buffers: {len(self.buffers)}, {self.bytes_with_reuse} bytes allocated "
                 f"({self.bytes_without_reuse} without reuse, peak live "
                 f"{self.peak_live_bytes})"]
        for b in self.buffers:
            extra = f" (argument {b.input_index})" if b.input_index is not None else ""
            lines.append(f"  #{b.index}: {b.kind} {b.nbytes} bytes{extra}")
        return "\n".join(lines)


def _nbytes(var: Var) -> int:
    return var.type.size * var.dtype.itemsize


def _compatible(capacity: int, need: int) -> bool:
    return need <= capacity <= 2 * need + SLACK_BYTES


def _reads_in_place(eqn: Eqn, operand: Var, out: Var) -> bool:
    """The eqn reads ``operand`` only at the flat index it writes ``out`` at."""
    if operand.type.size != out.type.size or operand.dtype.itemsize != out.dtype.itemsize:
        return False
    if eqn.op.has(Tag.ELEMENTWISE):
        return True
    return eqn.op is ops.KERNEL and eqn.params["kind"] == "elementwise"


class _Planner:
    def __init__(self, graph: Graph, donated: frozenset[int]):
        self.graph = graph
        self.buffers: list[BufferPlan] = []
        self.free: list[int] = []               # buffer indices available for reuse
        self.holder: dict[int, int] = {}        # id(var) -> buffer index
        n = len(graph.eqns)
        self.last: dict[int, int] = {id(v): -1 for v in graph.inputs}
        for i, eqn in enumerate(graph.eqns):
            for v in eqn.outs:
                self.last[id(v)] = i
            for v in eqn.ins:
                self.last[id(v)] = i
        self.outputs = {id(v) for v in graph.outputs}
        for v in graph.outputs:
            self.last[id(v)] = n
        for k in sorted(donated):
            var = graph.inputs[k]
            if _nbytes(var) and id(var) not in self.holder:
                self.holder[id(var)] = self._new(_nbytes(var), "donated", k)
        self.donated_buffers = set(self.holder.values())

    def _new(self, nbytes: int, kind: str, input_index: int | None = None) -> int:
        self.buffers.append(BufferPlan(len(self.buffers), nbytes, kind, input_index))
        return len(self.buffers) - 1

    def _holds_result(self, b: int, out: Var) -> bool:
        """A graph output may live in donated buffer ``b`` only if it has the donated
        argument's type: the caller gets that argument's array back as the result."""
        return (b in self.donated_buffers
                and self.graph.inputs[self.buffers[b].input_index].type == out.type)

    def _take_free(self, need: int, result: Var | None) -> int | None:
        fits = [b for b in self.free if _compatible(self.buffers[b].nbytes, need)
                and (result is None or self._holds_result(b, result))]
        if not fits:
            return None
        best = min(fits, key=lambda b: (self.buffers[b].nbytes, b))
        self.free.remove(best)
        return best

    def _release(self, vars_: Iterable[Var], i: int) -> None:
        for v in vars_:
            b = self.holder.get(id(v))
            if b is not None and self.last[id(v)] == i and id(v) not in self.outputs \
                    and b not in self.free:
                self.free.append(b)

    def place(self, i: int, eqn: Eqn, inplace: list) -> list[tuple[int | None, bool]]:
        placed = []
        claimed: set[int] = set()
        for k, out in enumerate(eqn.outs):
            need = _nbytes(out)
            is_output = id(out) in self.outputs
            buffer, in_place = None, False
            if need:
                for p, v in enumerate(eqn.ins):
                    b = self.holder.get(id(v))
                    if (b is None or b in claimed or self.last[id(v)] != i
                            or id(v) in self.outputs
                            or (is_output and not self._holds_result(b, out))
                            or self.buffers[b].nbytes != need
                            or not _reads_in_place(eqn, v, out)):
                        continue
                    buffer, in_place = b, True
                    inplace.append((i, k, p))
                    # NOTE: the buffer now belongs to the output; the dying operand
                    # must not hand it back to the free list after this eqn.
                    del self.holder[id(v)]
                    break
                if buffer is None:
                    buffer = self._take_free(need, out if is_output else None)
                if buffer is None:
                    buffer = self._new(need, "output" if is_output else "arena")
                claimed.add(buffer)
                self.holder[id(out)] = buffer
            placed.append((buffer, in_place))
        return placed

    def run(self) -> MemoryPlan:
        graph = self.graph
        self._release(graph.inputs, -1)         # donated arguments nothing reads
        values = [ValuePlan(v, _nbytes(v), -1, self.last[id(v)], self.holder.get(id(v)))
                  for v in graph.inputs]
        inplace: list[tuple[int, int, int]] = []
        for i, eqn in enumerate(graph.eqns):
            placed = self.place(i, eqn, inplace)
            for out, (buffer, in_place) in zip(eqn.outs, placed, strict=True):
                values.append(ValuePlan(out, _nbytes(out), i, self.last[id(out)], buffer,
                                        in_place))
            self._release(eqn.ins, i)
            self._release(eqn.outs, i)          # outputs nothing reads
        aliases = {}
        for k, var in enumerate(graph.outputs):
            b = self.holder.get(id(var))
            if b is not None and b in self.donated_buffers:
                aliases[k] = self.buffers[b].input_index
        written = set(aliases.values())
        written.update(self.buffers[vp.buffer].input_index for vp in values
                       if vp.first >= 0 and vp.buffer in self.donated_buffers)
        outs = [vp for vp in values if vp.first >= 0]
        delta = [0] * (len(graph.eqns) + 2)
        for vp in outs:
            delta[vp.first] += vp.nbytes
            delta[vp.last + 1] -= vp.nbytes
        peak = live = 0
        for change in delta:
            live += change
            peak = max(peak, live)
        allocated = sum(b.nbytes for b in self.buffers if b.kind != "donated")
        return MemoryPlan(tuple(values), tuple(self.buffers), tuple(inplace), aliases,
                          sum(vp.nbytes for vp in outs), allocated, peak, frozenset(written),
                          {id(vp.var): vp for vp in values})


def plan_memory(graph: Graph, donated: Iterable[int] = ()) -> MemoryPlan:
    """The MemoryPlan of ``graph``; ``donated`` are indices of arguments whose memory
    the caller hands over (their buffers may hold intermediates and outputs)."""
    donated = frozenset(int(k) for k in donated)
    bad = [k for k in donated if not 0 <= k < len(graph.inputs)]
    if bad:
        raise ValueError(f"donated argument indices {bad} are out of range for "
                         f"{len(graph.inputs)} inputs")
    return _Planner(graph, donated).run()
