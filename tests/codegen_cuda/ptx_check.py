"""Every kind of GPU kernel compiled to PTX for sm_80 and sm_90 and assembled by ptxas.

Run as a module in a process that is not simulating (``TRACEJIT_GPU=null``): the CUDA
simulator replaces numba.cuda's compiler, so test_ptx.py starts this in a subprocess.
The kernels: every example of the op table (tests/ir/op_examples.py) lowered for the
GPU (its gradient graphs make kernels of the same kinds: ``--gradients`` adds them),
plus shapes that pick the other loop nests (a column
reduction, a two-pass reduction, a batched matmul with an epilogue). Prints one JSON
object: per architecture, the kernels that passed and the failures with ptxas's words.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor

from tests.ir.op_examples import BY_NAME
from tests.passes.test_autodiff import float64_examples
from tracejit.codegen_cuda.compiler import kernel_compiler, ptxas_check
from tracejit.codegen_cuda.ptx import graph_kernels
from tracejit.ir import OPS, GraphBuilder
from tracejit.ir.core import tensor_type
from tracejit.passes.autodiff import gradient_graph

ARCHS = ("sm_80", "sm_90")


def _graph(name, types, params):
    b = GraphBuilder(f"ptx_{name}")
    ins = [b.add_input(t) for t in types]
    return b.build(list(b.emit(OPS[name], ins, dict(params))))


def _extra_graphs():
    """Shapes that choose the loop nests the op table's small examples do not."""
    from tracejit.ir import ops
    out = []
    b = GraphBuilder("columns")       # thread-per-output reduction (a bias gradient)
    x = b.add_input(tensor_type([64, 2048], "f32"))
    out.append(b.build([b.emit1(ops.SUM, [x], {"axes": (0,)})]))
    b = GraphBuilder("two_pass")      # few outputs, long rows: partials then combine
    x = b.add_input(tensor_type([1 << 20], "f32"))
    out.append(b.build([b.emit1(ops.SUM, [b.emit1(ops.EXP, [x])], {"axes": (0,)}),
                        b.emit1(ops.ARGMAX, [x], {"axis": 0})]))
    for rows in (1000, 10):           # softmax as one row kernel: a block, a thread a row
        b = GraphBuilder(f"softmax_{rows}")
        x = b.add_input(tensor_type([64, rows], "f32"))
        m = b.emit1(ops.MAX, [x], {"axes": (1,), "keepdims": True})
        e = b.emit1(ops.EXP, [b.emit1(ops.SUB, [x, m])])
        s = b.emit1(ops.SUM, [e], {"axes": (1,), "keepdims": True})
        out.append(b.build([b.emit1(ops.DIV, [e, s]), b.emit1(ops.ARGMAX, [x], {"axis": 1})]))
    b = GraphBuilder("batched_epilogue")
    a = b.add_input(tensor_type([4, 32, 64], "bf16"))
    w = b.add_input(tensor_type([64, 16], "bf16"))
    out.append(b.build([b.emit1(ops.RELU, [b.emit1(ops.MATMUL, [a, w])])]))
    return out


def main() -> int:
    graphs = []
    for name, examples in sorted(BY_NAME.items()):
        graphs += [_graph(name, t, p) for t, p in examples]
    for name in sorted(BY_NAME) if "--gradients" in sys.argv else ():
        try:
            graphs += [gradient_graph(_graph(name, t, p)) for t, p in float64_examples(name)]
        except Exception:       # noqa: BLE001 (not differentiable: no gradient graph)
            pass
    graphs += _extra_graphs()
    kernels, seen, lowering_errors = [], set(), []
    for g in graphs:
        try:
            for kernel, _ in graph_kernels(g):
                if kernel.name not in seen:
                    seen.add(kernel.name)
                    kernels.append(kernel)
        except Exception as exc:     # noqa: BLE001 (reported, the test fails on it)
            lowering_errors.append(f"{g.name}: {type(exc).__name__}: {exc}")
    compiler = kernel_compiler()
    report = {"kernels": len(kernels), "kinds": sorted({k.kind for k in kernels}),
              "names": sorted(k.name for k in kernels),
              "lowering_errors": lowering_errors}

    def check(kernel, arch):
        try:
            ptx = compiler.ptx(kernel, (int(arch[3]), int(arch[4])))
        except Exception as exc:     # noqa: BLE001
            return kernel.name, f"numba.cuda: {type(exc).__name__}: {exc}"[:500]
        result = ptxas_check(ptx, arch)
        return kernel.name, None if result.ok else result.output[:500]

    for arch in ARCHS:
        # NOTE: compiling holds numba's lock; the threads overlap the ptxas processes
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda k, a=arch: check(k, a), kernels))
        report[arch] = {"passed": sum(1 for _, e in results if e is None),
                        "failures": {n: e for n, e in results if e is not None}}
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
