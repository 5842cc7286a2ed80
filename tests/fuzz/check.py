"""One program in this process: compile it for the CPU, run it twice (two argument sets,
so the second call goes through the native fast path and a reused arena), run the
reference interpreter on the same arguments, compare.

The outcome is a small dict that crosses the worker pipe as JSON:
``{"status": "ok" | "mismatch" | "error" | "invalid", "detail": str, "ops": int}``.
``error`` is an exception from tracing, compiling or running the compiled program;
``invalid`` an exception from the reference (a generator or reference-implementation
problem: the program is not a valid test).
"""

from __future__ import annotations

import contextlib
import os
import random
import traceback
import warnings

import numpy as np

import tracejit as tj

from .compare import compare
from .program import PLACER, Loaded, load


def _outputs(result) -> list[np.ndarray]:
    if isinstance(result, (tuple, list)):
        return [np.asarray(r) for r in result]
    return [np.asarray(result)]


def _copies(args) -> list[np.ndarray]:
    # NOTE: fresh arrays for each call: donated arguments may be overwritten.
    return [np.array(a, copy=True) for a in args]


def _short_error(exc: BaseException) -> str:
    frames = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return "".join(frames[-6:]).rstrip()


# The devices a placed check spreads a program's steps over (None: unpinned).
PLACES = (None, "/cpu:0", "/cpu:1", "/cpu:2")


def check_source(source: str, seed: int = 0, placed: bool = False,
                 device: str | None = None) -> dict:
    """Check the program a rendered source defines (see program.render); ``placed``:
    compile it with each step pinned at random to one of three CPU devices (needs
    ``TRACEJIT_CPU_DEVICES=3``), the reference unplaced; ``device``: compile it for that
    device (``gpu``: the CUDA backend, on the simulator with ``TRACEJIT_GPU=sim``)."""
    loaded = load(source)
    previous = os.environ.get("TRACEJIT_GEMM")
    if loaded.gemm != "auto":
        os.environ["TRACEJIT_GEMM"] = loaded.gemm
    try:
        return _check(loaded, seed, placed, device)
    finally:
        if previous is None:
            os.environ.pop("TRACEJIT_GEMM", None)
        else:
            os.environ["TRACEJIT_GEMM"] = previous


def _check(loaded: Loaded, seed: int, placed: bool = False,
           device: str | None = None) -> dict:
    reference = tj.jit(loaded.main, executor="interpreter")
    refs = []
    try:
        with np.errstate(all="ignore"):
            for args in (loaded.args, loaded.args2):
                refs.append(_outputs(reference(*_copies(args))))
            graph = tj.make_ir(loaded.main)(*loaded.args)
    except Exception as exc:
        return {"status": "invalid", "detail": "the reference failed:\n" + _short_error(exc)}
    compiled = tj.jit(loaded.main, donate_argnums=loaded.donate, executor=device)
    problems = []
    for call, (args, ref) in enumerate(zip((loaded.args, loaded.args2), refs, strict=True)):
        try:
            with warnings.catch_warnings(record=True) as caught, \
                    _placing(placed, seed, ("/gpu:0",) if device else ()):
                warnings.simplefilter("always")
                got = _outputs(compiled(*_copies(args)))
        except Exception as exc:
            return {"status": "error", "detail": f"call {call + 1} raised:\n" + _short_error(exc)}
        for w in caught:
            # NOTE: the backend abandons a compile past TRACEJIT_COMPILE_TIMEOUT and runs
            # the graph on the interpreter, which would then agree with itself.
            if w.category.__name__ == "CompileWarning":
                return {"status": "hang", "detail": f"call {call + 1}: {w.message}"}
        for problem in compare(got, ref, graph, args, seed + call):
            problems.append(f"call {call + 1} (ARGS{'' if call == 0 else '2'}): {problem}")
    if problems:
        return {"status": "mismatch", "detail": "\n".join(problems)}
    return {"status": "ok", "detail": ""}


@contextlib.contextmanager
def _placing(placed: bool, seed: int, more: tuple[str, ...] = ()):
    """Pin each traced step to a random device (the same ones for a given seed);
    ``more``: devices beside the three CPUs (a placed GPU check adds ``/gpu:0``, so
    values cross between host and device memory)."""
    if not placed:
        yield
        return
    choose = random.Random(seed).choice
    places = PLACES + tuple(more)
    PLACER.append(lambda: choose(places))
    try:
        yield
    finally:
        PLACER.clear()
