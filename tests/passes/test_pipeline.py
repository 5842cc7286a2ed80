"""The pipeline: pass order and stamping, repeated cleanup, debug verification, dumps."""

import hashlib
import re

import pytest

from tracejit.ir import GraphBuilder
from tracejit.ir.core import Graph
from tracejit.ir.errors import VerifyError
from tracejit.ir.printer import print_graph
from tracejit.passes import optimize, run_stages
from tracejit.passes.pipeline import CLEANUP, DUMP_ENV, select_stage

from .util import (
    FUSION,
    PIPELINE,
    assert_same_results,
    const,
    effect,
    emit,
    op_names,
    optimize_fused,
    random_args,
    tensor,
)

NAMES = [name for name, _ in PIPELINE]


def small():
    b = GraphBuilder("small")
    x = b.add_input(tensor([4]))
    return b.build([emit(b, "exp", emit(b, "neg", x))])


def test_each_pass_runs_once_in_order_and_stamps_its_name():
    stages = run_stages(small(), device_passes=FUSION)
    assert [name for name, _ in stages] == ["traced", *NAMES]
    assert all(g.stage == name for name, g in stages)


def test_cleanup_repeats_while_it_changes_the_graph():
    b = GraphBuilder("two_rounds")
    i = b.add_input(tensor([4], "i32"))
    zero = emit(b, "mul", i, const(b, 0, "i32"))        # simplify makes a constant ...
    g = b.build([emit(b, "exp", emit(b, "cast", zero, dtype="f32"))])  # ... folding eats
    stages = run_stages(g, device_passes=FUSION)
    cleanup = [name for name, _ in CLEANUP]
    assert [name for name, _ in stages] == ["traced", *cleanup, *cleanup, "fuse_kernels"]
    assert op_names(stages[-1][1]) == ["fill"]
    assert_same_results(g, stages[-1][1], random_args(g))


def test_on_stage_sees_every_pass():
    seen = []
    out = optimize_fused(small(), on_stage=lambda name, g: seen.append((name, g.stage)))
    assert seen == [(n, n) for n in NAMES] and out.stage == "fuse_kernels"


def test_optimize_leaves_its_input_alone_and_keeps_effects():
    b = GraphBuilder()
    x = b.add_input(tensor([4]))
    effect(b, emit(b, "exp", x))
    g = b.build([emit(b, "neg", x)])
    key, eqns = g.canonical_key(), g.eqns
    out = optimize(g, debug=True)
    assert g.canonical_key() == key and g.eqns == eqns
    assert "test_effect" in op_names(out)


def test_debug_mode_names_the_pass_that_broke_the_graph():
    def broken(graph: Graph) -> Graph:
        return graph.replace(eqns=graph.eqns[1:], stage="broken")  # drops a definition

    with pytest.raises(VerifyError, match="after pass broken"):
        run_stages(small(), debug=True, passes=[("broken", broken)])
    run_stages(small(), passes=[("broken", broken)])             # unchecked without debug


def test_dump_writes_every_stage_of_every_compile(tmp_path, monkeypatch):
    monkeypatch.setenv(DUMP_ENV, str(tmp_path / "dump"))
    stages = run_stages(small(), device_passes=FUSION)
    other = GraphBuilder("small")
    other.add_input(tensor([5]))
    optimize_fused(other.build(list(other.inputs)))
    files = sorted(p.name for p in (tmp_path / "dump").iterdir())
    assert len(files) == 2 * (len(NAMES) + 1)
    pattern = re.compile(r"small-([0-9a-f]{12})-(\d\d)-([a-z_]+)\.ir")
    parsed = [pattern.fullmatch(f).groups() for f in files]
    assert len({h for h, _, _ in parsed}) == 2                    # two compiles
    h = hashlib.sha256(print_graph(stages[0][1]).encode()).hexdigest()[:12]
    first = [p for p in parsed if p[0] == h]
    assert [(int(k), name) for _, k, name in first] == list(enumerate(["traced", *NAMES]))
    for k, (name, graph) in enumerate(stages):
        assert (tmp_path / "dump" / f"small-{h}-{k:02d}-{name}.ir").read_text() \
            == print_graph(graph) + "\n"


def test_select_stage_for_the_cli():
    stages = run_stages(small(), device_passes=FUSION)
    assert select_stage(stages, "traced") == [stages[0]]
    assert select_stage(stages, "optimized") == [stages[-2]]
    assert select_stage(stages, "fused") == [stages[-1]]
    assert select_stage(stages, "all") == stages
    assert select_stage(stages, "fold_constants") == [stages[1]]
    with pytest.raises(ValueError, match="unknown stage"):
        select_stage(stages, "lowered")


def test_optimize_alone_is_target_independent():
    # No device's passes: cleanups only, no kernels; the stages say so.
    stages = run_stages(small())
    assert [name for name, _ in stages] == ["traced", *(name for name, _ in CLEANUP)]
    assert op_names(optimize(small())) == ["neg", "exp"]
    assert select_stage(stages, "optimized") == select_stage(stages, "fused") == [stages[-1]]
