"""Random programs built from the op table.

``generate(seed, index)`` is a pure function of its arguments (NumPy's generator seeded
with ``[seed, index]``), so program ``index`` of ``seed`` is the same program on every
machine and in every worker.

Each step picks an op (weighted by its tags' category, so every op of the table is
drawn), proposes operands and parameters, and asks the op's shape rule whether they
are valid; a rejected proposal is retried. Operands are usually values already made
(recent ones more often), so values get several readers — the shapes fusion and memory
planning decide on: an intermediate read by a matmul epilogue and by another kernel, a
reshape of an in-place kernel's result, a gather feeding elementwise code and a matmul.
The values returned include inputs and repeated values now and then.

Control-flow steps (``cond``, ``while_loop``, ``scan``; control.py) hold regions that
are random sub-programs made by this same builder, nested at most two deep.
"""

from __future__ import annotations

import numpy as np

from tracejit.ir import dtypes as dt
from tracejit.ir.builder import GraphBuilder
from tracejit.ir.core import Graph, TensorType
from tracejit.ir.errors import TracejitError
from tracejit.ir.opdef import OpDef, Tag
from tracejit.ir.ops import OPS

from . import control
from .program import Program, Step
from .proposals import (
    DIMS,
    INPUT_DTYPES,
    MAX_SIZE,
    ValueStyle,
    pick,
    propose_params,
    random_shape,
    unsupported_params,
    weighted,
)

# Ops the generator does not emit directly, and why.
EXCLUDED = {
    "kernel": "made by the fusion pass, never written by users",
    "custom_vjp": "needs a gradient rule registered in the process",
    "host_callback": "needs a Python function registered in the process",
    "conv2d_backprop_input": "reached through tj.grad of programs with conv2d",
    "conv2d_backprop_filter": "reached through tj.grad of programs with conv2d",
    "avg_pool2d_backprop": "reached through tj.grad of programs with avg_pool2d",
    "int8_conv2d": "needs a rank-4 image and filter of one 8-bit dtype, which random "
                   "programs almost never draw together (none in 3000); checked op by op "
                   "(op examples, backend conformance) and through tj.quantize's tests",
}
# Operands whose shape is another op's result on the earlier operands (scatter_add's
# updates are what gather would read; a pool's cotangent has the pooled shape). The
# table has no way to say this, so the generator is told here.
SHAPE_HINTS = {"scatter_add": (2, "gather"), "max_pool2d_backprop": (1, "max_pool2d")}
CATEGORY_WEIGHTS = {"unary": 3.0, "binary": 4.0, "elementwise": 1.0, "reduce": 2.0,
                    "movement": 3.0, "linalg": 1.5, "creation": 0.4, "random": 0.2,
                    "other": 1.0, "control": 0.45}
REGION_CONTROL_WEIGHT = 2.5
MAX_INPUTS = 6
ATTEMPTS = 16


def category(opdef: OpDef) -> str:
    if opdef.has(Tag.CONTROL_FLOW):
        return "control"
    if opdef.has(Tag.ELEMENTWISE):
        if opdef.has(Tag.UNARY):
            return "unary"
        return "binary" if opdef.has(Tag.BINARY) else "elementwise"
    for tag in (Tag.REDUCE, Tag.MOVEMENT, Tag.LINALG, Tag.CREATION, Tag.RANDOM):
        if opdef.has(tag):
            return tag.value
    return "other"


def generated_ops() -> list[OpDef]:
    """Every op of the table the generator emits."""
    return [o for name, o in sorted(OPS.items())
            if name not in EXCLUDED and not o.has(Tag.STATEFUL)
            and (o.name in control.BUILDERS or not unsupported_params(o))]


def op_weights(ops: list[OpDef], **changes: float) -> np.ndarray:
    counts: dict[str, int] = {}
    for o in ops:
        counts[category(o)] = counts.get(category(o), 0) + 1
    weights = {**CATEGORY_WEIGHTS, **changes}
    w = np.array([weights[category(o)] / counts[category(o)] for o in ops])
    return w / w.sum()


class _Builder:
    """The steps of a program, or of a region when ``parent`` is the builder of the
    program (or region) holding it: the region's inputs are ``inputs``, and a fresh
    leaf it asks for becomes one more input, *captured*: the control-flow step passes
    a value of the parent's there (``supply``)."""

    def __init__(self, rng: np.random.Generator, seed: int, index: int,
                 parent: _Builder | None = None, inputs=()):
        self.rng = rng
        self.seed, self.index = seed, index
        self.parent = parent
        self.depth = 0 if parent is None else parent.depth + 1
        if parent is None:
            self.style = ValueStyle(rng)
            # NOTE: a program draws its shapes from a few sizes (and 1), so that values
            # fit together: matmul chains, binary ops between a matmul and other
            # intermediates; and mostly one dtype, as real programs have.
            self.dims = (1,) + tuple(pick(rng, DIMS[2:]) for _ in range(3))
            self.dtype = weighted(rng, INPUT_DTYPES)
            self.ops = generated_ops()
            # NOTE: regions draw control flow more often, so that nesting is common
            # (a loop in a branch, a branch in a loop body, a loop in a loop); the
            # innermost ones never.
            self.all_weights = (op_weights(self.ops),
                                op_weights(self.ops, control=REGION_CONTROL_WEIGHT),
                                op_weights(self.ops, control=0.0))
        else:
            self.style, self.dims, self.dtype = parent.style, parent.dims, parent.dtype
            self.ops, self.all_weights = parent.ops, parent.all_weights
        self.weights = self.all_weights[0 if self.depth == 0 else
                                        1 if self.depth < control.MAX_DEPTH else 2]
        self.inputs: list[tuple[str, TensorType]] = []
        self.steps: list[Step] = []
        self.pool: list[tuple[str, TensorType]] = []
        self.types: dict[str, TensorType] = {}
        self.used: set[str] = set()             # the ops emitted, regions' included
        self.count = 0
        for t in inputs:
            self.new_input(t)
        self.max_inputs = MAX_INPUTS if parent is None else len(inputs) + control.MAX_CAPTURES

    def run(self, n_steps: int) -> None:
        """Up to ``n_steps`` random ops (3 tries each)."""
        made = 0
        for _ in range(n_steps * 3):
            if made == n_steps:
                break
            made += self.try_op(self.ops[int(self.rng.choice(len(self.ops), p=self.weights))])

    def region(self, inputs, focus: int = 0) -> _Builder:
        """A builder for a region taking ``inputs``; its first ``focus`` inputs (a
        loop's carried values and slices) are its most recent values, which its first
        random steps read more often."""
        sub = _Builder(self.rng, self.seed, self.index, self, inputs)
        sub.pool = sub.pool[focus:] + sub.pool[:focus]
        return sub

    def graph(self, outputs, name: str, extra=()) -> Graph:
        """This region as a Graph returning ``outputs``; ``extra``: types of further
        inputs it does not read (what the other regions of its op captured). Most
        regions keep only the steps their results need (dead code in the others)."""
        gb = GraphBuilder(name)
        env = {n: gb.add_input(t) for n, t in self.inputs}
        for t in extra:
            gb.add_input(t)
        steps = self.steps
        if self.rng.random() < 0.8:
            needed, steps = set(outputs), []
            for s in reversed(self.steps):
                if needed.intersection(s.outs):
                    steps.append(s)
                    needed.update(s.ins)
            steps.reverse()
        for s in steps:
            outs = gb.emit(OPS[s.op], [env[n] for n in s.ins], s.params)
            env.update(zip(s.outs, outs, strict=True))
        self.parent.used |= self.used
        return gb.build([env[n] for n in outputs], stage="region")

    def mark(self) -> tuple:
        return len(self.steps), len(self.inputs), len(self.pool), set(self.used)

    def rollback(self, mark: tuple) -> None:
        steps, inputs, pool, self.used = mark
        del self.steps[steps:], self.inputs[inputs:], self.pool[pool:]

    # -- values --
    def fresh_name(self) -> str:
        self.count += 1
        return f"v{self.count - 1}"

    def new_input(self, t: TensorType) -> str:
        name = f"a{len(self.inputs)}"
        self.inputs.append((name, t))
        self.pool.append((name, t))
        self.types[name] = t
        return name

    def emit(self, opname: str, ins, params, t: TensorType) -> str:
        return self.emit_many(opname, ins, params, [t])[0]

    def emit_many(self, opname: str, ins, params, types) -> list[str]:
        names = [self.fresh_name() for _ in types]
        self.steps.append(Step(opname, tuple(ins), dict(params), names[0], tuple(names[1:])))
        self.pool += zip(names, types, strict=True)
        self.types.update(zip(names, types, strict=True))
        self.used.add(opname)
        return names

    def apply(self, opname: str, ins, params=None) -> str:
        """Emit ``opname`` on named values (a step the generator needs, known valid)."""
        opdef = OPS[opname]
        (t,) = opdef.infer_types([self.types[n] for n in ins], opdef.make_params(params or {}))
        return self.emit(opname, ins, params or {}, t)

    def supply(self, t: TensorType) -> str:
        """A value of type ``t`` for a region's captured input: one at hand, or a leaf."""
        same = [n for n, u in self.pool if u == t]
        if same and self.rng.random() < 0.5:
            return pick(self.rng, same)
        return self.materialize(("leaf", t))

    def input_dtype(self) -> dt.DType:
        return self.dtype if self.rng.random() < 0.7 else weighted(self.rng, INPUT_DTYPES)

    def choose_value(self) -> tuple[str, TensorType]:
        # NOTE: recent values half the time, so chains form; any value otherwise, so
        # values get several readers.
        if self.rng.random() < 0.5:
            return self.pool[-1 - int(self.rng.integers(min(3, len(self.pool))))]
        return pick(self.rng, self.pool)

    # -- operand proposals: ("value", name, type) | ("cast", name, type) | ("leaf", type) --
    def slot0(self, attempt: int):
        r = self.rng.random()
        # NOTE: a fresh operand of any rank, more often once the values at hand were
        # refused (the pool ops need rank-4 images, which few programs make).
        fresh = 0.06 if attempt < ATTEMPTS // 2 else 0.5
        if r < fresh and len(self.inputs) < self.max_inputs:
            rank = int(self.rng.integers(0, 5))
            shape = tuple(pick(self.rng, (1, 2, 3, 4, 5, 7)) for _ in range(rank))
            return ("leaf", TensorType(shape, self.input_dtype()))
        name, t = self.choose_value()
        if r < 0.22:
            target = pick(self.rng, dt.ALL_DTYPES)
            if target is not t.dtype:
                return ("cast", name, TensorType(t.shape, target))
        return ("value", name, t)

    def leaf_like(self, first: TensorType) -> tuple:
        rng = self.rng
        dtype = first.dtype
        r = rng.random()
        if r < 0.15:
            dtype = dt.bool_
        elif r < 0.35:
            dtype = pick(rng, dt.ALL_DTYPES)
        mode = pick(rng, ("same", "same", "broadcast", "scalar", "indices", "dims"))
        if mode == "broadcast":
            shape = [d if rng.random() < 0.6 else 1 for d in first.shape]
            shape = shape[int(rng.integers(0, len(shape) + 1)):] if rng.random() < 0.3 else shape
            return ("leaf", TensorType(tuple(shape), dtype))
        if mode == "scalar":
            return ("leaf", TensorType((), dtype))
        if mode == "indices":
            return ("leaf", TensorType(random_shape(rng, 2), pick(rng, dt.INT_DTYPES)))
        if mode == "dims":                  # made of the first operand's sizes (matmul, conv)
            sizes = list(first.shape) + list(self.dims)
            rank = first.ndim if rng.random() < 0.5 and first.ndim else int(rng.integers(1, 5))
            return ("leaf", TensorType(tuple(pick(rng, sizes) for _ in range(rank)), dtype))
        return ("leaf", TensorType(first.shape, dtype))

    # -- one op --
    def try_op(self, opdef: OpDef) -> bool:
        if opdef.name in control.BUILDERS:
            return control.build(self, opdef.name)
        arity = opdef.arity if opdef.arity is not None else int(self.rng.integers(1, 4))
        for attempt in range(ATTEMPTS):
            operands = [self.slot0(attempt)] if arity else []
            while len(operands) < arity:
                operands.append(self.leaf_like(operands[0][-1]))
            params = propose_params(self.rng, opdef, [o[-1] for o in operands])
            if params is None:
                return False
            if opdef.name in SHAPE_HINTS:
                operands = self.apply_hint(opdef, operands, params)
            in_types = [o[-1] for o in operands]
            # NOTE: a hinted operand takes another op's result shape, which can be far
            # larger than any output (scatter_add's updates made a 6.1M-element argument,
            # 75 MB of source, and the worker timed out: seed 4000 #61409)
            if any(t.size > MAX_SIZE for t in in_types):
                continue
            outs = self.infer_all(opdef, in_types, params)
            if outs is None:
                continue
            if arity > 1 and self.rng.random() < 0.7:
                operands = self.share(opdef, operands, params)
                outs = self.infer_all(opdef, [o[-1] for o in operands], params)
            out = outs[0]
            if out.size > MAX_SIZE or out.ndim > 5 or max(out.shape, default=1) > 96:
                continue
            names = [self.materialize(o) for o in operands]
            # NOTE: an op of several results (top_k) is one step naming them all
            self.emit_many(opdef.name, names, params, list(outs))
            return True
        return False

    def apply_hint(self, opdef: OpDef, operands, params):
        """The hinted operand as a leaf of the shape the helper op gives, with the
        parameters both ops share."""
        slot, helper_name = SHAPE_HINTS[opdef.name]
        helper = OPS[helper_name]
        shared = {k: v for k, v in params.items() if k in helper.params}
        out = self.infer(helper, [o[-1] for o in operands[:helper.arity]], shared)
        if out is None:
            return operands
        operands = list(operands)
        operands[slot] = ("leaf", TensorType(out.shape, operands[0][-1].dtype))
        return operands

    def infer_all(self, opdef: OpDef, in_types, params) -> tuple[TensorType, ...] | None:
        """The types of every result, or None where the op refuses the proposal."""
        try:
            outs = opdef.infer_types(in_types, opdef.make_params(params))
        except (TracejitError, TypeError, ValueError, ZeroDivisionError):
            return None
        return outs if outs else None

    def infer(self, opdef: OpDef, in_types, params) -> TensorType | None:
        outs = self.infer_all(opdef, in_types, params)
        return outs[0] if outs is not None and len(outs) == 1 else None

    def share(self, opdef: OpDef, operands, params):
        """Replace leaf operands by existing values where the op accepts them."""
        operands = list(operands)
        for slot in range(1, len(operands)):
            if operands[slot][0] != "leaf":
                continue
            for i in self.rng.permutation(len(self.pool)):
                name, t = self.pool[int(i)]
                trial = operands[:slot] + [("value", name, t)] + operands[slot + 1:]
                if self.infer(opdef, [o[-1] for o in trial], params) is not None:
                    operands = trial
                    break
        return operands

    def materialize(self, operand) -> str:
        kind = operand[0]
        if kind == "value":
            return operand[1]
        if kind == "cast":
            return self.emit("cast", [operand[1]], {"dtype": operand[2].dtype}, operand[2])
        t = operand[1]
        if len(self.inputs) < self.max_inputs and self.rng.random() < 0.75:
            return self.new_input(t)
        value = self.style.array(self.rng, t)
        if t.dtype.is_integer and t.ndim and self.rng.random() < 0.5:
            # NOTE: constant indices in and around range (gather wraps once, then clamps).
            value = self.rng.integers(-4, 9, size=t.shape).astype(t.dtype.np_dtype)
            if t.dtype == dt.uint8:
                value = np.abs(value).astype(np.uint8)
        return self.emit("constant", [], {"value": value}, t)


def generate(seed: int, index: int, max_steps: int = 8) -> Program:
    """Program ``index`` of ``seed``: a pure function of its arguments."""
    rng = np.random.default_rng([seed, index])
    b = _Builder(rng, seed, index)
    for _ in range(int(rng.integers(1, 3))):
        b.new_input(TensorType(random_shape(rng, 3, b.dims), b.input_dtype()))
    b.run(int(rng.integers(1, max_steps + 1)))
    return _finish(b, rng, seed, index)


def _needed(steps: list[Step], outputs: list[str]) -> set[str]:
    needed = set(outputs)
    for s in steps[::-1]:
        if needed.intersection(s.outs):
            needed.update(s.ins)
    return needed


def _finish(b: _Builder, rng, seed: int, index: int) -> Program:
    read = {name for s in b.steps for name in s.ins}
    sinks = [name for name, _ in b.pool[len(b.inputs):] if name not in read]
    outputs = [b.pool[-1][0]]
    for name in sinks[::-1][1:3]:                 # values nothing reads: no dead code
        outputs.append(name)
    for step in b.steps[::-1]:                    # no control-flow step is dead code
        if step.op in control.BUILDERS and not _needed(b.steps, outputs).intersection(step.outs):
            outputs.append(pick(rng, step.outs))
    for _ in range(int(rng.integers(0, 2))):
        outputs.append(pick(rng, b.pool)[0])      # any value, inputs too: "return x"
    if rng.random() < 0.1:
        outputs.append(outputs[0])                # the same value twice
    types = b.types
    args = [b.style.array(rng, t) for _, t in b.inputs]
    args2 = [b.style.array(rng, t) for _, t in b.inputs]
    program = Program(seed, index, b.inputs, b.steps, outputs, args, args2)
    if rng.random() < 0.15:
        program.donate = tuple(i for i in range(len(args)) if rng.random() < 0.5) or (0,)
    if "matmul" in b.used:
        program.gemm = pick(rng, ("blas", "tiles"))
    floats_in = [i for i, (_, t) in enumerate(b.inputs) if t.dtype.is_float]
    floats_out = [o for o in outputs if types[o].dtype.is_float]
    # NOTE: more often with control flow, whose gradients are loops and branches too
    looped = any(s.op in control.BUILDERS for s in b.steps)
    if floats_in and floats_out and rng.random() < (0.35 if looped else 0.25):
        chosen = tuple(i for i in floats_in if rng.random() < 0.6) or (floats_in[0],)
        program.grad = chosen
        for name in floats_out:
            t = TensorType(types[name].shape, dt.float32)
            program.loss_weights.append(rng.normal(size=t.shape).astype(np.float32))
            program.loss_weights2.append(rng.normal(size=t.shape).astype(np.float32))
    return program
