"""A differential fuzzer: random programs over the whole op table, compiled by the CPU
backend and run by the reference interpreter, compared with dtype-aware tolerances.

See docs/testing.md. Modules: ``program`` (the program record and its Python source),
``generate`` (programs from the op table), ``control`` (their branches and loops, over
random regions), ``compare`` (tolerances), ``check`` (one program in this process),
``runner`` and ``worker`` (many programs in subprocesses under a deadline),
``minimize``, ``known_bugs`` and ``__main__`` (the command line).
"""
