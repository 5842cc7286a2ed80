"""Neural-network functions (``tracejit.nn.relu``, ``softmax``, ...)."""

from ..trace.nn_ops import (  # noqa: F401
    bias_add,
    elu,
    gelu,
    l2_loss,
    l2_normalize,
    leaky_relu,
    log_softmax,
    relu,
    relu6,
    sigmoid,
    silu,
    softmax,
    softplus,
    swish,
    tanh,
)
