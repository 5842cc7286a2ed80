"""Random programs (strategies.programs): every pass, alone and in the pipeline, keeps
what a program computes, bit for bit; fused graphs obey the fusion rules; memory plans
are consistent. Together these tests run 4,500 programs."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracejit.passes import plan_memory, run_stages

from .kernel_check import check_fused
from .plan_check import check_plan
from .strategies import programs
from .util import FUSION, PIPELINE, assert_same_results

RELAXED = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                     HealthCheck.data_too_large])


# NOTE: four items of 750 programs (arguments with and without NaN, infinities and
# signed zeros; two shards of each) so that pytest-xdist spreads them over its workers.
@pytest.mark.parametrize("shard", [1, 2])
@pytest.mark.parametrize("specials", [True, False], ids=["special_values", "plain_values"])
@settings(max_examples=750, **RELAXED)
@given(data=st.data())
def test_every_stage_computes_what_the_program_computes(specials, shard, data):
    program = data.draw(programs(specials=specials), label="program")
    # the verifier runs after each pass
    stages = run_stages(program.graph, debug=True, device_passes=FUSION)
    for _, graph in stages[1:]:
        assert_same_results(program.graph, graph, program.args, check_ir=False)
    fused = stages[-1][1]
    check_fused(fused)
    donated = data.draw(st.sets(st.integers(0, len(fused.inputs) - 1)), label="donated")
    check_plan(fused, plan_memory(fused, donated), donated)


@pytest.mark.parametrize("name, run", PIPELINE, ids=[name for name, _ in PIPELINE])
@settings(max_examples=300, **RELAXED)
@given(program=programs(specials=False))
def test_each_pass_alone_keeps_the_meaning(name, run, program):
    out = run(program.graph)
    assert out.stage == name
    assert_same_results(program.graph, out, program.args)
    if name == "fuse_kernels":
        check_fused(out)
