"""The fuzzer's program record and its Python source.

A program is a list of steps ``out = op(name, *ins, **params)`` over named values, the
values it returns, and the arguments of two calls. Whatever runs is the rendered source
(``Program.source()`` is exec'd by ``load``), so the text printed for a failure is
exactly the program that failed and can be pasted into a file and run.

The source calls ``op(name, ...)``, which binds the op-table entry ``name`` directly
(no promotion, no casts added by the front end): the IR that is traced is the program
as written. The regions of control-flow steps (``cond``'s branches, a loop's condition
and body) are Graphs; the source holds their IR text (``R0 = region("func ...")``,
parsed by ``tracejit.ir.parser.parse_graph``, the printer's exact inverse).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tracejit.ir import dtypes as dt
from tracejit.ir.core import Graph, TensorType
from tracejit.ir.ops import OPS
from tracejit.ir.parser import parse_graph
from tracejit.ir.printer import print_graph
from tracejit.trace.device_scope import device as tj_device
from tracejit.trace.tracing import bind

nan = float("nan")
inf = float("inf")

REPRO = "python -m tests.fuzz repro --seed {seed} --index {index}"


# While a placed check traces (check.py): a callable giving each step a device string
# or None, so the compiled program runs over several devices (docs/runtime.md).
PLACER: list = []


def op(name: str, *xs, **params):
    """Apply the op-table entry ``name`` to traced values (what every step calls)."""
    if PLACER:
        with tj_device(PLACER[0]()):
            return bind(OPS[name], xs, params)
    return bind(OPS[name], xs, params)


def region(text: str) -> Graph:
    """A control-flow step's region, from its IR text (what ``render`` writes)."""
    return parse_graph(text)


def arr(dtype: str, shape, values) -> np.ndarray:
    """An argument or a constant, written as flat values (exact for every dtype)."""
    np_dtype = dt.as_dtype(dtype).np_dtype
    # NOTE: through float64 for floats, so that bfloat16 values (printed as the exact
    # float32 they are) and signed zeros arrive unchanged.
    if np.issubdtype(np.dtype(np_dtype), np.integer) or np_dtype == np.bool_:
        flat = np.array(values, dtype=np_dtype)
    else:
        flat = np.array(values, dtype=np.float64).astype(np_dtype)
    return flat.reshape(tuple(shape))


@dataclass
class Step:
    op: str
    ins: tuple[str, ...]
    params: dict[str, Any]
    out: str
    more: tuple[str, ...] = ()                  # further results (control-flow ops)

    @property
    def outs(self) -> tuple[str, ...]:
        return (self.out, *self.more)


@dataclass
class Program:
    seed: int
    index: int
    inputs: list[tuple[str, TensorType]]
    steps: list[Step]
    outputs: list[str]
    args: list[np.ndarray]                      # the first call's arguments
    args2: list[np.ndarray]                     # the second call's (same types)
    donate: tuple[int, ...] = ()
    grad: tuple[int, ...] | None = None         # differentiate these inputs, if any
    loss_weights: list[np.ndarray] = field(default_factory=list)
    loss_weights2: list[np.ndarray] = field(default_factory=list)
    gemm: str = "auto"                          # TRACEJIT_GEMM while compiling

    def types(self) -> dict[str, TensorType]:
        """The type of every named value (inputs and step results)."""
        known = dict(self.inputs)
        for step in self.steps:
            ins = [known[n] for n in step.ins]
            opdef = OPS[step.op]
            outs = opdef.infer_types(ins, opdef.make_params(step.params))
            known.update(zip(step.outs, outs, strict=True))
        return known

    def loss_outputs(self) -> list[int]:
        """Positions of the outputs the gradient's loss sums: the floating-point ones."""
        types = self.types()
        return [i for i, name in enumerate(self.outputs) if types[name].dtype.is_float]

    def source(self) -> str:
        return render(self)


# ---- rendering ---------------------------------------------------------------------------

def _number(value, dtype: dt.DType) -> str:
    if dtype.is_bool:
        return "True" if value else "False"
    if dtype.is_integer:
        return str(int(value))
    if math.isnan(float(value)):
        return "nan"
    if math.isinf(float(value)):
        return "inf" if value > 0 else "-inf"
    if dtype in (dt.float16, dt.float32):
        return str(value)                       # NumPy's shortest text for that type
    return repr(float(value))                   # exact for bfloat16 and float64


def render_array(a: np.ndarray) -> str:
    dtype = dt.as_dtype(a.dtype)
    values = ", ".join(_number(v, dtype) for v in a.reshape(-1))
    return f"arr({dtype.name!r}, {tuple(a.shape)!r}, [{values}])"


def render_param(value) -> str:
    if isinstance(value, dt.DType):
        return f"tj.{'bool_' if value.is_bool else value.name}"
    if isinstance(value, np.ndarray):
        return render_array(value)
    if isinstance(value, float):
        return _number(value, dt.float64)
    return repr(value)


def regions(steps) -> list[Graph]:
    """The Graphs the steps' params hold (a cond's branches, a loop's regions), in
    order; nested regions are inside their parent's text."""
    found = []
    for step in steps:
        for value in step.params.values():
            found += [g for g in (value if isinstance(value, tuple) else (value,))
                      if isinstance(g, Graph)]
    return found


def _call(step: Step, names: dict[int, str]) -> str:
    def param(value) -> str:
        if isinstance(value, Graph):
            return names[id(value)]
        if isinstance(value, tuple) and value and isinstance(value[0], Graph):
            items = [names[id(g)] for g in value]
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        return render_param(value)

    parts = [repr(step.op), *step.ins]
    parts += [f"{k}={param(v)}" for k, v in step.params.items()]
    return f"op({', '.join(parts)})"


def _region_text(graph: Graph) -> str:
    text = print_graph(graph)
    # NOTE: IR text has no backslashes or triple quotes but in strings (names, devices),
    # which regions made here do not hold; repr() is the exact fallback.
    if "\\" in text or '"""' in text or text.endswith('"'):
        return f"region({text!r})"
    return f'region("""\n{text}""")'


def _arg_list(name: str, arrays: list[np.ndarray]) -> list[str]:
    return [f"{name} = ["] + [f"    {render_array(a)}," for a in arrays] + ["]"]


def render(p: Program) -> str:
    names = [n for n, _ in p.inputs]
    lines = [
        f"# tracejit fuzz program seed={p.seed} index={p.index}",
        f"# rerun: {REPRO.format(seed=p.seed, index=p.index)}",
        "import numpy as np",
        "import tracejit as tj",
        "from tests.fuzz.program import arr, inf, nan, op, region  # noqa: F401",
        "",
    ]
    graphs = {}
    for k, graph in enumerate(regions(p.steps)):
        graphs[id(graph)] = f"R{k}"
        lines += [f"R{k} = {_region_text(graph)}", ""]
    lines.append(f"def f({', '.join(names)}):")
    lines += [f"    {', '.join(s.outs)} = {_call(s, graphs)}" for s in p.steps]
    lines.append(f"    return ({', '.join(p.outputs)},)")
    if p.grad is None:
        lines += ["", "main = f"]
    else:
        weights = [f"w{i}" for i in range(len(p.loss_weights))]
        lines += ["", f"def loss({', '.join(names + weights)}):",
                  f"    ys = f({', '.join(names)})"]
        terms = []
        for w, pos in zip(weights, p.loss_outputs(), strict=True):
            ndim = len(p.types()[p.outputs[pos]].shape)
            y = f"op('cast', ys[{pos}], dtype=tj.float32)"
            terms.append(f"op('sum', op('mul', {y}, {w}), axes={tuple(range(ndim))!r})")
        total = terms[0]
        for t in terms[1:]:
            total = f"op('add', {total}, {t})"
        lines += [f"    return {total}", "", f"main = tj.grad(loss, argnums={p.grad!r})"]
    lines += ["", f"DONATE = {p.donate!r}", f"GEMM = {p.gemm!r}"]
    lines += _arg_list("ARGS", p.args + p.loss_weights)
    lines += _arg_list("ARGS2", p.args2 + p.loss_weights2)
    return "\n".join(lines) + "\n"


@dataclass
class Loaded:
    main: Any
    args: list[np.ndarray]
    args2: list[np.ndarray]
    donate: tuple[int, ...]
    gemm: str


def load(source: str) -> Loaded:
    """Run a rendered program's source; returns its entry point and arguments."""
    namespace: dict[str, Any] = {"__name__": "tracejit_fuzz_program"}
    exec(compile(source, "<fuzz program>", "exec"), namespace)
    return Loaded(namespace["main"], namespace["ARGS"], namespace["ARGS2"],
                  tuple(namespace["DONATE"]), namespace["GEMM"])
