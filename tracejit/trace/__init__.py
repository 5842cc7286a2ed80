"""Tracing: @jit, the tensor values (Tracer, Array), and the functions users call."""

# NOTE: values first: it imports the op functions, which import tracing, which needs
# the value classes already defined.
from .values import Array, Tensor, Tracer  # noqa: F401, I001
from .executors import clear_caches, get_executor, register_executor  # noqa: F401
from .jit import JitFunction, jit, make_ir  # noqa: F401
from .tracing import bind, to_tensor  # noqa: F401
