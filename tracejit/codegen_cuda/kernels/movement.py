"""Movement ops with loops of their own: gather, scatter_add, one_hot, pad, concat,
stack, custom_vjp's forward (filled in by the movement kernels' author).

``RULES[op](eqn, simulating) -> list[GeneratedKernel]`` (args relative to ``eqn``).
"""

from __future__ import annotations

RULES: dict = {}
