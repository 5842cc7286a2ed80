"""``tj.mixed_precision``: training and inference with 16-bit products (docs/quantization.md).

A policy makes the products (``matmul``, the convolutions) of code traced under it
compute on bfloat16 or float16 operands with float32 sums, while Variables stay float32
(master weights) and reductions and transcendental functions stay float32
(trace/autocast.py). float16 training wants loss scaling: ``LossScaleOptimizer``.

>>> import numpy as np, tracejit as tj
>>> tj.mixed_precision.set_global_policy("mixed_bfloat16")
>>> w = tj.Variable(np.ones((3, 2), np.float32))
>>> tj.jit(lambda x: x @ w)(np.ones((4, 3), np.float32)).dtype
tracejit.bfloat16
>>> tj.mixed_precision.set_global_policy("float32")
"""

from .trace.autocast import Policy, autocast, global_policy, set_global_policy
from .train.loss_scale import LossScaleOptimizer

__all__ = ["Policy", "set_global_policy", "global_policy", "autocast", "LossScaleOptimizer"]
