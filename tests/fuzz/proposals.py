"""Random parameter values and leaf operands, proposed by parameter name.

The generator knows ops only through the op table: arity, tags and the names of their
parameters. For each parameter name there is a proposer here; the op's own shape rule
(``OpDef.infer_types``) then accepts or rejects the proposal, and the generator retries.
So ``axes`` is proposed the same way for ``sum``, ``squeeze`` and ``reverse``: some
proposals are valid for one op and not another, and the table decides. An op with a
parameter name that has no proposer is not generated (``test_fuzz`` lists such ops, so
a new op in the table is noticed).
"""

from __future__ import annotations

import numpy as np

from tracejit.ir import dtypes as dt
from tracejit.ir.core import TensorType
from tracejit.ir.opdef import REQUIRED

# Sizes around the CPU's vector widths (16 float32 lanes with AVX-512, 8 with AVX2):
# remainders and single-iteration loops are where loop nests go wrong.
DIMS = (1, 1, 2, 3, 4, 5, 7, 8, 16, 17)
INPUT_DTYPES = ((dt.float32, 50), (dt.float64, 8), (dt.float16, 8), (dt.bfloat16, 8),
                (dt.int32, 10), (dt.int64, 5), (dt.int8, 4), (dt.uint8, 4), (dt.bool_, 3))
FLOAT_SPECIALS = (0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan)
FILL_VALUES = (0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0, np.inf, np.nan)
MAX_SIZE = 2048


def pick(rng: np.random.Generator, items):
    items = tuple(items)
    return items[int(rng.integers(len(items)))]


def weighted(rng: np.random.Generator, pairs):
    values, weights = zip(*pairs, strict=True)
    w = np.asarray(weights, dtype=np.float64)
    return values[int(rng.choice(len(values), p=w / w.sum()))]


def random_shape(rng, max_rank: int = 3, dims=DIMS) -> tuple[int, ...]:
    rank = int(rng.choice(max_rank + 1, p=_rank_weights(max_rank)))
    while True:
        shape = tuple(pick(rng, dims) for _ in range(rank))
        if int(np.prod(shape, dtype=np.int64)) <= 512:
            return shape


def _rank_weights(max_rank: int):
    w = np.array([1.0, 3.0, 4.0, 2.0, 1.0][:max_rank + 1])
    return w / w.sum()


# ---- argument values -----------------------------------------------------------------------

class ValueStyle:
    """How one program's arrays are drawn: a scale, and whether special values appear."""

    def __init__(self, rng: np.random.Generator):
        self.scale = pick(rng, (0.5, 1.0, 3.0))
        self.specials = float(rng.random() < 0.3) * 0.12
        self.int_extremes = rng.random() < 0.15

    def array(self, rng: np.random.Generator, t: TensorType) -> np.ndarray:
        shape, dtype = t.shape, t.dtype
        if dtype.is_bool:
            return rng.random(shape) < 0.5
        if dtype.is_integer:
            info = np.iinfo(dtype.np_dtype)
            lo = max(int(info.min), -6)
            values = rng.integers(lo, 7, size=shape)
            if self.int_extremes:
                ends = np.array([info.min, info.max, 0, 1], dtype=np.int64)
                values = np.where(rng.random(shape) < 0.2, rng.choice(ends, size=shape), values)
            return values.astype(dtype.np_dtype)
        values = rng.normal(0.0, self.scale, size=shape)
        if self.specials:
            extra = rng.choice(np.array(FLOAT_SPECIALS), size=shape)
            values = np.where(rng.random(shape) < self.specials, extra, values)
        return np.asarray(values).astype(dtype.np_dtype)


# ---- parameters --------------------------------------------------------------------------

def _ndim(in_types) -> int:
    return in_types[0].ndim if in_types else 0


def _axes(rng, in_types, params, opdef):
    t = in_types[0] if in_types else TensorType((), dt.float32)
    n = t.ndim
    mode = pick(rng, ("all", "subset", "subset", "ones", "insert", "negative"))
    if mode == "all":
        return tuple(range(n))
    if mode == "ones":
        ones = [i for i, d in enumerate(t.shape) if d == 1]
        return tuple(sorted(rng.choice(ones, size=int(rng.integers(1, len(ones) + 1)),
                                       replace=False).tolist())) if ones else ()
    if mode == "insert":                        # expand_dims: positions in the output
        k = int(rng.integers(1, 3))
        return tuple(sorted(rng.choice(n + k, size=k, replace=False).tolist()))
    chosen = [i for i in range(n) if rng.random() < 0.5]
    if mode == "negative":
        return tuple(i - n for i in chosen)
    return tuple(chosen)


def _axis(rng, in_types, params, opdef):
    n = _ndim(in_types)
    return int(rng.integers(-n - 1, n + 1)) if n else pick(rng, (0, -1))


def _shape(rng, in_types, params, opdef):
    if not in_types or in_types[0].size == 0 and rng.random() < 0.5:
        return random_shape(rng)
    t = in_types[0]
    if rng.random() < 0.5:                      # a reshape: the same elements regrouped
        factors = _prime_factors(t.size)
        rng.shuffle(factors)
        shape, i = [], 0
        while i < len(factors):
            take = int(rng.integers(1, 3))
            shape.append(int(np.prod(factors[i:i + take])))
            i += take
        for _ in range(int(rng.integers(0, 2))):
            shape.insert(int(rng.integers(0, len(shape) + 1)), 1)
        return tuple(shape)
    shape = [pick(rng, DIMS) if d == 1 and rng.random() < 0.6 else d for d in t.shape]
    lead = [pick(rng, (1, 2, 3, 4)) for _ in range(int(rng.integers(0, 3)))]
    return tuple(lead + shape)                  # a broadcast: size-1 axes and new axes grow


def _prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while n > 1 and p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out + ([n] if n > 1 else [])


def _perm(rng, in_types, params, opdef):
    return tuple(int(i) for i in rng.permutation(_ndim(in_types)))


def _reps(rng, in_types, params, opdef):
    return tuple(pick(rng, (1, 1, 2, 3, 0)) for _ in range(_ndim(in_types)))


def _slice(rng, in_types, params, opdef):
    """starts, limits and strides together (they are one choice)."""
    starts, limits, strides = [], [], []
    for d in in_types[0].shape if in_types else ():
        lo = int(rng.integers(0, d + 1)) if rng.random() < 0.6 else 0
        hi = int(rng.integers(lo, d + 1)) if rng.random() < 0.6 else d
        starts.append(lo)
        limits.append(hi)
        strides.append(pick(rng, (1, 1, 2, 3)))
    params["limits"], params["strides"] = tuple(limits), tuple(strides)
    return tuple(starts)


def _pad_widths(rng, in_types, params, opdef):
    return tuple(pick(rng, (0, 0, 1, 2)) for _ in range(_ndim(in_types)))


def _dtype(rng, in_types, params, opdef):
    if in_types and rng.random() < 0.5:
        return in_types[-1].dtype               # one_hot's values fix its dtype
    return pick(rng, dt.ALL_DTYPES)


def _pair(rng, in_types, params, opdef):
    return (pick(rng, (1, 1, 2)), pick(rng, (1, 1, 2)))


def _window(rng, in_types, params, opdef):
    return (pick(rng, (1, 2, 3)), pick(rng, (1, 2, 3)))


def _pads(rng, in_types, params, opdef):
    return tuple(pick(rng, (0, 0, 1)) for _ in range(4))


def _dimension(rng, in_types, params, opdef):
    rank = len(params.get("shape", ()))
    return int(rng.integers(0, rank)) if rank else 0


def _value(rng, in_types, params, opdef):
    if "dtype" in params:                       # fill: a scalar its dtype holds
        dtype = params["dtype"]
        if dtype.is_bool:
            return bool(rng.random() < 0.5)
        if dtype.is_integer:
            return int(pick(rng, (0, 1, 2, 3, -1 if dtype != dt.uint8 else 5)))
        return float(pick(rng, FILL_VALUES))
    t = TensorType(random_shape(rng, 2), weighted(rng, INPUT_DTYPES))
    return ValueStyle(rng).array(rng, t)        # constant: a small array


PROPOSERS = {
    "axes": _axes, "keepdims": lambda rng, *a: bool(rng.random() < 0.5),
    "axis": _axis, "index_dtype": lambda rng, *a: pick(rng, (dt.int32, dt.int64)),
    "dtype": _dtype, "shape": _shape, "perm": _perm, "reps": _reps,
    "starts": _slice, "low": _pad_widths, "high": _pad_widths,
    "depth": lambda rng, *a: int(rng.integers(0, 7)),
    "transpose_a": lambda rng, *a: bool(rng.random() < 0.3),
    "transpose_b": lambda rng, *a: bool(rng.random() < 0.3),
    "ksize": _window, "strides": _pair, "dilations": _pair, "pads": _pads,
    "dimension": _dimension, "value": _value,
    "exclusive": lambda rng, *a: bool(rng.random() < 0.5),
    "reverse": lambda rng, *a: bool(rng.random() < 0.5),
    "descending": lambda rng, *a: bool(rng.random() < 0.7),
    "k": lambda rng, in_types, *a: int(rng.integers(0, in_types[0].shape[-1] + 1))
    if in_types and in_types[0].shape else 0,
}
# NOTE: proposed after the others, because they depend on them (iota's dimension on its
# shape, fill's value on its dtype); slice's "limits" and "strides" come with "starts".
DEFERRED = ("dimension", "value")


def propose_params(rng, opdef, in_types) -> dict | None:
    """Random values for every parameter of ``opdef``; None if one has no proposer."""
    if unsupported_params(opdef):
        return None
    params: dict = {}
    names = [n for n in opdef.params if n not in DEFERRED] + \
            [n for n in opdef.params if n in DEFERRED]
    for name in names:
        if name not in params:
            params[name] = PROPOSERS[name](rng, in_types, params, opdef)
    # NOTE: optional parameters are sometimes left to their defaults, which is how most
    # user code calls them.
    for name, spec in opdef.params.items():
        if spec.default is not REQUIRED and rng.random() < 0.3:
            del params[name]
    return params


def unsupported_params(opdef) -> list[str]:
    """Parameter names of ``opdef`` nothing here can propose."""
    return [n for n in opdef.params if n not in PROPOSERS and n != "limits"]
