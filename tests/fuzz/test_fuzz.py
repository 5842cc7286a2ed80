"""The differential fuzzer in CI: 2,000 random programs (seed 0, indices 0..1999) compiled
for the CPU and compared with the reference interpreter, in four shards so that
pytest-xdist spreads them; plus the fuzzer's own machinery.

``TRACEJIT_FUZZ_SEED`` and ``TRACEJIT_FUZZ_PROGRAMS`` (per shard) change the run. A
failure prints each program's source and the command that reruns it; see
docs/testing.md.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from tracejit.ir.ops import OPS

from .compare import compare
from .generate import EXCLUDED, generate, generated_ops
from .known_bugs import KNOWN_BUGS, explain
from .minimize import candidates, prune
from .program import load
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
    seen = {s.op for i in range(3000) for s in generate(SEED, i).steps}
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
