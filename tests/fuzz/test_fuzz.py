"""The differential fuzzer in CI: 2,000 random programs (seed 0, indices 0..1999) compiled
for the CPU and compared with the reference interpreter, in four shards so that
pytest-xdist spreads them; plus the fuzzer's own machinery.

``TRACEJIT_FUZZ_SEED`` and ``TRACEJIT_FUZZ_PROGRAMS`` (per shard) change the run. A
failure prints each program's source and the command that reruns it; see
docs/testing.md.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from tracejit.ir.ops import OPS

from .compare import compare, depths, noisy_run, signed_zero_outputs
from .control import walk
from .generate import EXCLUDED, generate, generated_ops
from .known_bugs import KNOWN_BUGS, explain
from .minimize import candidates, prune
from .program import load, regions
from .proposals import MAX_SIZE
from .runner import Session, report, run_programs

SEED = int(os.environ.get("TRACEJIT_FUZZ_SEED", "0"))
PER_SHARD = int(os.environ.get("TRACEJIT_FUZZ_PROGRAMS", "500"))
SHARDS = 4


@pytest.mark.parametrize("shard", range(SHARDS))
def test_random_programs_compile_to_what_the_reference_computes(shard):
    start = shard * PER_SHARD
    summary = run_programs(SEED, range(start, start + PER_SHARD), workers=1, deadline=30.0)
    new, known = [], []
    for outcome in summary.failures:
        bug = explain(outcome.task)
        (known if bug else new).append((bug, outcome))
    for bug, outcome in known:          # shown with -rP; they fail test_known_bugs
        print(f"known bug {bug}: seed={SEED} index={outcome.task['index']}")
    if new:
        text = "\n".join(report(o) for _, o in new[:5])
        pytest.fail(f"{summary.line()}; {len(new)} new failure(s), first ones:\n{text}",
                    pytrace=False)


PLACED = int(os.environ.get("TRACEJIT_FUZZ_PLACED", "250"))


def test_random_programs_placed_over_three_devices_compute_the_same():
    # Each compiled program's steps pinned at random to /cpu:0../cpu:2 or left unpinned:
    # placement, partitions and transfers, against the unplaced reference.
    summary = run_programs(SEED, range(PLACED), workers=1, deadline=30.0, placed=True)
    new = [o for o in summary.failures if not explain(o.task)]
    if new:
        text = "\n".join(report(o) for o in new[:5])
        pytest.fail(f"{summary.line()}; {len(new)} new failure(s), first ones:\n{text}",
                    pytrace=False)
    assert summary.programs == PLACED


GPU_PROGRAMS = int(os.environ.get("TRACEJIT_FUZZ_GPU", "60"))


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None,
                    reason="numba-cuda is not installed (the CUDA simulator)")
def test_random_programs_on_the_gpu_simulator_compute_the_same():
    # The CUDA backend (fusion, generated kernels, the GPU program, host<->device
    # copies) on numba's simulator against the reference interpreter.
    summary = run_programs(SEED, range(GPU_PROGRAMS), workers=1, deadline=60.0,
                           device="gpu")
    new = [o for o in summary.failures if not explain(o.task)]
    if new:
        text = "\n".join(report(o) for o in new[:5])
        pytest.fail(f"{summary.line()}; {len(new)} new failure(s), first ones:\n{text}",
                    pytrace=False)
    assert summary.programs == GPU_PROGRAMS


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None,
                    reason="numba-cuda is not installed (the CUDA simulator)")
def test_random_programs_placed_over_cpus_and_the_gpu_compute_the_same():
    # Steps pinned at random over /cpu:0../cpu:2, /gpu:0 or left to the GPU: partitions
    # whose transfers cross between host memory and the simulated device's.
    summary = run_programs(SEED + 1, range(GPU_PROGRAMS // 2), workers=1, deadline=60.0,
                           placed=True, device="gpu")
    new = [o for o in summary.failures if not explain(o.task)]
    if new:
        text = "\n".join(report(o) for o in new[:5])
        pytest.fail(f"{summary.line()}; {len(new)} new failure(s), first ones:\n{text}",
                    pytrace=False)
    assert summary.programs == GPU_PROGRAMS // 2


# ---- the known bugs, checked as fuzz programs ------------------------------------------

@pytest.mark.parametrize("bug", [
    pytest.param(b, id=b.name, marks=pytest.mark.xfail(reason="open bug", strict=False))
    if b.open else pytest.param(b, id=b.name) for b in KNOWN_BUGS])
def test_known_bugs(bug):
    session = Session(deadline=30.0)
    try:
        outcome = session.check({"source": bug.source, "seed": 0})
    finally:
        session.close()
    assert outcome.status == "ok", report(outcome)


# ---- the fuzzer itself -------------------------------------------------------------------

def test_program_i_of_seed_s_is_always_the_same_program():
    first = [generate(7, i).source() for i in (3, 1, 2)]
    again = [generate(7, i).source() for i in (1, 2, 3)]
    assert first == [again[2], again[0], again[1]]
    assert generate(8, 1).source() != again[0]


def test_no_value_of_a_program_is_larger_than_the_size_cap():
    # seed 4000 #61409 had a 6.1M-element scatter_add update (its shape came from a
    # gather hint): 75 MB of source, and the worker timed out before running it
    for index in (61409, *range(200)):
        types = generate(4000, index).types()
        assert all(t.size <= MAX_SIZE for t in types.values()), index


def test_every_op_of_the_table_is_generated_or_excluded_with_a_reason():
    made = {o.name for o in generated_ops()}
    missing = sorted(set(OPS) - made - set(EXCLUDED))
    assert not missing, f"ops the generator cannot make (add a parameter proposer): {missing}"
    seen = {name for i in range(3000) for name, _, _ in walk(generate(SEED, i))}
    # NOTE: conv2d and random_bits need rank-4 images and int32[2] keys, which few
    # programs make; they appear in this many programs but are rare.
    assert made - seen == set()


def test_rendered_source_runs_and_round_trips_values():
    for i in range(40):
        program = generate(SEED, i)
        loaded = load(program.source())
        assert len(loaded.args) == len(program.args) + len(program.loss_weights)
        for a, b in zip(loaded.args, program.args, strict=False):
            assert a.dtype == b.dtype and a.shape == b.shape
            # NOTE: as bytes: exact for every dtype, NaNs and signed zeros included
            # (bfloat16 is no NumPy float kind).
            assert a.tobytes() == b.tobytes()


def test_minimizer_candidates_are_valid_programs():
    for i in range(30):
        for q in candidates(prune(generate(SEED, i))):
            q.types()           # every step still type-checks
            load(q.source())


# NOTE: the worker runs whatever source it is given, so a program that sleeps stands in
# for a compile that never ends, and one that kills itself for a segfault.
HANG = "import time\ntime.sleep(600)\n"
CRASH = "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"


def test_a_hang_is_killed_and_reported_and_the_next_program_still_runs():
    session = Session(deadline=3.0)
    try:
        assert session.check({"source": HANG, "seed": 0}).status == "hang"
        crash = session.check({"source": CRASH, "seed": 0})
        assert crash.status == "crash" and "SIGSEGV" in crash.detail
        assert session.check({"source": generate(SEED, 0).source(), "seed": 0}).status == "ok"
    finally:
        session.close()


# ---- comparison --------------------------------------------------------------------------

def _graph(fn, *args):
    import tracejit as tj
    return tj.make_ir(fn)(*args)


def test_comparison_is_exact_where_it_must_be():
    import tracejit as tj
    x = np.array([1.0, -0.0, np.nan, np.inf], np.float32)
    g = _graph(lambda a: (tj.negative(a),), x)
    ref = [np.array([-1.0, 0.0, np.nan, -np.inf], np.float32)]
    assert compare(ref, ref, g, [x], 0) == []
    for wrong in ([-1.0, -0.0, np.nan, -np.inf],      # the sign of a zero neg defines
                  [-1.0, 0.0, 1.0, -np.inf],          # a NaN lost
                  [-1.0, 0.0, np.nan, np.inf],        # an infinity's sign
                  [-1.0001, 0.0, np.nan, -np.inf]):   # a value beyond rounding
        assert compare([np.array(wrong, np.float32)], ref, g, [x], 0), wrong
    i = np.array([3, 4], np.int32)
    gi = _graph(lambda a: (tj.negative(a),), i)
    assert compare([np.array([-3, -5], np.int32)], [np.array([-3, -4], np.int32)], gi, [i], 0)
    assert compare([np.array([-3, -4], np.int64)], [np.array([-3, -4], np.int32)], gi, [i], 0)


def test_rounding_differences_of_a_few_ulps_are_not_mismatches():
    import tracejit as tj
    x = np.linspace(-3, 3, 17).astype(np.float32)
    g = _graph(lambda a: (tj.exp(tj.tanh(a) * 3.0) - 1.0,), x)
    ref = [np.exp(np.tanh(x) * np.float32(3.0)) - np.float32(1.0)]
    off = [ref[0] * np.float32(1 + 4e-7)]
    assert compare(off, ref, g, [x], 0) == []
    # NOTE: cancellation: exp(x) - exp(x') for x close to x' is all rounding error, so
    # the noisy reference excuses a large relative difference near zero.
    y = (x + np.float32(1e-6)).astype(np.float32)
    g2 = _graph(lambda a, b: (tj.exp(a) - tj.exp(b),), x, y)
    ref2 = [np.exp(x) - np.exp(y)]
    assert compare([ref2[0] * np.float32(1.5)], ref2, g2, [x, y], 0) == []


def test_an_overflow_within_the_noise_of_the_largest_float_is_not_a_mismatch():
    # seed 5000 #54136: a bfloat16 matmul's float32 partial sums made -2.95e38 in NumPy's
    # order and -inf in the compiled one, with a noise spread of 5.6e37; far from the
    # largest float, or of the other sign, an infinity stays a mismatch
    from .compare import _bad_elements

    ref = np.array([-2.95e38, -2.95e38, -1.0e30, 2.95e38], np.float32)
    got = np.array([-np.inf, np.inf, -np.inf, np.inf], np.float32)
    spread = np.array([5.6e37, 5.6e37, 5.6e37, 1e36])
    bad = _bad_elements(got, ref, 1e-6, spread, np.zeros(4, bool))
    assert bad.tolist() == [False, True, True, True]


# ---- control flow ------------------------------------------------------------------------

CONTROL = ("cond", "while_loop", "scan")


def _control_features(program) -> set[str]:
    found = set()
    for name, params, path in walk(program):
        if name not in CONTROL:
            continue
        found.add(f"{name} at depth {len(path)}")
        if path:
            found.add(f"{name} in {path[-1]}")
        if name == "cond":
            found.add(f"cond of {len(params['branches'])} branches")
            continue
        body, n = params["body"], params["num_carried"]
        if name == "while_loop":
            found.add(f"while_loop carrying {min(n, 3)}")
            if any(e.op.name == "logical_and" for e in params["cond"].eqns):
                found.add("while_loop ending on the data too")
            if len(body.inputs) > n:
                found.add("while_loop with invariants")
            if params.get("max_trips", -1) >= 0:
                found.add("while_loop with max_trips")
            continue
        m = params["num_xs"]
        found.add(f"scan of {min(m, 2)} xs, {min(len(body.outputs) - n, 2)} ys")
        found |= {f"scan {k}" for k in ("reverse", "remat") if params[k]}
        if params["length"] == 0:
            found.add("scan of length 0")
        if len(body.inputs) > 1 + n + m:
            found.add("scan with invariants")
    if found and program.grad is not None:
        found.add("gradient")
    return found


def test_control_flow_is_generated_nested_and_in_every_form():
    programs = [generate(SEED, i) for i in range(1000)]
    seen = set().union(*(_control_features(p) for p in programs))
    want = {"cond at depth 0", "while_loop at depth 0", "scan at depth 0",
            "while_loop in cond", "scan in cond", "cond in while_loop", "cond in scan",
            "while_loop in while_loop", "scan in scan", "while_loop in scan",
            "cond of 2 branches", "cond of 3 branches",
            "while_loop carrying 2", "while_loop carrying 3", "while_loop with invariants",
            "while_loop ending on the data too", "while_loop with max_trips",
            "scan of 0 xs, 1 ys", "scan of 2 xs, 0 ys",
            "scan of 1 xs, 2 ys", "scan reverse", "scan remat", "scan of length 0",
            "scan with invariants", "gradient"}
    missing = want - seen
    # NOTE: the rarest forms come a few times in 1000 programs; an op added to the table
    # shifts every draw, so look further (up to 2000) for what the first 1000 lacked
    for i in range(1000, 2000):
        if not missing:
            break
        missing -= _control_features(generate(SEED, i))
    assert missing == set()
    assert not any(len(path) > 2 for p in programs for _, _, path in walk(p))
    # NOTE: a fraction of the programs, so the CI run costs about what it did
    share = sum(any(s.op in CONTROL for s in p.steps) for p in programs) / len(programs)
    assert 0.1 < share < 0.3, share


def test_regions_round_trip_through_the_rendered_source():
    checked = 0
    for i in range(300):
        program = generate(SEED, i)
        graphs = regions(program.steps)
        if not graphs:
            continue
        namespace: dict = {}
        exec(compile(program.source(), "<fuzz program>", "exec"), namespace)
        assert [namespace[f"R{k}"] for k in range(len(graphs))] == graphs
        checked += 1
    assert checked > 30


def test_minimizer_candidates_of_control_flow_programs_are_valid():
    programs = [p for p in (generate(SEED, i) for i in range(200))
                if any(s.op in CONTROL for s in p.steps)][:12]
    for p in programs:
        for q in candidates(prune(p)):
            q.types()
            load(q.source())


def test_depths_signs_of_zero_and_noise_reach_into_regions():
    import tracejit as tj

    def f(x, p):
        c, ys = tj.scan(lambda c, x: (c * 1.5 + x, tj.negative(c)), x[0], x)
        return tj.cond(p, lambda c: tj.exp(c), lambda c: tj.negative(c), c), ys

    x = np.linspace(-1, 1, 12).astype(np.float32).reshape(4, 3)
    g = _graph(f, x, np.bool_(True))
    assert depths(g)[0] >= 2 * 4 + 1        # two ops per iteration, four, then exp
    assert signed_zero_outputs(g) == [False, True]      # exp in a branch; neg
    for p in (np.bool_(True), np.bool_(False)):
        ref = [np.asarray(r) for r in tj.jit(f, executor="interpreter")(x, p)]
        moved = noisy_run(g, [x, p], np.random.default_rng(0), step=1)
        for a, b in zip(moved, ref, strict=True):
            assert a.shape == b.shape and np.allclose(a, b, rtol=1e-5)
        assert not np.array_equal(moved[0], ref[0])     # noise inside the loop body


def test_a_matmul_whose_terms_overflow_may_be_inf_or_nan():
    # seed 103 #12797: a loop grew float32 values to 1e26; NumPy's matmul (FMA) gave
    # -inf where the compiled one added +inf and -inf products: NaN. Terms far from
    # overflowing stay exact.
    import tracejit as tj
    a = np.array([[1e26, 1e26], [1.0, 2.0]], np.float32)
    b = np.array([[1e26, 1.0], [-3e26, 1.0]], np.float32)
    g = _graph(lambda x, y: (tj.matmul(x, y),), a, b)
    with np.errstate(all="ignore"):
        ref = [np.matmul(a, b)]                 # [[+-inf or NaN, 2e26], [-5e26, 3]]
    got = ref[0].copy()
    got[0, 0] = np.nan if np.isinf(got[0, 0]) else np.inf
    assert compare([got], ref, g, [a, b], 0) == []
    got[1, 1] = np.nan
    assert compare([got], ref, g, [a, b], 0)
