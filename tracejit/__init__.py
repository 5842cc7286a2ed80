"""tracejit: write Python over tensors; it is traced into an SSA IR, optimized, compiled
and run.

>>> import numpy as np, tracejit
>>> @tracejit.jit
... def predict(w, x):
...     return tracejit.nn.relu(x @ w)
>>> predict(np.eye(2, dtype=np.float32), np.ones((3, 2), np.float32)).shape
(3, 2)
"""

from . import initializers, mixed_precision, nn, random, train  # noqa: F401
from .config import config, forbid_recompiles, settings  # noqa: F401
from .ir.dtypes import (  # noqa: F401
    DType,
    as_dtype,
    bfloat16,
    bool_,
    float16,
    float32,
    float64,
    int8,
    int32,
    int64,
    uint8,
)
from .ir.errors import (  # noqa: F401
    DTypeError,
    ParamError,
    RecompileError,
    ShapeError,
    TracejitError,
    TracerError,
)
from .quant import quantize, quantize_session  # noqa: F401
from .runtime.registry import clear_caches, devices  # noqa: F401
from .trace.array_ops import *  # noqa: F401,F403
from .trace.array_ops import range, slice  # noqa: F401,A004
from .trace.autodiff import custom_gradient, grad, gradients, value_and_grad  # noqa: F401
from .trace.control_flow import case, cond, fori_loop, scan, switch, while_loop  # noqa: F401
from .trace.device_scope import device, device_put  # noqa: F401
from .trace.indexed_slices import IndexedSlices  # noqa: F401
from .trace.indexing import IndexingError, strided_slice  # noqa: F401
from .trace.jit import JitFunction, jit, make_ir  # noqa: F401
from .trace.math_ops import *  # noqa: F401,F403
from .trace.math_ops import abs, pow, round  # noqa: F401,A004
from .trace.sort_ops import argsort, cumprod, cumsum, in_top_k, sort, top_k  # noqa: F401
from .trace.tracing import cast  # noqa: F401
from .trace.values import Array, DeviceArray, Tensor, Tracer  # noqa: F401
from .trace.variables import Variable  # noqa: F401

bool = bool_  # noqa: A001 - tracejit.bool like tf.bool


def __getattr__(name: str):
    # NOTE: tracejit.cluster loads ZeroMQ, tracejit.summary TensorBoard's protocol
    # buffers, tracejit.aot the CPU backend: only when a program asks for them
    if name in ("cluster", "summary", "data", "aot"):
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'tracejit' has no attribute {name!r}")
__version__ = "0.1.0"
# Devices (the CPU backend, the reference interpreter, ...) are made on first use by the
# runtime's registry: importing tracejit loads no backend.
