"""Tracing: @jit, the tensor values (Tracer, Array), and the functions users call."""

from . import array_ops, indexing, math_ops
from .jit import JitFunction, jit, make_ir  # noqa: F401
from .tracing import bind, to_tensor  # noqa: F401
from .values import Array, Tensor, Tracer, bind_operators  # noqa: F401

bind_operators(array_ops, math_ops, indexing)
