"""Ahead-of-time builds: a function or a TF1 graph to a self-contained C library.

``tj.aot.compile(f, *example_args, out="build/digits")`` (or ``compile_session`` for a
Session's fetches and feeds, or ``tracejit aot FILE.py:FUNCTION --arg f32[1,8,8,1] -o
build/digits``) writes ``digits.o``, ``digits.so``, ``digits.h``, an example ``main.c``
and a README: the program of the CPU backend with its weights baked in, callable from
C, needing the C library and libm only. ``target=`` cross-compiles (``aarch64-linux-gnu``,
``x86-64-v3``, ...). See docs/aot.md.
"""

from .api import compile, compile_session, example_array  # noqa: A004
from .build import AotError, AotLibrary
from .c_sources import Buffer
from .elf import read_elf
from .freeze import FreezeError
from .link import LinkError
from .targets import TARGET_NAMES, AotTarget, parse_target

__all__ = ["compile", "compile_session", "example_array", "AotError", "AotLibrary", "Buffer",
           "FreezeError", "LinkError", "TARGET_NAMES", "AotTarget", "parse_target",
           "read_elf"]
