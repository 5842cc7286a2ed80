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
from ..trace.nn_ops import (  # noqa: F401, E402
    sigmoid_cross_entropy_with_logits,
    softmax_cross_entropy_with_logits,
    softmax_cross_entropy_with_logits_v2,
    sparse_softmax_cross_entropy_with_logits,
)
