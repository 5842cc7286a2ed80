"""Neural-network functions (``tracejit.nn.relu``, ``softmax``, losses, ...)."""

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
    sigmoid_cross_entropy_with_logits,
    silu,
    softmax,
    softmax_cross_entropy_with_logits,
    softmax_cross_entropy_with_logits_v2,
    softplus,
    sparse_softmax_cross_entropy_with_logits,
    swish,
    tanh,
)
