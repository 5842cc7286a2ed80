"""@jit: caching on the abstract signature, compile reasons, static arguments, pytrees,
and the errors Python control flow on traced values raises."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import timeit

import numpy as np
import pytest

import tracejit as tj

F32 = np.float32


def ones(*shape, dtype=F32):
    return np.ones(shape, dtype)


def test_cache_hit_and_miss_reasons():
    @tj.jit
    def f(x):
        return x * 2.0

    f(ones(128, 784))
    f(ones(128, 784))
    assert f.cache_size == 1
    f(ones(64, 784))
    f(ones(64, 784, dtype=np.float64))
    reasons = [r.reason for r in f.compile_log]
    assert reasons == [
        "first call",
        "argument `x` changed shape from [128,784] to [64,784]",
        "argument `x` changed dtype from float32 to float64",
    ]


def test_static_argument_reason_and_hashability():
    @tj.jit(static_argnums=1)
    def power(x, n):
        out = x
        for _ in range(n - 1):
            out = out * x
        return out

    x = np.full(3, 2.0, F32)
    np.testing.assert_array_equal(power(x, 3), np.full(3, 8.0))
    np.testing.assert_array_equal(power(x, 3), np.full(3, 8.0))
    np.testing.assert_array_equal(power(x, 2), np.full(3, 4.0))
    assert power.cache_size == 2
    assert power.compile_log[1].reason == "a new value for static argument `n`: 2 (was 3)"
    with pytest.raises(TypeError, match="static argument 'n'.*hashable"):
        power(x, [3])


def test_static_argnames_and_keyword_arguments():
    @tj.jit(static_argnames="mode")
    def f(x, scale=1.0, *, mode="add"):
        return x + scale if mode == "add" else x * scale

    x = ones(2)
    np.testing.assert_array_equal(f(x, 3.0), [4.0, 4.0])
    np.testing.assert_array_equal(f(x, scale=3.0, mode="mul"), [3.0, 3.0])
    np.testing.assert_array_equal(f(x, mode="mul"), [1.0, 1.0])


def test_pytree_arguments_and_results():
    Point = collections.namedtuple("Point", "x y")

    @tj.jit
    def f(params, batch):
        out = batch[0] @ params["w"] + params["b"]
        return {"out": out, "pair": (out.sum(), Point(batch[1], None))}

    params = {"w": ones(3, 2), "b": np.zeros(2, F32)}
    result = f(params, [ones(4, 3), Point(1.0, 2)])
    np.testing.assert_allclose(result["out"], np.full((4, 2), 3.0))
    assert float(result["pair"][0]) == 24.0
    assert isinstance(result["pair"][1], Point) and result["pair"][1].y is None


def test_structure_change_is_a_reason():
    @tj.jit
    def f(xs):
        return sum(xs[1:], xs[0])

    f([ones(2), ones(2)])
    f([ones(2), ones(2), ones(2)])
    assert f.compile_log[1].reason.startswith("the structure of the arguments changed")


def test_python_scalar_arguments_are_weak():
    @tj.jit
    def f(x, s):
        return x * s

    assert f(ones(2, dtype=np.float16), 3.0).dtype == tj.float16
    assert f(ones(2, dtype=np.int8), 3).dtype == tj.int8
    assert f(ones(2, dtype=np.int8), 3).weak is False
    f(ones(2, dtype=np.int8), np.int32(3))
    assert "changed from a Python scalar to an array" in f.compile_log[-1].reason


def test_forbid_recompiles():
    @tj.jit
    def f(x):
        return x + 1

    f(ones(3))
    with tj.forbid_recompiles():
        f(ones(3))
        with pytest.raises(tj.RecompileError, match=r"changed shape from \[3\] to \[4\]"):
            f(ones(4))
    f(ones(4))     # allowed again outside the guard


def test_log_compiles_prints_reasons():
    code = ("import numpy as np, tracejit as tj\n"
            "f = tj.jit(lambda x: x + 1)\n"
            "f(np.ones(3, np.float32)); f(np.ones(5, np.float32))\n")
    env = dict(os.environ, TRACEJIT_LOG="compiles")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert "first call" in out.stderr
    assert "changed shape from [3] to [5]" in out.stderr


@pytest.mark.parametrize("body, words", [
    ("if x > 0:\n        return x\n    return -x", "truth value"),
    ("return float(x)", "Python float"),
    ("return [v for v in x]", "iteration"),
    ("return int(x.sum())", "Python int"),
    ("return np.asarray(x)", "NumPy value"),
])
def test_control_flow_on_traced_values_names_the_line(tmp_path, body, words):
    source = f"import numpy as np\n\ndef f(x):\n    {body}\n"
    path = tmp_path / "user_code.py"
    path.write_text(source)
    namespace: dict = {}
    exec(compile(source, str(path), "exec"), namespace)
    with pytest.raises(tj.TracerError) as info:
        tj.jit(namespace["f"])(ones(3))
    message = str(info.value)
    assert words in message
    assert f"{path}:4" in message


def test_shape_error_names_op_shapes_and_line():
    @tj.jit
    def f(x, y):
        return x + y   # the line the error must name

    with pytest.raises(tj.ShapeError) as info:
        f(ones(3, 4), ones(5))
    message = str(info.value)
    assert "add" in message and "[3, 4]" in message and "[5]" in message
    assert f"{__file__}:" in message and "return x + y" not in message
    assert "in f" in message


def test_unsupported_argument_is_named():
    @tj.jit
    def f(params):
        return params["w"]

    with pytest.raises(tj.DTypeError, match=r"argument `params`\['tag'\] .* str"):
        f({"w": ones(2), "tag": "hello"})


def test_make_ir_and_nested_jit_inline():
    inner = tj.jit(lambda x: tj.tanh(x))

    def outer(x):
        return inner(x) * 2.0

    graph = tj.make_ir(outer)(ones(4))
    assert [e.op.name for e in graph.eqns] == ["tanh", "constant", "mul"]
    assert graph.inputs[0].meta.name == "x"
    assert graph.eqns[0].outs[0].meta.source.line > 0


def test_closure_constants_are_captured():
    table = np.arange(4, dtype=F32)

    @tj.jit
    def f(i):
        return tj.gather(table, i) + table.sum()

    np.testing.assert_array_equal(f(np.array([3, 0], np.int32)), [9.0, 6.0])


def test_methods_can_be_jitted():
    class Model:
        def __init__(self):
            self.w = np.full((2, 2), 2.0, F32)

        @tj.jit
        def __call__(self, x):
            return x @ self.w

    np.testing.assert_array_equal(Model()(ones(1, 2)), [[4.0, 4.0]])


def test_cache_hit_costs_microseconds():
    f = tj.jit(lambda x: x + 1.0)
    x = ones(16)
    f(x)
    per_call = min(timeit.repeat(lambda: f(x), number=200, repeat=5)) / 200
    # Loose bound on purpose: this checks "no retrace per call", not performance.
    assert per_call < 2e-3
    assert f.cache_size == 1


def test_dump_writes_every_stage_of_every_compile(tmp_path):
    f = tj.jit(lambda x: tj.tanh(x) * 2.0 + 1.0)
    with tj.settings(dump_dir=str(tmp_path)):
        f(ones(3))
        f(ones(4))          # a second compile dumps again
    names = sorted(p.name for p in tmp_path.iterdir())
    assert sum(n.endswith("-00-traced.ir") for n in names) == 2
    assert any(n.endswith("fuse_kernels.ir") for n in names)


def test_dump_writes_a_compile_that_the_program_caches_answer(tmp_path):
    # The same graph compiled earlier (here, or by another test in this process) is
    # served from the executor's caches; it must still be dumped.
    def body(x):
        return tj.exp(x) - 3.0
    tj.jit(body)(ones(5))
    with tj.settings(dump_dir=str(tmp_path)):
        tj.jit(body)(ones(5))
    assert any(p.name.endswith("-00-traced.ir") for p in tmp_path.iterdir())
