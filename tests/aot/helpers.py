"""Shared by the ahead-of-time tests: a C compiler, running a built example program, and
calling a built library through ctypes."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import tracejit as tj

CC = shutil.which("cc") or shutil.which("gcc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler (cc) on this machine")


def compile_main(library, *, compiler: str | None = None, static: bool = False) -> Path:
    """The example main.c of ``library`` compiled against its object file."""
    directory = library.object.parent
    program = directory / f"{library.name}_main"
    command = [compiler or CC, "-O2", "-Wall", "-Werror", "-o", str(program),
               str(directory / "main.c"), str(library.object), "-lm"]
    if static:
        command.insert(1, "-static")
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
    return program


def run_main(program: Path, args, results, *, weights: Path | None = None,
             runner=()) -> list[np.ndarray]:
    """Run the example program on ``args`` (arrays written to raw files) and read back
    results shaped and typed like ``results``."""
    directory = program.parent
    paths_in, paths_out = [], []
    for i, array in enumerate(args):
        paths_in.append(directory / f"in{i}.bin")
        np.ascontiguousarray(array).tofile(paths_in[-1])
    paths_out = [directory / f"out{i}.bin" for i in range(len(results))]
    command = [*runner, str(program), *([str(weights)] if weights else []),
               *map(str, paths_in), *map(str, paths_out)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return [np.fromfile(path, dtype=like.dtype).reshape(like.shape)
            for path, like in zip(paths_out, results, strict=True)]


def call_shared(library, args) -> tuple[int, list[np.ndarray]]:
    """``NAME_run`` of the built .so through ctypes: (status, results)."""
    lib = ctypes.CDLL(str(library.shared))
    outs = [np.zeros(r.shape, dtype=np.dtype(_NUMPY[r.dtype])) for r in library.results]
    args = [np.ascontiguousarray(a) for a in args]
    run = getattr(lib, f"{library.name}_run")
    run.restype = ctypes.c_int
    status = run(*[ctypes.c_void_p(a.ctypes.data) for a in args + outs])
    return status, outs


_NUMPY = {"float32": "float32", "float64": "float64", "int32": "int32", "int64": "int64",
          "uint8": "uint8", "int8": "int8", "bool": "bool"}


def small_cnn(rng, channels: int = 1, filters: int = 4, classes: int = 10, image: int = 8):
    """conv 3x3 (SAME) + ReLU -> max-pool 2x2 -> dense -> softmax, over Variables (the
    weights a build bakes in), as a jitted function of images [n, image, image,
    channels]."""
    k = tj.Variable(rng.standard_normal((3, 3, channels, filters)).astype(np.float32),
                    name="k")
    pooled = (image // 2) ** 2 * filters
    d = tj.Variable(rng.standard_normal((pooled, classes)).astype(np.float32) * 0.2,
                    name="d")

    @tj.jit
    def cnn(x):
        y = tj.nn.relu(tj.nn.conv2d(x, k, strides=1, padding="SAME"))
        y = tj.nn.max_pool(y, 2, 2, "VALID")
        return tj.nn.softmax(tj.reshape(y, (x.shape[0], -1)) @ d)

    return cnn
