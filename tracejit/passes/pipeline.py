"""The optimization pipeline: one explicit, ordered list of named passes.

Each pass is a pure ``Graph -> Graph`` function that stamps its name on the graph it
returns (``graph.stage``). The pipeline has two parts: ``CLEANUP``, the
target-independent rewrites every device gets (``optimize`` runs them alone), then the
device's own passes (``Device.passes``: the CPU's is fusion into its kernel kinds,
codegen_cpu/pipeline.py), given as ``device_passes``. The runtime runs both, once, when a
device compiles. ``run_stages`` returns every intermediate graph too (the ``tracejit ir
--stage`` CLI prints them under the pass's name). With ``debug=True`` the IR verifier
checks the graph after every pass and names the pass that broke an invariant.

``TRACEJIT_DUMP=folder`` writes the printed IR of every stage of every compile to
``folder/<graph name>-<hash>-<NN>-<stage>.ir``: the hash (12 hex digits of a SHA-256
of the input graph's text) tells compiles of one function apart, NN is the stage's
position (00 is the input graph), so ``ls`` lists a compile's stages in order.

>>> from tracejit.ir import GraphBuilder, ops
>>> from tracejit.ir.core import tensor_type
>>> b = GraphBuilder("f")
>>> x = b.add_input(tensor_type([4], "f32"))
>>> g = b.build([b.emit1(ops.EXP, [b.emit1(ops.NEG, [b.emit1(ops.NEG, [x])])])])
>>> from tracejit.passes.fuse import fuse_kernels
>>> [name for name, _ in run_stages(g, device_passes=[("fuse_kernels", fuse_kernels)])]
['traced', 'fold_constants', 'simplify_algebra', 'eliminate_common_subexpressions', \
'eliminate_dead_code', 'hoist_loop_invariants', 'fuse_kernels']
>>> [e.op.name for e in optimize(g).eqns]
['exp']
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from ..config import config
from ..ir.core import Graph
from ..ir.errors import VerifyError
from ..ir.printer import print_graph
from ..ir.verifier import verify
from .common import in_regions
from .cse import eliminate_common_subexpressions
from .dce import eliminate_dead_code
from .fold import fold_constants
from .hoist import hoist_loop_invariants
from .simplify import simplify_algebra

__all__ = ["CLEANUP", "optimize", "run_stages", "select_stage", "DUMP_ENV",
           "dump_requested", "dump_stages", "stage_names"]

Pass = Callable[[Graph], Graph]

# NOTE: folding first gives simplification constants to match; simplification can make
# equal subexpressions (transpose chains collapse onto one spelling) for CSE; CSE and
# simplification leave dead equations for DCE; hoisting works on the cleaned bodies
# (and its copies of one value from two regions merge in the next round's CSE); a
# device's passes (fusion) come last, on the smallest graph, because kernels hide their
# bodies from the other passes.
CLEANUP: tuple[tuple[str, Pass], ...] = (
    ("fold_constants", fold_constants),
    ("simplify_algebra", simplify_algebra),
    ("eliminate_common_subexpressions", eliminate_common_subexpressions),
    ("eliminate_dead_code", eliminate_dead_code),
    ("hoist_loop_invariants", hoist_loop_invariants),
)
DevicePasses = Sequence[tuple[str, Pass]]


def stage_names(device_passes: DevicePasses = ()) -> list[str]:
    """The passes in order, CLEANUP's then the device's: the stages ``run_stages`` can
    record (CLEANUP's may repeat, each round under the same names)."""
    return [name for name, _ in (*CLEANUP, *device_passes)]


# NOTE: simplification makes new constant expressions (x * 0 -> 0) and folding makes
# new rule matches (2 * 0.5 -> 1), so CLEANUP repeats while it changes the graph.
MAX_CLEANUP_ROUNDS = 3

DUMP_ENV = "TRACEJIT_DUMP"


def _verify(graph: Graph, stage: str) -> None:
    try:
        verify(graph)
    except VerifyError as exc:
        raise VerifyError(f"after pass {stage}: {exc}") from exc


def _dump(stages: Sequence[tuple[str, Graph]], folder: str) -> None:
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    texts = [(name, print_graph(g)) for name, g in stages]
    digest = hashlib.sha256(texts[0][1].encode()).hexdigest()[:12]
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", stages[0][1].name) or "graph"
    for k, (name, text) in enumerate(texts):
        (path / f"{base}-{digest}-{k:02d}-{name}.ir").write_text(text + "\n")


def _run(graph: Graph, name: str, run: Pass, debug: bool) -> Graph:
    graph = in_regions(run)(graph)
    if graph.stage != name:         # a pass that forgot to stamp is still named right
        graph = graph.replace(stage=name)
    if debug:
        _verify(graph, name)
    return graph


def _default_stages(graph: Graph, debug: bool, device_passes: DevicePasses
                    ) -> list[tuple[str, Graph]]:
    """CLEANUP rounds until one changes nothing, then the device's passes. A round's
    stages are recorded when it changed the graph; the first round's always are."""
    stages: list[tuple[str, Graph]] = []
    for round_ in range(MAX_CLEANUP_ROUNDS):
        start, this_round = graph, []
        for name, run in CLEANUP:
            graph = _run(graph, name, run, debug)
            this_round.append((name, graph))
        changed = graph != start
        if round_ == 0 or changed:
            stages.extend(this_round)
        else:
            graph = stages[-1][1]
        if not changed:
            break
    for name, run in device_passes:
        graph = _run(graph, name, run, debug)
        stages.append((name, graph))
    return stages


def run_stages(graph: Graph, *, debug: bool = False, device_passes: DevicePasses = (),
               passes: Sequence[tuple[str, Pass]] | None = None,
               on_stage: Callable[[str, Graph], None] | None = None
               ) -> list[tuple[str, Graph]]:
    """``[(stage name, graph)]``: the input graph under its own stage name, then the
    result of each pass in order: CLEANUP, repeated while it changes the graph, then
    ``device_passes``; or, given ``passes``, each of those once, in order."""
    if debug:
        _verify(graph, graph.stage)
    original = graph
    if passes is None:
        stages = _default_stages(graph, debug, device_passes)
    else:
        stages = []
        for name, run in passes:
            graph = _run(graph, name, run, debug)
            stages.append((name, graph))
    if on_stage is not None:
        for name, stage_graph in stages:
            on_stage(name, stage_graph)
    stages.insert(0, (original.stage, original))
    folder = dump_requested()
    if folder:
        _dump(stages, folder)
    return stages


def dump_requested() -> str:
    """The folder TRACEJIT_DUMP (or ``config.dump_dir``) names; empty when not dumping."""
    return config.dump_dir or os.environ.get(DUMP_ENV, "")


def dump_stages(graph: Graph, device_passes: DevicePasses = ()) -> None:
    """Write ``graph``'s pipeline stages when dumping is on. Devices call this for a
    compile their caches answer, so every compile is dumped, not only the first."""
    if dump_requested():
        run_stages(graph, device_passes=device_passes)


def optimize(graph: Graph, *, device_passes: DevicePasses = (), debug: bool = False,
             on_stage: Callable[[str, Graph], None] | None = None) -> Graph:
    """Run CLEANUP, then ``device_passes``, on ``graph``; ``on_stage(name, graph)`` sees
    each pass's result."""
    return run_stages(graph, debug=debug, device_passes=device_passes,
                      on_stage=on_stage)[-1][1]


def select_stage(stages: Sequence[tuple[str, Graph]], which: str) -> list[tuple[str, Graph]]:
    """The stages the CLI's ``--stage`` names: ``traced`` (the input), ``optimized``
    (the last target-independent stage), ``fused`` (the result), ``all``, or a pass's
    name (each stage of that name)."""
    if which == "all":
        return list(stages)
    if which == "traced":
        return [stages[0]]
    if which == "optimized":
        cleanup = {name for name, _ in CLEANUP}
        return [[s for s in stages if s[0] in cleanup or s is stages[0]][-1]]
    if which == "fused":
        return [stages[-1]]
    found = [s for s in stages[1:] if s[0] == which]
    if not found:
        names = ", ".join(["traced", "optimized", "fused", "all"]
                          + list(dict.fromkeys(n for n, _ in stages[1:])))
        raise ValueError(f"unknown stage {which!r}; expected one of {names}")
    return found
