"""``tracejit.random``: counter-based random numbers (see trace/random_ops.py)."""

from .trace.random_ops import (  # noqa: F401
    PRNGKey,
    bernoulli,
    bits,
    fold_in,
    key,
    normal,
    split,
    truncated_normal,
    uniform,
)
