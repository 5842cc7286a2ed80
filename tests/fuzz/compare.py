"""Comparing compiled results with the reference interpreter's.

Exact: shapes, dtypes, integers and booleans, the positions of NaNs, infinities and
their signs, the sign of zeros where the op defines it (``SIGNED_ZERO_OPS``). Floats:
``|got - ref| <= rtol * |ref| + smallest_normal`` with
``rtol = 4 * eps(dtype) * (depth + 1)``, depth being the number of arithmetic ops on
the longest path from the inputs to that output.

That alone would report rounding as bugs: the CPU backend contracts ``a*b + c`` into
an FMA, reassociates sums, and its vector exp/log/tanh/... are 1-4 ulp from NumPy's.
After cancellation (``a*b - c`` near zero) or under a comparison, floor or argmax such
differences become large. So elements that fail the first test get a second opinion:
the program's graph is run again by the op table's reference implementations with
every rounding op's result perturbed by up to ``NOISE_ULPS`` ulps of its operands'
magnitude (``noisy_run``), several times. An element is excused only if the reference
itself moves that much under such perturbation: a float within 3x the spread the noisy
runs show, a NaN/inf/integer/bool difference where some noisy run also differs there.
Real bugs (wrong indices, stale buffers, wrong ops) differ where the program is stable,
so they are not excused.

Two more kinds of noisy run model what random noise rarely hits: ``STEPPED_RUNS`` move
every rounding op's result by exactly one or two ulps up or down (a correctly rounded
tanh is -1.0 where NumPy's is one ulp above, and pow of a negative base is NaN for the
latter only), and in every noisy run sums and products over axes are computed in
float64 and rounded once (the compiled code multiplies in another order, so a product
that overflows half-way in NumPy's order may not in its own, or the reverse); in the
stepped runs a product holding a zero whose other factors overflow is NaN (inf * 0 in
some order), and so is an element of a matmul or convolution whose terms' magnitudes
sum past the largest float (+inf, -inf, NaN or finite by the order of summation: NaN
in two stepped runs, the exact sum rounded once in the other two).

Control-flow ops are looked into: depths and defined signs of zero flow through their
regions (a branch's: any branch's; a loop's: iterated, a ``while_loop`` up to
``WHILE_TRIPS`` times), and a noisy run runs the regions noisily (the noise may change
a branch taken or a trip count where the program decides on a rounded value: the
reference then moves there too).
"""

from __future__ import annotations

import numpy as np

from tracejit.ir import dtypes as dt
from tracejit.ir.core import Graph
from tracejit.ir.opdef import Tag
from tracejit.ir.ops_control import branch_index

NOISE_ULPS = 4.0
NOISY_RUNS = 6
STEPPED_RUNS = (1, -1, 2, -2)
# Ops whose result is exactly determined by their operands (no rounding, no order of
# operations): they get no noise. Everything else producing floats may round
# differently in compiled code. (The op table has no tag for this.)
EXACT_OPS = frozenset({
    "neg", "abs", "relu", "sign", "floor", "ceil", "round", "maximum", "minimum",
    "select", "clip", "cast", "stop_gradient", "max", "min", "max_pool2d",
    "max_pool2d_select", "isnan", "isfinite", "one_hot",
})
# Ops whose zero results have a defined sign, so a result such an op produces is
# compared sign of zero included. maximum/minimum/relu/clip/max_pool2d order -0.0 below
# +0.0 (IEEE 754-2019, ops_elementwise.signed_maximum). Not the max/min reductions (for
# a -0.0/+0.0 tie the first in the compiled order wins) nor rounding arithmetic (a
# reassociated sum may give +0.0 where NumPy's order gives -0.0).
SIGNED_ZERO_OPS = frozenset({"neg", "abs", "sign", "floor", "ceil", "round", "select", "cast",
                             "max", "min",
                             "stop_gradient", "maximum", "minimum", "relu", "clip",
                             "max_pool2d"})
# Reductions that round: a noisy run computes them in float64 (see the module docstring).
WIDE_REDUCTIONS = frozenset({"sum", "prod", "mean"})
# Sums of products: where terms overflow, the order of summation decides between +inf,
# -inf and NaN (a float32 matmul in a loop that grew its values to 1e26: NumPy's FMA
# gave -inf, the compiled products +inf and -inf, so NaN: seed 103 #12797).
PRODUCT_SUMS = frozenset({"matmul", "conv2d", "conv2d_backprop_input",
                          "conv2d_backprop_filter"})
# The most iterations a while_loop without max_trips is assumed to run for depths (the
# generator's run at most 9: control.py), and the most a noisy run lets one run.
WHILE_TRIPS = 9
NOISY_TRIPS = 10_000


def eps(dtype: dt.DType) -> float:
    return float(np.finfo(dtype.np_dtype).eps)


def _flow(graph: Graph, values: list, rule, join, leaf) -> list:
    """A property of each value propagated from ``graph``'s inputs' ``values``:
    ``rule(eqn, ins)`` gives an equation's results' from its operands'; a control-flow
    op's is its regions' (``join`` of every branch's; a loop's carried values joined
    over the iterations). ``leaf``: the property of a scan's index."""
    env = {id(v): x for v, x in zip(graph.inputs, values, strict=True)}
    for eqn in graph.eqns:
        ins = [env[id(v)] for v in eqn.ins]
        if eqn.op.has(Tag.CONTROL_FLOW):
            outs = _flow_control(eqn, ins, rule, join, leaf)
        else:
            outs = [rule(eqn, ins)] * len(eqn.outs)
        env.update((id(v), x) for v, x in zip(eqn.outs, outs, strict=True))
    return [env[id(v)] for v in graph.outputs]


def _flow_control(eqn, ins: list, rule, join, leaf) -> list:
    params = eqn.params
    if eqn.op.has(Tag.BRANCH):
        each = [_flow(g, ins[1:], rule, join, leaf) for g in params["branches"]]
        return [_join_all(join, column) for column in zip(*each, strict=True)]
    n = params["num_carried"]
    scan = eqn.op.name == "scan"
    lead, trips = ([leaf], params["length"]) if scan else ([], _while_trips(params))
    carried, rest, ys = list(ins[:n]), list(ins[n:]), None
    for _ in range(trips):
        outs = _flow(params["body"], lead + carried + rest, rule, join, leaf)
        ys = outs[n:] if ys is None else [join(a, b) for a, b in zip(ys, outs[n:], strict=True)]
        new = [join(a, b) for a, b in zip(carried, outs[:n], strict=True)]
        if new == carried:          # the next iterations give the same
            break
        carried = new
    return carried + (ys if ys is not None else [leaf] * (len(eqn.outs) - n))


def _while_trips(params) -> int:
    bound = params.get("max_trips", -1)
    return WHILE_TRIPS if bound < 0 else min(bound, WHILE_TRIPS)


def _join_all(join, items):
    out = items[0]
    for item in items[1:]:
        out = join(out, item)
    return out


def _defines_sign(eqn, ins: list[bool]) -> bool:
    if eqn.op.has(Tag.MOVEMENT):
        return all(ins)
    return eqn.op.name in SIGNED_ZERO_OPS


def signed_zero_outputs(graph: Graph) -> list[bool]:
    """For each output, whether the sign of its zeros is checked: inputs, results of
    the ops above, and movement ops (pad, reshape, ...) of such values only."""
    return _flow(graph, [True] * len(graph.inputs), _defines_sign,
                 lambda a, b: a and b, True)


def _depth(eqn, ins: list[int]) -> int:
    step = 0 if (eqn.op.has(Tag.MOVEMENT) or eqn.op.has(Tag.CREATION)) else 1
    return max(ins, default=0) + step


def depths(graph: Graph) -> list[int]:
    """For each output, the number of arithmetic equations on its longest input path
    (through every iteration of a loop)."""
    return _flow(graph, [0] * len(graph.inputs), _depth, max, 0)


# ---- the noisy reference ---------------------------------------------------------------

def _magnitude(eqn, ins, out: np.ndarray) -> np.ndarray:
    """The size of the rounding error an implementation may make in ``out``, in units of
    eps: operands' magnitudes for elementwise ops; the op on |operands| (sum|x|, |a|@|b|)
    times a log of the number of terms for reductions, matmuls and convolutions."""
    mag = np.abs(out.astype(np.float64))
    floats = [np.abs(np.asarray(a, np.float64)) for a in ins
              if dt.as_dtype(a.dtype).is_float]
    if eqn.op.has(Tag.ELEMENTWISE):
        for a in floats:
            mag = np.maximum(mag, np.broadcast_to(a, out.shape))
        return mag
    try:
        absolute = [np.abs(a) if dt.as_dtype(a.dtype).is_float else a for a in ins]
        (bound,) = eqn.op.evaluate(absolute, eqn.params)[:1]
        bound = np.abs(np.asarray(bound, np.float64))
    except Exception:           # an op that cannot take |operands|: the largest operand
        bound = np.full(out.shape, max((float(np.max(a, initial=0)) for a in floats),
                                       default=0.0))
    terms = max(1, sum(int(a.size) for a in ins) // max(1, int(out.size)))
    return np.maximum(mag, bound) * (1.0 + np.log2(1.0 + terms))


def _step(out: np.ndarray, ulps: int) -> np.ndarray:
    """``out`` moved by exactly ``ulps`` units in the last place (zeros, NaNs and
    infinities stay)."""
    toward = np.array(np.inf if ulps > 0 else -np.inf, out.dtype)
    moved = out
    for _ in range(abs(ulps)):
        moved = np.nextafter(moved, toward)
    return np.where(np.isfinite(out) & (out != 0), moved, out).astype(out.dtype)


def _perturb(eqn, ins, out: np.ndarray, rng: np.random.Generator,
             step: int = 0) -> np.ndarray:
    dtype = dt.as_dtype(out.dtype)
    if not dtype.is_float or eqn.op.name in EXACT_OPS or eqn.op.has(Tag.MOVEMENT) \
            or eqn.op.has(Tag.CREATION) or out.size == 0:
        return out
    if step:
        with np.errstate(all="ignore"):
            return _step(out, step)
    with np.errstate(all="ignore"):
        mag = _magnitude(eqn, ins, out)
        mag = np.where(np.isfinite(mag), mag, 0.0)
        noise = rng.uniform(-1.0, 1.0, size=out.shape) * NOISE_ULPS * eps(dtype) * mag
        wide = out.astype(np.float64)
        moved = np.where(np.isfinite(wide), wide + noise, wide)
    return moved.astype(out.dtype)


def _evaluate(eqn, ins: list[np.ndarray], step: int = 0) -> list[np.ndarray]:
    """The reference's results, float sums and products over axes computed in float64
    and rounded once. In the stepped runs a product that holds a zero and whose other
    factors overflow the dtype is NaN: in some order of multiplication it is inf * 0;
    so is a matmul's or convolution's element whose terms' magnitudes sum beyond the
    largest float (of its accumulator): +inf, -inf or NaN by the order of summation."""
    if eqn.op.name in WIDE_REDUCTIONS and ins and dt.as_dtype(ins[0].dtype).is_float:
        wide_in = np.asarray(ins[0], np.float64)
        wide = [np.asarray(w) for w in eqn.op.evaluate([wide_in, *ins[1:]], eqn.params)]
        if eqn.op.name == "prod" and step:
            big = eqn.op.evaluate([np.where(wide_in == 0, 1.0, np.abs(wide_in))], eqn.params)
            zero = eqn.op.evaluate([np.where(wide_in == 0, 0.0, 1.0)], eqn.params)
            limit = float(np.finfo(ins[0].dtype).max)
            wide[0] = np.where((np.asarray(big[0]) > limit) & (np.asarray(zero[0]) == 0),
                               np.nan, wide[0])
        return [w.astype(ins[0].dtype) for w in wide]
    outs = [np.asarray(o) for o in eqn.op.evaluate(ins, eqn.params)]
    if step and eqn.op.name in PRODUCT_SUMS and dt.as_dtype(outs[0].dtype).is_float:
        dtype = dt.as_dtype(outs[0].dtype)
        limit = float(np.finfo(np.float32 if dtype.is_half else dtype.np_dtype).max)
        wide = [np.asarray(a, np.float64) for a in ins]
        bound = np.asarray(eqn.op.evaluate([np.abs(a) for a in wide], eqn.params)[0])
        # NOTE: NaN in two runs, the sum rounded once (finite or an infinity) in two
        exact = np.nan if step > 0 else np.asarray(eqn.op.evaluate(wide, eqn.params)[0])
        outs[0] = np.where(bound > limit, exact, outs[0]).astype(outs[0].dtype)
    return outs


def noisy_run(graph: Graph, args, rng: np.random.Generator,
              step: int = 0) -> list[np.ndarray]:
    """The graph run by the reference implementations, each rounding op's result moved
    by a few random ulps, or by exactly ``step`` ulps (see the module docstring)."""
    env = {id(v): np.asarray(a) for v, a in zip(graph.inputs, args, strict=True)}
    with np.errstate(all="ignore"):
        for eqn in graph.eqns:
            ins = [env[id(v)] for v in eqn.ins]
            if eqn.op.has(Tag.CONTROL_FLOW):
                outs = _noisy_control(eqn, ins, rng, step)
            else:
                outs = [_perturb(eqn, ins, o, rng, step) for o in _evaluate(eqn, ins, step)]
            env.update((id(v), o) for v, o in zip(eqn.outs, outs, strict=True))
    return [env[id(v)] for v in graph.outputs]


def _noisy_control(eqn, ins: list[np.ndarray], rng, step: int) -> list[np.ndarray]:
    """A control-flow op as ops_control defines it, its regions run noisily."""
    params = eqn.params

    def run(graph, values):
        return noisy_run(graph, values, rng, step)

    if eqn.op.has(Tag.BRANCH):
        branches = params["branches"]
        return run(branches[branch_index(ins[0], len(branches))], ins[1:])
    n = params["num_carried"]
    carried = list(ins[:n])
    if eqn.op.name == "while_loop":
        rest = list(ins[n:])
        bound = params.get("max_trips", -1)
        for _ in range(NOISY_TRIPS if bound < 0 else bound):
            if not bool(run(params["cond"], carried + rest)[0]):
                break
            carried = run(params["body"], carried + rest)
        return carried
    length, m = params["length"], params["num_xs"]
    xs, rest = ins[n:n + m], list(ins[n + m:])
    ys = [np.empty((length, *v.type.shape), v.type.dtype.np_dtype)
          for v in params["body"].outputs[n:]]
    for i in range(length - 1, -1, -1) if params["reverse"] else range(length):
        outs = run(params["body"], [np.int32(i), *carried, *(x[i] for x in xs), *rest])
        carried = outs[:n]
        for y, value in zip(ys, outs[n:], strict=True):
            y[i] = value
    return carried + ys


# ---- element checks ----------------------------------------------------------------------

def _bad_elements(got: np.ndarray, ref: np.ndarray, rtol: float,
                  spread: np.ndarray | None, status_moves: np.ndarray | None,
                  signed_zeros: bool = False) -> np.ndarray:
    """Mask of elements that differ beyond tolerance."""
    dtype = dt.as_dtype(ref.dtype)
    if not dtype.is_float:
        bad = got != ref
        if spread is not None:
            diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
            bad &= ~(status_moves & (diff <= 2.0 * spread))
        return bad
    g, r = got.astype(np.float64), ref.astype(np.float64)
    with np.errstate(all="ignore"):
        nan_bad = np.isnan(g) != np.isnan(r)
        inf_bad = (np.isinf(g) | np.isinf(r)) & ~(g == r) & ~(np.isnan(g) & np.isnan(r))
        finite = np.isfinite(g) & np.isfinite(r)
        atol = float(np.finfo(ref.dtype).smallest_normal)
        limit = rtol * np.abs(r) + atol
        if spread is not None:
            limit = limit + 3.0 * np.where(np.isfinite(spread), spread, np.inf)
        value_bad = finite & ~(np.abs(g - r) <= limit)
        if spread is not None:
            # a finite value within the noise of the largest finite one overflows in
            # another summation order (a bfloat16 matmul's float32 partial sums: seed
            # 5000 #54136); an infinity of its sign is then as right as it
            one_inf = np.isinf(g) != np.isinf(r)
            near = np.abs(np.where(np.isinf(g), r, g))
            reach = near + 3.0 * np.where(np.isfinite(spread), spread, np.inf)
            inf_bad &= ~(one_inf & (reach >= float(np.finfo(ref.dtype).max))
                         & (np.sign(g) == np.sign(r)))
        if signed_zeros:
            value_bad |= (g == 0) & (r == 0) & (np.signbit(g) != np.signbit(r))
    status_bad = nan_bad | inf_bad
    if status_moves is not None:
        status_bad &= ~status_moves
    return status_bad | value_bad


def _spread(ref: np.ndarray, noisy: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise largest move of the noisy runs from the reference, and where some run
    changed an element's kind (NaN, inf, or an integer/bool value)."""
    r = ref.astype(np.float64)
    spread = np.zeros(ref.shape)
    moves = np.zeros(ref.shape, dtype=bool)
    with np.errstate(all="ignore"):
        for n in noisy:
            x = n.astype(np.float64)
            if dt.as_dtype(ref.dtype).is_float:
                kind = (np.isnan(x) != np.isnan(r)) | ((np.isinf(x) | np.isinf(r)) & (x != r))
                kind &= ~(np.isnan(x) & np.isnan(r))
                moves |= kind
                both = np.isfinite(x) & np.isfinite(r)
                spread = np.maximum(spread, np.where(both, np.abs(x - r),
                                                     np.where(kind, np.inf, 0)))
            else:
                moves |= x != r
                spread = np.maximum(spread, np.abs(x - r))
    return spread, moves


def compare(got: list, ref: list, graph: Graph, args, seed: int) -> list[str]:
    """Problems found comparing compiled results ``got`` with the reference's ``ref``;
    empty when they agree. ``graph`` and ``args`` are rerun noisily on a first failure."""
    if len(got) != len(ref):
        return [f"{len(got)} results, the reference gives {len(ref)}"]
    problems, suspects = [], []
    strict = signed_zero_outputs(graph)
    rtols = [4.0 * eps(dt.as_dtype(r.dtype)) * (d + 1) if dt.as_dtype(r.dtype).is_float else 0.0
             for r, d in zip(ref, depths(graph), strict=True)]
    for i, (g, r) in enumerate(zip(got, ref, strict=True)):
        g = np.asarray(g)
        if g.shape != r.shape or g.dtype != r.dtype:
            problems.append(f"result {i}: {g.dtype}{list(g.shape)}, the reference gives "
                            f"{r.dtype}{list(r.shape)}")
        elif _bad_elements(g, r, rtols[i], None, None, strict[i]).any():
            suspects.append(i)
    if not suspects:
        return problems
    rng = np.random.default_rng([seed, 7])
    runs = [noisy_run(graph, args, rng) for _ in range(NOISY_RUNS)]
    runs += [noisy_run(graph, args, rng, step) for step in STEPPED_RUNS]
    for i in suspects:
        g, r = np.asarray(got[i]), ref[i]
        spread, moves = _spread(r, [run[i] for run in runs])
        bad = _bad_elements(g, r, rtols[i], spread, moves, strict[i])
        if bad.any():
            problems.append(describe(i, g, r, bad, spread))
    return problems


def describe(i: int, got: np.ndarray, ref: np.ndarray, bad: np.ndarray,
             spread: np.ndarray) -> str:
    where = np.argwhere(bad)
    lines = [f"result {i} ({ref.dtype}{list(ref.shape)}): {len(where)} of {ref.size} "
             "elements differ"]
    for idx in where[:4]:
        t = tuple(int(k) for k in idx)
        lines.append(f"  at {list(t)}: compiled {got[t]!r}, reference {ref[t]!r}, "
                     f"noise spread {float(spread[t]):.3g}")
    if ref.size <= 24:
        lines.append(f"  compiled  {np.array2string(got.reshape(-1), precision=6)}")
        lines.append(f"  reference {np.array2string(ref.reshape(-1), precision=6)}")
    return "\n".join(lines)
