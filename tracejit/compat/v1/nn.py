"""``tf.nn`` in a TF1 graph."""

from .candidate_sampling import (
    all_candidate_sampler,
    fixed_unigram_candidate_sampler,
    log_uniform_candidate_sampler,
    nce_loss,
    sampled_softmax_loss,
    uniform_candidate_sampler,
)
from .embeddings import embedding_lookup
from .ops import dropout, nn_ops_table, ops
from .rnn import bidirectional_dynamic_rnn, dynamic_rnn, static_bidirectional_rnn, static_rnn
from .rnn_cell_wrappers import rnn_cell_namespace as rnn_cell
from .sort_ops import in_top_k, top_k

globals().update(nn_ops_table)


def xw_plus_b(x, weights, biases, name=None):
    """``matmul(x, weights) + biases``."""
    return nn_ops_table["bias_add"](ops["matmul"](x, weights), biases, name=name)


__all__ = sorted(nn_ops_table) + [
    "dropout", "embedding_lookup", "in_top_k", "top_k", "nce_loss", "sampled_softmax_loss",
    "log_uniform_candidate_sampler", "uniform_candidate_sampler",
    "fixed_unigram_candidate_sampler", "all_candidate_sampler", "dynamic_rnn", "static_rnn",
    "rnn_cell", "bidirectional_dynamic_rnn", "static_bidirectional_rnn", "xw_plus_b"]
