"""A generated kernel: Python source for numba.cuda, its parameters, and how to launch it.

Kernels are generated as Python source (not LLVM NVPTX IR) so that one text serves
three ways: numba.cuda compiles it to PTX for the GPU (through NVVM and libdevice, so
``math.exp`` is the GPU's own), the CUDA simulator runs it on machines without a GPU
(the CI's op-table tests), and ``tracejit ir --stage ptx`` shows the PTX a GPU would
run. The source is registered with ``linecache``, so a traceback inside a kernel (in
the simulator) shows the generated line.
"""

from __future__ import annotations

import hashlib
import itertools
import linecache
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..ir.dtypes import DType
from .scalars import numba_type_name

__all__ = ["Param", "Arg", "Launch", "GeneratedKernel", "SourceWriter", "kernel_source"]

def kernel_source(stem: str, params: Sequence[Param], body: Sequence[str]) -> tuple[str, str]:
    """``(name, source)`` of a kernel whose name is ``stem`` and a hash of its text: the
    same kernel always gets the same name, so compiled kernels are shared by name and
    ``--stage ptx`` prints the same text from run to run."""
    lines = ["    " + line for line in body]
    digest = hashlib.sha1("\n".join([stem, *(p.numba_type() for p in params), *lines])
                          .encode()).hexdigest()[:10]
    name = f"tj_{stem}_{digest}"
    header = f"def {name}({', '.join(p.name for p in params)}):"
    return name, "\n".join([header, *lines]) + "\n"


@dataclass(frozen=True)
class Param:
    """One kernel parameter: a flat device array of ``dtype``'s storage, or a scalar
    (``dtype`` None: an int64)."""

    name: str
    dtype: DType | None = None

    def numba_type(self) -> str:
        if self.dtype is None:
            return "numba.types.int64"
        return f"numba.types.{numba_type_name(self.dtype)}[::1]"


@dataclass(frozen=True)
class Launch:
    """A launch configuration: ``grid`` blocks of ``block`` threads, ``shared`` bytes of
    dynamic shared memory (kernels here size theirs statically, so 0)."""

    grid: int
    block: int


@dataclass(frozen=True)
class Arg:
    """What the program passes for a parameter: ``("out", k)``/``("in", k)`` the
    equation's k-th output/input buffer, ``("const", ConstValue)`` a constant uploaded
    once, ``("scratch", (count, dtype))`` a temporary buffer, ``("int", value)``."""

    kind: str
    key: object


@dataclass
class GeneratedKernel:
    name: str
    source: str
    params: list[Param]
    args: list[Arg]
    launch: Launch
    kind: str = "elementwise"          # what made it (for listings and tests)

    def signature(self, numba_module) -> tuple:
        return tuple(eval(p.numba_type(), {"numba": numba_module})  # noqa: S307
                     for p in self.params)

    def function(self, namespace: dict) -> Callable:
        """The kernel as a Python function defined in ``namespace``."""
        filename = f"<tracejit-cuda:{self.name}>"
        linecache.cache[filename] = (len(self.source), None,
                                     self.source.splitlines(True), filename)
        scope = dict(namespace)
        exec(compile(self.source, filename, "exec"), scope)     # noqa: S102 (generated)
        return scope[self.name]


class SourceWriter:
    """Lines of Python source with indentation, and fresh temporary names."""

    def __init__(self):
        self.lines: list[str] = []
        self.depth = 0
        self._temps = itertools.count()

    def line(self, text: str) -> None:
        self.lines.append("    " * self.depth + text)

    def temp(self, stem: str = "t") -> str:
        return f"{stem}{next(self._temps)}"

    def indent(self):
        writer = self

        class _Block:
            def __enter__(self):
                writer.depth += 1

            def __exit__(self, *exc):
                writer.depth -= 1
        return _Block()

    def body(self) -> list[str]:
        """The lines written at depth 1 and deeper, as a function body."""
        return [line[4:] for line in self.lines]
