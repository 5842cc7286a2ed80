"""Small helpers shared by the pass tests."""

from __future__ import annotations

import numpy as np

from tracejit.ir import GraphBuilder, interpret, ops
from tracejit.ir.core import Graph, TensorType
from tracejit.ir.dtypes import as_dtype
from tracejit.ir.opdef import OpDef, Tag
from tracejit.ir.verifier import verify
from tracejit.passes.fuse import fuse_kernels
from tracejit.passes.pipeline import CLEANUP, optimize

# The pipeline of a device whose own pass is fusion (the CPU's: codegen_cpu/pipeline.py).
FUSION = (("fuse_kernels", fuse_kernels),)
PIPELINE = CLEANUP + FUSION


def optimize_fused(graph: Graph, **options) -> Graph:
    """The target-independent cleanups, then fusion, as the CPU device runs them."""
    return optimize(graph, device_passes=FUSION, **options)


def tensor(shape, dtype="f32") -> TensorType:
    return TensorType(tuple(shape), as_dtype(dtype))


def emit(b: GraphBuilder, name: str, *ins, **params):
    return b.emit1(ops.OPS[name], list(ins), params)


def const(b: GraphBuilder, value, dtype="f32"):
    return emit(b, "constant", value=np.asarray(value, as_dtype(dtype).np_dtype))


def op_names(graph: Graph) -> list[str]:
    return [e.op.name for e in graph.eqns]


def kernels(graph: Graph) -> list:
    return [e for e in graph.eqns if e.op.name == "kernel"]


def random_args(graph: Graph, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for v in graph.inputs:
        dtype = v.dtype.np_dtype
        if v.dtype.is_float:
            out.append(rng.normal(size=v.shape).astype(dtype))
        elif v.dtype.is_bool:
            out.append(rng.random(v.shape) < 0.5)
        else:
            out.append(rng.integers(-5, 6, size=v.shape).astype(dtype))
    return out


def assert_same_results(before: Graph, after: Graph, args, *, check_ir: bool = True) -> None:
    """``after`` is a valid graph (verified unless ``check_ir`` is off, for graphs the
    pipeline's debug mode has verified already) computing exactly (bit for bit, NaN
    equal to NaN) what ``before`` computes on ``args``."""
    if check_ir:
        verify(after)
    expected = interpret(before, args, check=True)
    got = interpret(after, args, check=True)
    assert len(expected) == len(got)
    for k, (e, g) in enumerate(zip(expected, got, strict=True)):
        assert e.dtype == g.dtype and e.shape == g.shape, f"output {k}"
        if e.dtype.itemsize == 2 and e.dtype.kind not in "iu":
            # NOTE: NumPy's testing does not see bfloat16 NaNs as NaN; float32 holds
            # every half value exactly.
            e, g = e.astype(np.float32), g.astype(np.float32)
        np.testing.assert_array_equal(g, e, err_msg=f"output {k}")


# NOTE: the op table has no effect op yet (variables come with the autodiff/TF1 work),
# so the tests use a private STATEFUL op that is not registered in the table.
EFFECT = OpDef("test_effect", infer=lambda types, params: (types[0],),
               impl=lambda x: x.copy(), arity=1, tags=frozenset({Tag.STATEFUL}))


def effect(b: GraphBuilder, x):
    return b.emit1(EFFECT, [x])
