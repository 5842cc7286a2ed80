"""``tf.sparse``: TensorFlow 1's sparse-tensor names (``tf.sparse.to_dense`` is
``tf.sparse_tensor_to_dense`` with a gradient when the dense shape is known, ...)."""

from .sparse import SparseTensor, SparseTensorValue  # noqa: F401
from .sparse_ops import sparse_add as add  # noqa: F401
from .sparse_ops import sparse_placeholder as placeholder  # noqa: F401
from .sparse_ops import sparse_reduce_sum as reduce_sum  # noqa: F401
from .sparse_ops import sparse_tensor_dense_matmul as matmul  # noqa: F401
from .sparse_ops import sparse_tensor_dense_matmul as sparse_dense_matmul  # noqa: F401
from .sparse_ops import to_dense  # noqa: F401

__all__ = ["SparseTensor", "SparseTensorValue", "add", "placeholder", "reduce_sum", "matmul",
           "sparse_dense_matmul", "to_dense"]
