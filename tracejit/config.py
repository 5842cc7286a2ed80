"""Process-wide settings. A leaf module: every layer may import it; it imports nothing.

Settings start from environment variables and can be changed at run time:

* ``executor`` (``TRACEJIT_EXECUTOR``): which registered executor runs compiled graphs
  and eager ops; ``"interpreter"`` is the NumPy reference.
* ``log_compiles`` (``TRACEJIT_LOG=compiles``): print why each compile happened.
* ``recompile_is_error``: raise instead of recompiling a function that already compiled
  once (for tests that guard against cache misses); see :func:`forbid_recompiles`.
* ``threads``: threads a compiled kernel may use (0: ``TRACEJIT_THREADS``, else the
  cores); code compiled from then on uses it. A TF1 Session sets it from
  ``ConfigProto.intra_op_parallelism_threads`` while it runs.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field


def _log_flags() -> frozenset[str]:
    return frozenset(f.strip() for f in os.environ.get("TRACEJIT_LOG", "").split(",") if f.strip())


@dataclass
class Config:
    executor: str = field(default_factory=lambda: os.environ.get("TRACEJIT_EXECUTOR", ""))
    log_compiles: bool = field(default_factory=lambda: "compiles" in _log_flags())
    recompile_is_error: bool = False
    dump_dir: str = field(default_factory=lambda: os.environ.get("TRACEJIT_DUMP", ""))
    threads: int = 0

    def update(self, **changes) -> None:
        for name, value in changes.items():
            if not hasattr(self, name):
                raise AttributeError(f"unknown tracejit setting {name!r}")
            setattr(self, name, value)
        for listener in _LISTENERS:
            listener(frozenset(changes))


# NOTE: called with the names of changed settings after every update; @jit drops its
# native fast paths when the executor changes.
_LISTENERS: list = []


def on_change(listener) -> None:
    """Call ``listener(names)`` after every :meth:`Config.update`."""
    _LISTENERS.append(listener)


config = Config()


@contextlib.contextmanager
def settings(**changes):
    """Temporarily change settings: ``with settings(executor="interpreter"): ...``."""
    saved = {name: getattr(config, name) for name in changes}
    config.update(**changes)
    try:
        yield config
    finally:
        config.update(**saved)


def forbid_recompiles():
    """Context manager: any compile of an already-compiled function raises RecompileError."""
    return settings(recompile_is_error=True)
