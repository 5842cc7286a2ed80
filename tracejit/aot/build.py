"""The ahead-of-time pipeline: a pure graph to an object file, a shared library, a header.

1. the CPU device's passes (``passes.pipeline.optimize`` with ``CPU_PASSES``), as for
   the JIT -- constant folding now sees the weights;
2. ``program.build_program`` under ``standalone_code`` (own gemm kernels, no BLAS, no
   measurement, one thread: no pool): ``<name>_program_run`` over an arena;
3. the C API around it (c_api.py), the module retargeted to the build's triple;
4. LLVM's O3 pipeline and ``emit_object`` with the target's machine (PIC), checked with
   the ELF reader: its machine, its exports, and that it calls nothing beyond the C
   library and libm;
5. ``cc -shared`` where a C compiler for the target exists, then the header, an example
   ``main.c`` and a README.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ..codegen_cpu.host.machine import LLVM_LOCK, parse, run_pipeline
from ..codegen_cpu.host.program import Unsupported, build_program
from ..codegen_cpu.host.standalone import standalone_code
from ..codegen_cpu.pipeline import CPU_PASSES
from ..ir import dtypes as dt
from ..ir.core import Graph
from ..passes.pipeline import optimize
from .c_api import add_c_api, weights_header
from .c_sources import Buffer, Description, example_main, header, readme
from .elf import read_elf
from .freeze import c_names, check_identifier
from .link import ALLOWED_LIBRARIES, LinkError, check_symbols, link_shared
from .targets import AotTarget

__all__ = ["AotLibrary", "AotError", "build_library", "WEIGHT_MODES"]

WEIGHT_MODES = ("embed", "file")


class AotError(ValueError):
    """The graph cannot be built ahead of time (an op without a CPU lowering, ...)."""


@dataclass
class AotLibrary:
    """What a build wrote. ``files`` maps ``object``, ``shared`` (absent without a C
    compiler for the target), ``header``, ``main``, ``readme`` and, with the weights in
    a file, ``weights`` to their paths; ``note`` says why a file is missing."""

    name: str
    target: AotTarget
    args: tuple[Buffer, ...]
    results: tuple[Buffer, ...]
    weights_bytes: int
    files: dict[str, Path] = field(default_factory=dict)
    note: str = ""

    @property
    def shared(self) -> Path | None:
        return self.files.get("shared")

    @property
    def object(self) -> Path:
        return self.files["object"]

    def size(self, kind: str = "shared") -> int:
        """Bytes of one of the files (0 when it was not built)."""
        path = self.files.get(kind)
        return path.stat().st_size if path is not None else 0

    def __repr__(self) -> str:
        made = ", ".join(f"{p.name} ({p.stat().st_size} B)" for p in self.files.values())
        return f"AotLibrary({self.name!r} for {self.target.describe()}: {made})"


def _buffers(specs, labels, stem: str) -> tuple[Buffer, ...]:
    names = c_names(labels, stem)
    return tuple(Buffer(name, tuple(spec.shape), spec.dtype,
                        dt.as_dtype(spec.dtype).itemsize)
                 for name, spec in zip(names, specs, strict=True))


def build_library(graph: Graph, out: str | Path, target: AotTarget, *,
                  weights: str = "embed", source: str = "a tracejit function",
                  arg_labels=None, result_labels=None) -> AotLibrary:
    """Build ``graph`` (pure: no variable inputs) into the files ``out`` names:
    ``build/digits`` -> ``build/digits.o``, ``build/digits.so``, ``build/digits.h``,
    ``build/main.c``, ``build/README``; the last part of ``out`` is the library's name,
    which prefixes its C symbols (``digits_run``)."""
    out = Path(out)
    directory = out.parent
    name = check_identifier(out.name, "the library's name (the last part of out)")
    if weights not in WEIGHT_MODES:
        raise ValueError(f"weights={weights!r}: expected 'embed' or 'file'")
    fused = optimize(graph, device_passes=CPU_PASSES)
    prefix = f"{name}_program"
    try:
        with standalone_code(target.vector_isa):
            built = build_program(fused, prefix=prefix)
    except Unsupported as exc:
        raise AotError(f"{source} cannot be built ahead of time: {exc} (it would run on "
                       "the reference interpreter in the JIT)") from None
    layout = built.layout
    args = _buffers(layout.args, arg_labels or [a.label for a in layout.args], "arg")
    results = _buffers(layout.results, result_labels or [], "result")
    in_file = weights == "file"
    weights_id = int.from_bytes(hashlib.sha256(built.consts + repr(
        (name, layout.args, layout.results)).encode()).digest()[:8], "little")
    machine = target.machine()
    module = built.module
    module.triple, module.data_layout = target.triple, str(machine.target_data)
    api = add_c_api(module, prefix, name, arg_bytes=[b.nbytes for b in args],
                    result_bytes=[b.nbytes for b in results],
                    arena_bytes=layout.arena_bytes, consts=built.consts,
                    weights_id=weights_id if in_file else None)
    ref = run_pipeline(parse(module), machine, 3)
    with LLVM_LOCK:
        obj = machine.emit_object(ref)
    elf = read_elf(obj)
    check_symbols(elf.undefined(), source)
    missing = [s for s in api.symbols if not elf.defined(s)]
    if elf.machine != target.elf_machine or missing:
        raise LinkError(f"the object for {target.describe()} is not what was asked for "
                        f"(ELF machine {elf.machine}, missing {missing})")

    directory.mkdir(parents=True, exist_ok=True)
    library = AotLibrary(name, target, args, results, len(built.consts))
    files = library.files
    files["object"] = directory / f"{name}.o"
    files["object"].write_bytes(obj)
    if in_file:
        files["weights"] = directory / f"{name}.weights"
        files["weights"].write_bytes(weights_header(len(built.consts), weights_id)
                                     + built.consts)
    compilers = target.c_compilers()
    if compilers:
        files["shared"] = directory / f"{name}.so"
        link_shared(compilers[0], files["object"], files["shared"])
        needed = set(read_elf(files["shared"].read_bytes()).needed)
        if not needed <= ALLOWED_LIBRARIES:
            raise LinkError(f"{files['shared']} needs {sorted(needed - ALLOWED_LIBRARIES)} "
                            "beyond the C library and libm")
        so_note = f"`{name}.so` was linked with {Path(compilers[0]).name}."
    else:
        library.note = (f"no C compiler for {target.triple} was found ({target.arch}-linux-gnu-"
                        f"gcc): {name}.so was not linked; link {name}.o with the target's "
                        f"toolchain: {target.arch}-linux-gnu-gcc -shared -o {name}.so "
                        f"{name}.o -lm")
        so_note = library.note
    description = Description(name, source, target.describe(), args, results, in_file,
                              len(built.consts))
    files["header"] = directory / f"{name}.h"
    files["header"].write_text(header(description))
    files["main"] = directory / "main.c"
    files["main"].write_text(example_main(description))
    files["readme"] = directory / "README"
    listed = [p.name for p in files.values()] + ["README"]
    files["readme"].write_text(readme(description, listed, so_note))
    return library

