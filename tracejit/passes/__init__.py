"""Optimization passes: pure ``Graph -> Graph`` functions run by one explicit pipeline
(pipeline.py: CLEANUP for every device, then the device's own passes), plus the
memory-planning analysis. See docs/passes.md."""

from .cse import eliminate_common_subexpressions  # noqa: F401
from .dce import eliminate_dead_code  # noqa: F401
from .fold import fold_constants  # noqa: F401
from .fuse import fuse_kernels  # noqa: F401
from .memory import MemoryPlan, plan_memory  # noqa: F401
from .pipeline import CLEANUP, optimize, run_stages  # noqa: F401
from .simplify import simplify_algebra  # noqa: F401
