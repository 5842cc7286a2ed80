"""Candidate samplers and sampled losses in a TF1 graph: ``tf.nn.nce_loss``,
``tf.nn.sampled_softmax_loss``, ``tf.nn.log_uniform_candidate_sampler`` (also
``tf.random.``), ``uniform_candidate_sampler``, ``fixed_unigram_candidate_sampler`` and
``all_candidate_sampler``.

A sampler is one op of the compiled step (tracejit/trace/candidate_sampling.py): like
``tf.random_uniform``, it draws new classes on every ``Session.run``, from its own seed
(the graph seed and an op seed, or ``seed``) and the graph's run counter.
"""

from __future__ import annotations

from ...ir import dtypes as dt
from ...trace import array_ops, candidate_sampling, math_ops, sampled_losses
from .graph import get_default_graph
from .ops import convert_to_tensor, graph_arg, graph_op, op_seed_of, ops, rng_counter
from .partitioned import PartitionedVariable

__all__ = ["all_candidate_sampler", "fixed_unigram_candidate_sampler",
           "log_uniform_candidate_sampler", "nce_loss", "sampled_softmax_loss",
           "uniform_candidate_sampler"]


def _sampler_op(kind: str, distribution, true_classes, num_true: int, num_sampled: int,
                unique: bool, seed, name):
    """The op drawing ``num_sampled`` classes from ``distribution()`` on every run:
    ``(sampled_candidates, true_expected_count, sampled_expected_count)``."""
    graph = get_default_graph()
    counter = rng_counter(graph)
    op_seed = op_seed_of(graph, seed)

    def sample(true_classes):
        count = counter.read_value()
        counter.assign(count + 1)
        key = array_ops.stack([math_ops.cast(op_seed, dt.int32), count])
        return candidate_sampling.sample_candidates(
            distribution(), true_classes, int(num_true), int(num_sampled), bool(unique), key,
            kind)

    true_classes = convert_to_tensor(graph_arg(true_classes), dtype=dt.int64)
    created = graph.create_op(kind, sample, (true_classes,), name=name or kind)
    return tuple(created.structured_outputs())


def log_uniform_candidate_sampler(true_classes, num_true, num_sampled, unique, range_max,
                                  seed=None, name=None):
    """Classes drawn with ``P(k) = log((k + 2) / (k + 1)) / log(range_max + 1)``
    (Zipf's law, for classes sorted by decreasing frequency)."""
    return _sampler_op("LogUniformCandidateSampler",
                       lambda: candidate_sampling.log_uniform(int(range_max)), true_classes,
                       num_true, num_sampled, unique, seed, name)


def uniform_candidate_sampler(true_classes, num_true, num_sampled, unique, range_max,
                              seed=None, name=None):
    """Classes drawn uniformly from ``[0, range_max)``."""
    return _sampler_op("UniformCandidateSampler",
                       lambda: candidate_sampling.uniform(int(range_max)), true_classes,
                       num_true, num_sampled, unique, seed, name)


def fixed_unigram_candidate_sampler(true_classes, num_true, num_sampled, unique, range_max,
                                    vocab_file="", distortion=1.0, num_reserved_ids=0,
                                    num_shards=1, shard=0, unigrams=(), seed=None, name=None):
    """Classes drawn in proportion to ``unigrams[k] ** distortion`` (ids below
    ``num_reserved_ids`` and those of other shards never). ``vocab_file`` holds one
    CSV line per id, its last field the count."""
    if bool(vocab_file) == bool(len(unigrams)):
        raise ValueError("fixed_unigram_candidate_sampler needs exactly one of vocab_file "
                         "and unigrams")
    if vocab_file:
        with open(vocab_file) as lines:
            unigrams = [float(line.rstrip("\n").split(",")[-1]) for line in lines
                        if line.strip()]
    counts = list(unigrams)
    return _sampler_op(
        "FixedUnigramCandidateSampler",
        lambda: candidate_sampling.fixed_unigram(int(range_max), counts, float(distortion),
                                                 int(num_reserved_ids), int(num_shards),
                                                 int(shard)),
        true_classes, num_true, num_sampled, unique, seed, name)


def _all_candidates(true_classes, num_true, num_sampled):
    return candidate_sampling.all_candidates(true_classes, num_true, num_sampled)


def all_candidate_sampler(true_classes, num_true, num_sampled, unique, seed=None, name=None):
    """The classes ``0 .. num_sampled - 1``, each expected once (for tests)."""
    true_classes = convert_to_tensor(graph_arg(true_classes), dtype=dt.int64)
    return tuple(graph_op(_all_candidates, "AllCandidateSampler")(
        true_classes, int(num_true), int(num_sampled), name=name))


def _partitions(params):
    return list(params) if isinstance(params, PartitionedVariable) else params


def _sampled_loss(kind, loss, weights, biases, labels, inputs, num_sampled, num_classes,
                  num_true, sampled_values, remove_accidental_hits, partition_strategy,
                  seed, name):
    if sampled_values is None:
        # NOTE: TF samples with the labels as [batch_size, num_true] int64
        true_classes = ops["reshape"](convert_to_tensor(graph_arg(labels), dtype=dt.int64),
                                      [-1, int(num_true)])
        sampled_values = log_uniform_candidate_sampler(true_classes, num_true, num_sampled,
                                                       True, num_classes, seed=seed)
    return graph_op(loss, kind)(
        _partitions(weights), _partitions(biases), labels, inputs, int(num_sampled),
        int(num_classes), int(num_true), tuple(sampled_values), bool(remove_accidental_hits),
        partition_strategy, name=name)


def nce_loss(weights, biases, labels, inputs, num_sampled, num_classes, num_true=1,
             sampled_values=None, remove_accidental_hits=False, partition_strategy="mod",
             name="nce_loss"):
    """Noise-contrastive estimation loss per example (``[batch_size]``); classes are
    sampled log-uniformly (``unique=True``) unless ``sampled_values`` is given."""
    return _sampled_loss("NceLoss", sampled_losses.nce_loss, weights, biases, labels, inputs,
                         num_sampled, num_classes, num_true, sampled_values,
                         remove_accidental_hits, partition_strategy, None, name)


def sampled_softmax_loss(weights, biases, labels, inputs, num_sampled, num_classes,
                         num_true=1, sampled_values=None, remove_accidental_hits=True,
                         partition_strategy="mod", name="sampled_softmax_loss", seed=None):
    """Sampled softmax loss per example (``[batch_size]``)."""
    return _sampled_loss("SampledSoftmaxLoss", sampled_losses.sampled_softmax_loss, weights,
                         biases, labels, inputs, num_sampled, num_classes, num_true,
                         sampled_values, remove_accidental_hits, partition_strategy, seed,
                         name)
