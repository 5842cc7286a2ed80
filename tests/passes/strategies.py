"""Hypothesis strategies for random IR programs, built with GraphBuilder so that every
generated graph is valid by construction (the op table infers and checks each type).

Every value in a program's pool has a shape that broadcasts against the program's base
shape (each axis is the base's size or 1, right-aligned), so any two pool values are
operands of a binary op. Values of other shapes (a reduction without keepdims, a
transpose) are made on the way and brought back by a reshape or a second transpose,
which is the movement the passes must handle. The mix is biased towards what the passes
rewrite: constants (0, 1, -0.0, powers of two), double negations, transpose and reshape
chains, repeated subexpressions, dead values, matmuls with epilogues.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tracejit.ir import GraphBuilder, ops
from tracejit.ir import dtypes as dt
from tracejit.ir.core import Graph, TensorType, Var

FLOAT_UNARY = ("neg", "abs", "exp", "tanh", "sigmoid", "relu", "sin", "log", "sqrt",
               "square", "reciprocal", "floor", "expm1", "stop_gradient")
INT_UNARY = ("neg", "abs", "sign", "square", "relu")
FLOAT_BINARY = ("add", "sub", "mul", "div", "maximum", "minimum", "pow")
INT_BINARY = ("add", "sub", "mul", "maximum", "minimum", "div", "mod")
COMPARISONS = ("less", "greater_equal", "equal", "not_equal")
REDUCTIONS = ("sum", "max", "min", "mean", "prod", "argmax")
SPECIAL_CONSTANTS = (0.0, 1.0, -1.0, 2.0, 0.5, 0.25, 3.0, -0.0, 4.0)
STEP_KINDS = ("unary", "binary", "binary", "constant", "constant", "compare", "cast",
              "reduce", "reduce", "transpose", "reshape", "broadcast", "matmul",
              "neg_neg", "duplicate", "dead", "fold")
INPUT_DTYPES = (dt.float32, dt.float32, dt.float32, dt.float64, dt.int32)
CAST_TARGETS = (dt.float32, dt.float64, dt.int32, dt.float16, dt.bfloat16)


class Program:
    """A graph and arguments for it; prints as IR when hypothesis reports a failure."""

    def __init__(self, graph: Graph, args: list[np.ndarray]):
        self.graph = graph
        self.args = args

    def __repr__(self) -> str:
        return f"Program(\n{self.graph}\n)"


def _random_array(rng: np.random.Generator, type_: TensorType, specials: bool):
    shape, dtype = type_.shape, type_.dtype
    if dtype.is_integer:
        return rng.integers(-5, 6, size=shape).astype(dtype.np_dtype)
    values = rng.normal(0, 2, size=shape)
    if specials and values.size:
        pick = rng.random(shape) < 0.15
        extra = rng.choice(np.array([0.0, -0.0, 1.0, np.inf, -np.inf, np.nan]), size=shape)
        values = np.where(pick, extra, values)
    return values.astype(dtype.np_dtype)


class _Gen:
    def __init__(self, draw, max_steps: int):
        self.draw = draw
        self.b = GraphBuilder("random")
        ndim = draw(st.integers(1, 3))
        self.base = tuple(draw(st.lists(st.sampled_from((1, 2, 3, 4)), min_size=ndim,
                                         max_size=ndim)))
        self.pool: list[Var] = []
        self.steps = draw(st.integers(1, max_steps))

    def fits(self, shape) -> bool:
        """``shape`` broadcasts against the base shape, axis by axis from the right."""
        if len(shape) > len(self.base):
            return False
        tail = self.base[len(self.base) - len(shape):]
        return all(d in (1, b) for d, b in zip(shape, tail, strict=True))

    def sub_shape(self) -> tuple[int, ...]:
        k = self.draw(st.integers(0, len(self.base)))
        tail = self.base[len(self.base) - k:]
        return tuple(d if self.draw(st.booleans()) else 1 for d in tail)

    def new_input(self, shape=None, dtype=None) -> Var:
        shape = self.sub_shape() if shape is None else shape
        dtype = self.choose(INPUT_DTYPES) if dtype is None else dtype
        return self.b.add_input(TensorType(tuple(shape), dtype))

    def emit(self, name: str, ins, **params) -> Var:
        return self.b.emit1(ops.OPS[name], ins, params)

    def choose(self, items):
        """One of ``items``. NOTE: an index draw is much cheaper for hypothesis than a
        new sampled_from strategy per call."""
        items = tuple(items)
        return items[self.draw(st.integers(0, len(items) - 1))]

    def pick(self, pred=lambda v: True) -> Var | None:
        found = [v for v in self.pool if pred(v)]
        return self.choose(found) if found else None

    def cast(self, v: Var, dtype) -> Var:
        return v if v.dtype == dtype else self.emit("cast", [v], dtype=dtype)

    def constant(self, dtype, shape=()) -> Var:
        value = self.choose(SPECIAL_CONSTANTS)
        if dtype.is_integer:
            value = int(abs(value)) if value != -1.0 else -1
        if shape and self.draw(st.booleans()):
            return self.emit("fill", [], shape=shape, value=value, dtype=dtype)
        return self.emit("constant", [], value=np.asarray(value, dtype.np_dtype))

    def numeric(self) -> Var:
        v = self.pick(lambda v: not v.dtype.is_bool)
        return v if v is not None else self.cast(self.pick(), dt.float32)

    def step(self, kind: str) -> Var | None:
        draw = self.draw
        v = self.numeric()
        floating = v.dtype.is_float
        if kind == "unary":
            return self.emit(self.choose(FLOAT_UNARY if floating else INT_UNARY), [v])
        if kind in ("binary", "constant"):
            other = (self.pick(lambda u: u.dtype == v.dtype) if kind == "binary"
                     else self.constant(v.dtype, self.base))
            name = self.choose(FLOAT_BINARY if floating else INT_BINARY)
            pair = [v, other] if draw(st.booleans()) else [other, v]
            return self.emit(name, pair)
        if kind == "compare":
            other = self.pick(lambda u: u.dtype == v.dtype)
            cond = self.emit(self.choose(COMPARISONS), [v, other])
            if draw(st.booleans()):
                return self.emit("select", [cond, v, self.pick(lambda u: u.dtype == v.dtype)])
            return self.emit("cast", [cond], dtype=v.dtype)
        if kind == "cast":
            return self.cast(v, self.choose(CAST_TARGETS))
        if kind == "reduce":
            return self.reduce(v)
        if kind == "transpose" and v.type.ndim >= 2:
            perm = tuple(draw(st.permutations(range(v.type.ndim))))
            t = self.emit("transpose", [v], perm=perm)
            if draw(st.booleans()):
                t = self.emit("neg", [t]) if v.dtype != dt.uint8 else t
            back = tuple(int(i) for i in np.argsort(perm))
            return self.emit("transpose", [t], perm=back)
        if kind == "reshape":
            flat = self.emit("reshape", [v], shape=(v.type.size,))
            if draw(st.booleans()):
                flat = self.emit("expand_dims", [flat], axes=(0,))
            return self.emit("reshape", [flat], shape=v.shape)
        if kind == "broadcast":
            wide = self.emit("broadcast_to", [v], shape=self.base)
            return self.emit("broadcast_to", [wide], shape=self.base) if draw(
                st.booleans()) else wide
        if kind == "matmul":
            return self.matmul(v)
        if kind == "neg_neg" and v.dtype != dt.uint8:
            return self.emit("neg", [self.emit("neg", [v])])
        if kind == "duplicate" and self.b.eqns:
            eqn = self.choose(self.b.eqns)
            return self.b.emit(eqn.op, eqn.ins, dict(eqn.params))[0]
        if kind == "dead":
            self.emit("exp", [self.cast(v, dt.float32)])
            return None
        if kind == "fold":
            c = self.constant(v.dtype)
            return self.emit("add", [v, self.emit("mul", [c, self.constant(v.dtype)])])
        return None

    def reduce(self, v: Var) -> Var:
        draw = self.draw
        name = self.choose(REDUCTIONS)
        if name == "mean" and not v.dtype.is_float:
            name = "sum"
        ndim = v.type.ndim
        if ndim == 0:
            return self.emit("sum", [v], axes=())
        if name == "argmax":
            axis = draw(st.integers(0, ndim - 1))
            r = self.emit("argmax", [v], axis=axis, index_dtype=dt.int32)
            return self.emit("expand_dims", [r], axes=(axis,))
        axes = tuple(sorted(draw(st.sets(st.integers(0, ndim - 1), min_size=1))))
        keep = draw(st.booleans())
        r = self.emit(name, [v], axes=axes, keepdims=keep)
        if keep:
            return r
        shape = tuple(1 if i in axes else d for i, d in enumerate(v.shape))
        return self.emit("reshape", [r], shape=shape)

    def matmul(self, v: Var) -> Var:
        n = self.base[-1]
        w = self.new_input((n, n), v.dtype)
        x = self.emit("broadcast_to", [v], shape=self.base)
        if len(self.base) == 1:
            x = self.emit("reshape", [x], shape=(1, n))
        y = self.emit("matmul", [x, w])
        if self.draw(st.booleans()):        # a bias and an activation: an epilogue
            bias = self.new_input((n,), v.dtype)
            y = self.emit("relu", [self.emit("add", [y, bias])])
        return self.emit("reshape", [y], shape=self.base) if len(self.base) == 1 else y

    def build(self) -> Graph:
        for _ in range(self.draw(st.integers(1, 3))):
            self.pool.append(self.new_input())
        for _ in range(self.steps):
            out = self.step(self.choose(STEP_KINDS))
            if out is not None and self.fits(out.shape):
                self.pool.append(out)
        last = self.pool[-1]
        extra = [self.choose(self.pool) for _ in range(self.draw(st.integers(0, 2)))]
        return self.b.build([last, *extra])


@st.composite
def programs(draw, max_steps: int = 20, specials: bool = True) -> Program:
    """A random valid graph and arguments for it."""
    graph = _Gen(draw, max_steps).build()
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    args = [_random_array(rng, v.type, specials) for v in graph.inputs]
    return Program(graph, args)
