"""Partitioning: a placed graph cut into per-device stages, with the transfers between.

Each equation of a placed graph (place.py) has a device. A *stage* is a subgraph that
one device runs as one program: its inputs arrive before it starts, its outputs are
ready when it ends. Where a value crosses from one device to another, the consumer
must run in a later stage than the producer, so an equation's *level* is the largest
of its operands' levels, plus one for an operand made on another device (graph inputs
are at level 0 on every device). The equations of one device and level form one
stage; stages run in level order.

A crossing value is a *transfer*: sent by the producing stage (one of its outputs) and
received by each consuming stage (one of its inputs), under a rendezvous key
``src_device;dst_device;tensor_name;frame`` as in TensorFlow's design (``frame`` is 0:
there are no loops yet). One value sent to one device is sent once a step, however
many of its equations read it. TensorFlow puts ``_Send``/``_Recv`` nodes inside each
partition and blocks in them; here a partition is cut where it would wait, so that
each stage stays one native program, and the sends and receives are the stages'
outputs and inputs (printed as such by :func:`format_partitions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.core import Graph, Var
from ..ir.printer import name_vars, print_graph

__all__ = ["Stage", "Partitions", "partition", "format_partitions", "rendezvous_key"]


@dataclass
class Stage:
    device: str
    level: int
    graph: Graph            # inputs: the values it receives (or graph inputs it reads)


@dataclass
class Partitions:
    placed: Graph
    stages: list[Stage]
    # (rendezvous key, the value) of every transfer, in the order the stages send them
    transfers: list[tuple[str, Var]] = field(default_factory=list)

    @property
    def devices(self) -> list[str]:
        return sorted({s.device for s in self.stages})


def rendezvous_key(src: str, dst: str, name: str, frame: int = 0) -> str:
    return f"{src};{dst};{name};{frame}"


def partition(placed: Graph) -> Partitions:
    """Cut ``placed`` (every value's ``meta.device`` set) into stages."""
    arguments = {id(v) for v in placed.inputs}     # every device reads them at once
    level: dict[int, int] = dict.fromkeys(arguments, 0)
    home: dict[int, str] = {}
    levels: list[int] = []
    for eqn in placed.eqns:
        device = eqn.outs[0].meta.device if eqn.outs else None
        at = max((level[id(v)] + (id(v) not in arguments and home[id(v)] != device)
                  for v in eqn.ins), default=0)
        for var in eqn.outs:
            level[id(var)], home[id(var)] = at, device
        levels.append(at)
    _join_generators(placed, levels)
    groups: dict[tuple[int, str], list] = {}
    for eqn, at in zip(placed.eqns, levels, strict=True):
        groups.setdefault((at, eqn.outs[0].meta.device if eqn.outs else None), []).append(eqn)
    _sink_private_stages(placed, groups)
    outputs = {id(v) for v in placed.outputs}
    reads: dict[int, set[tuple[int, str]]] = {}
    for key, eqns in groups.items():
        for eqn in eqns:
            for var in eqn.ins:
                reads.setdefault(id(var), set()).add(key)
    names = name_vars(placed)
    stages, transfers, sent = [], [], set()
    for (at, device), eqns in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        made = {id(v) for e in eqns for v in e.outs}
        ins: list[Var] = []
        taken: set[int] = set()
        for eqn in eqns:
            for var in eqn.ins:
                if id(var) not in made and id(var) not in taken:
                    taken.add(id(var))
                    ins.append(var)
        outs = [v for e in eqns for v in e.outs
                if id(v) in outputs or any(k != (at, device) for k in reads.get(id(v), ()))]
        for var in outs:
            for _, dst in sorted(reads.get(id(var), ())):
                key = rendezvous_key(device, dst, names[id(var)])
                if dst != device and key not in sent:
                    sent.add(key)
                    transfers.append((key, var))
        graph = Graph(ins, eqns, outs, name=f"{placed.name}.{len(stages)}", stage="partitioned")
        stages.append(Stage(device, at, graph))
    return Partitions(placed, stages, transfers)


def _sink_private_stages(placed: Graph, groups: dict) -> None:
    """A stage whose values no other device reads runs with a later stage of its own
    device instead of by itself: with the first stage that reads them, or -- read by
    none (a global step's increment, an update only the step's results hold) -- with
    the device's last stage. One program call fewer a step; on a remote task one
    round trip fewer. Its inputs are all ready by then (they were at its level)."""
    order = {id(e): i for i, e in enumerate(placed.eqns)}
    changed = True
    while changed:
        changed = False
        made = {id(v): key for key, eqns in groups.items() for e in eqns for v in e.outs}
        for key in sorted(groups):
            at, device = key
            readers = {other for other, eqns in groups.items() if other != key
                       and any(made.get(id(v)) == key for e in eqns for v in e.ins)}
            if any(r[1] != device for r in readers):
                continue
            later = [k for k in groups if k[1] == device and k[0] > at]
            if not later:
                continue
            target = min(readers) if readers else max(later)
            groups[target] = sorted(groups[target] + groups.pop(key), key=lambda e: order[id(e)])
            changed = True
            break


def _join_generators(placed: Graph, levels: list[int]) -> None:
    """An equation without operands (a constant) whose consumers all run on its device
    joins the earliest of their stages instead of making a stage of its own."""
    where = {id(v): i for i, e in enumerate(placed.eqns) for v in e.outs}
    users: dict[int, list[int]] = {}
    for j, eqn in enumerate(placed.eqns):
        for var in eqn.ins:
            if id(var) in where:
                users.setdefault(where[id(var)], []).append(j)
    for i, eqn in enumerate(placed.eqns):
        device = eqn.outs[0].meta.device if eqn.outs else None
        found = users.get(i, [])
        if not eqn.ins and found and all(
                placed.eqns[j].outs[0].meta.device == device for j in found):
            levels[i] = min(levels[j] for j in found)


def format_partitions(parts: Partitions) -> str:
    """The stages in run order, each with what it receives and sends, then its graph."""
    names = name_vars(parts.placed)
    lines = [f"# {len(parts.stages)} stage(s) on {len(parts.devices)} device(s); "
             f"{len(parts.transfers)} transfer(s)"]
    arguments = {id(v) for v in parts.placed.inputs}
    made_by = {id(v): i for i, stage in enumerate(parts.stages) for v in stage.graph.outputs}
    for i, stage in enumerate(parts.stages):
        local = name_vars(stage.graph)
        lines.append(f"# stage {i}: {stage.device}, level {stage.level}")
        for var in stage.graph.inputs:
            src = var.meta.device
            if id(var) in arguments:
                how = f"argument %{names[id(var)]}"
            elif src != stage.device:
                how = "recv " + rendezvous_key(src, stage.device, names[id(var)])
            else:
                how = f"stage {made_by[id(var)]}"
            lines.append(f"#   %{local[id(var)]} <- {how}")
        for key, var in parts.transfers:
            if any(var is v for v in stage.graph.outputs):
                lines.append(f"#   send %{local[id(var)]} as {key}")
        lines.append(print_graph(stage.graph))
    return "\n".join(lines)
