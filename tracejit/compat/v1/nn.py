"""``tf.nn`` in a TF1 graph."""

from .embeddings import embedding_lookup
from .ops import dropout, nn_ops_table
from .sort_ops import in_top_k, top_k

globals().update(nn_ops_table)
__all__ = sorted(nn_ops_table) + ["dropout", "embedding_lookup", "in_top_k", "top_k"]
