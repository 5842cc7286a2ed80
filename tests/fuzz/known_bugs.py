"""Programs that failed under the fuzzer (or were reported before it existed), in the
fuzzer's source format, so test_known_bugs.py checks them through the same runner and
comparison. Each entry: a name, the failure it showed, whether it is still open, and
the source. The first four were reported before the fuzzer existed and fixed in
e0db14d; the fuzzer finds failures of their kinds on the tree before that commit (see
docs/testing.md). When a bug is fixed, set ``open=False``: the program then guards
against the regression.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .program import Program

HEADER = """import numpy as np
import tracejit as tj
from tests.fuzz.program import arr, inf, nan, op, region  # noqa: F401
DONATE = ()
GEMM = 'auto'
"""


def _scatter_add_bool(p: Program) -> bool:
    types = p.types()
    return any(s.op == "scatter_add" and types[s.out].dtype.is_bool for s in p.steps)


def _scatter_add_negative_axis(p: Program) -> bool:
    return any(s.op == "scatter_add" and s.params["axis"] < 0 for s in p.steps)


@dataclass(frozen=True)
class KnownBug:
    name: str
    status: str          # what the fuzzer reports while the bug is open
    open: bool
    body: str
    # NOTE: while a bug is open, random programs that have its feature (e.g. a
    # scatter_add on bools) and fail are reported as "known", not as new failures;
    # narrow on purpose, and unused once the bug is closed.
    matches: Callable[[Program], bool] | None = None

    @property
    def source(self) -> str:
        return HEADER + self.body


KNOWN_BUGS = [
    KnownBug("matmul_epilogue_side_output", "mismatch", False, """
def main(a, g, c, b):
    h = tj.tanh(a)
    return (g @ c) * h, h @ b

rng = np.random.default_rng(1)
ARGS = [rng.normal(size=s).astype(np.float32) for s in ((4, 3), (4, 5), (5, 3), (3, 2))]
ARGS2 = [rng.normal(size=a.shape).astype(np.float32) for a in ARGS]
"""),
    KnownBug("inplace_gather_neg_reshape", "mismatch", False, """
def main(c, w):
    e = -tj.gather(c, [1, 0, 3, 2], axis=0)
    return tj.reshape(e, [3, 4]) + 1.0, e @ w

rng = np.random.default_rng(2)
ARGS = [rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(3, 2)).astype(np.float32)]
ARGS2 = [rng.normal(size=a.shape).astype(np.float32) for a in ARGS]
"""),
    KnownBug("floordiv_broadcast_reduce_hang", "hang", False, """
def main(x, d):
    v = tj.floordiv(tj.broadcast_to(x, [5, 17]), d)
    return v, tj.reduce_sum(v, axis=1)

ARGS = [np.array([3.0], np.float32), np.array([[2.0]], np.float32)]
ARGS2 = [np.array([-7.5], np.float32), np.array([[0.5]], np.float32)]
"""),
    KnownBug("sign_negative_zero", "mismatch", False, """
def main(x):
    return (tj.sign(x),)

ARGS = [np.array([-0.0, 0.0, 1.5, -2.0, np.nan], np.float32)]
ARGS2 = [np.array([-0.0, -0.0, 0.0, np.inf, -np.inf], np.float32)]
"""),
    # Found by the fuzzer (seed 0): scatter_add on bool operands adds with wrap-around
    # (True + True = False) where the reference's np.add.at is a logical or. Fixed in
    # b60f10c (bools accumulate with or).
    KnownBug("scatter_add_bool_wraps", "mismatch", False, """
def main(x, idx, upd):
    return (op('scatter_add', x, idx, upd, axis=0),)

ARGS = [np.array([True, True, False, False, True]), np.array([0, 1, 1], np.int32),
        np.array([True, True, True])]
ARGS2 = [np.array([True, False, True, False, True]), np.array([4, 2, 4], np.int32),
         np.array([True, True, True])]
""", _scatter_add_bool),
    # Found by the fuzzer (seed 0 index 811): scatter_add with a negative axis scattered
    # into the wrong positions (the lowering used the param unnormalized). Fixed in
    # b60f10c: the IR takes only the canonical axis (the front end resolves -1, as for
    # gather), so the guard is the last axis written as the front end writes it.
    KnownBug("scatter_add_negative_axis", "mismatch", False, """
def main(x, idx, upd):
    return (op('scatter_add', x, idx, upd, axis=len(x.shape) - 1),)

ARGS = [np.array([0.3855, 0.226, 0.6875, 0.581], np.float32), np.array([0, 1, 1, 3]),
        np.array([-0.513, -0.1866, 0.1183, 0.887], np.float32)]
ARGS2 = [np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), np.array([1, 1, 0]),
         np.array([[0.5, 0.25, 8.0], [1.0, 2.0, 4.0]], np.float32)]
""", _scatter_add_negative_axis),
    # Found by the fuzzer (seed 1000 index 124): float64 sin/cos returned NaN from
    # |x| >= 2^51, NumPy the exact value. Fixed by the float64 Payne-Hanek reduction.
    KnownBug("sin_cos_float64_beyond_2_pow_51", "mismatch", False, """
def main(x):
    return (tj.sin(x), tj.cos(x))

ARGS = [np.array([9.223372036854776e18, 2.0 ** 51, 1e300, 3.0], np.float64)]
ARGS2 = [np.array([-2.0 ** 60, 2.0 ** 52 + 1, 0.5, -1e17], np.float64)]
"""),
]


def explain(task: dict) -> str | None:
    """The open known bug a failing generated program has the feature of, if any."""
    if "index" not in task:
        return None
    from .generate import generate
    program = generate(task["seed"], task["index"], task.get("max_steps", 8))
    for bug in KNOWN_BUGS:
        if bug.open and bug.matches is not None and bug.matches(program):
            return bug.name
    return None
