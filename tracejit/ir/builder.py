"""GraphBuilder: the one way new equations enter a graph, with their types inferred.

The tracer, the TF1 graph front end, autodiff and every pass build graphs through
this class, so type inference and parameter validation happen in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .core import Eqn, Graph, TensorType, Var, VarMeta
from .opdef import OpDef

_NO_META = VarMeta()


class GraphBuilder:
    def __init__(self, name: str = "main"):
        self.name = name
        self.inputs: list[Var] = []
        self.eqns: list[Eqn] = []

    def add_input(self, type: TensorType, meta: VarMeta = _NO_META) -> Var:
        var = Var(type, meta)
        self.inputs.append(var)
        return var

    def emit(self, op: OpDef, ins: Sequence[Var], params: Mapping[str, Any] | None = None,
             meta: VarMeta = _NO_META) -> tuple[Var, ...]:
        """Append ``op(*ins)``; validates params and infers output types (raising on misuse)."""
        checked = op.make_params(params or {})
        out_types = op.infer_types([v.type for v in ins], checked)
        outs = tuple(Var(t, meta) for t in out_types)
        self.eqns.append(Eqn(op, tuple(ins), outs, checked))
        return outs

    def emit1(self, op: OpDef, ins: Sequence[Var], params: Mapping[str, Any] | None = None,
              meta: VarMeta = _NO_META) -> Var:
        (out,) = self.emit(op, ins, params, meta)
        return out

    def build(self, outputs: Sequence[Var], stage: str = "traced") -> Graph:
        return Graph(self.inputs, self.eqns, outputs, name=self.name, stage=stage)
