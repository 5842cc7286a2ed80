"""Convolution and pooling kernels (filled in by their author).

``RULES[op](eqn, simulating) -> list[GeneratedKernel]`` (args relative to ``eqn``).
"""

from __future__ import annotations

RULES: dict = {}
