"""The PTB word-level language model of TensorFlow 1's RNN tutorial (Zaremba et al., 2014),
as TF1 code wrote it, on a synthetic corpus.

Only the import differs from a TensorFlow 1.x script: ``PTBModel`` stacks
``BasicLSTMCell``s (``forget_bias=0``) in a ``MultiRNNCell`` (with ``DropoutWrapper``
where ``keep_prob < 1``), looks the words up in an embedding, runs the steps with
``tf.nn.dynamic_rnn`` (``--rnn_mode static``: unrolled in ``variable_scope("RNN")`` as
the tutorial's own loop writes it; the same numbers, but straight-line code for every
step, which takes much longer to compile at the tutorial's sizes), scores them with
``tf.contrib.seq2seq.sequence_loss``, clips the gradients with ``tf.clip_by_global_norm``
and applies SGD whose learning rate decays by ``lr_decay`` each epoch after
``max_epoch``. The training, validation and test models share their variables
(``variable_scope("Model", reuse=True)``; the names are those of the tutorial's
checkpoints either way); each epoch carries the LSTM state from one batch to the next by
feeding the final state back as the initial one.

The Penn Treebank is not available offline, so the corpus is text drawn from a Markov
chain over ``vocab_size`` words (each word is followed by one of a few likely words): a
model that learns the chain reaches a perplexity near the chain's own (printed), far
below ``vocab_size``.

    python examples/ptb_lstm_tf1.py [--model small|medium|large|test|tiny]
        [--rnn_mode dynamic|static] [--max_max_epoch N] [--words N] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import tracejit.compat.v1 as tf


class SmallConfig:
    """The tutorial's small config."""
    init_scale = 0.1
    learning_rate = 1.0
    max_grad_norm = 5
    num_layers = 2
    num_steps = 20
    hidden_size = 200
    max_epoch = 4
    max_max_epoch = 13
    keep_prob = 1.0
    lr_decay = 0.5
    batch_size = 20
    vocab_size = 10000


class MediumConfig:
    init_scale = 0.05
    learning_rate = 1.0
    max_grad_norm = 5
    num_layers = 2
    num_steps = 35
    hidden_size = 650
    max_epoch = 6
    max_max_epoch = 39
    keep_prob = 0.5
    lr_decay = 0.8
    batch_size = 20
    vocab_size = 10000


class LargeConfig:
    init_scale = 0.04
    learning_rate = 1.0
    max_grad_norm = 10
    num_layers = 2
    num_steps = 35
    hidden_size = 1500
    max_epoch = 14
    max_max_epoch = 55
    keep_prob = 0.35
    lr_decay = 1 / 1.15
    batch_size = 20
    vocab_size = 10000


class TestConfig:
    """The tutorial's test config: tiny, for checking that the code runs."""
    init_scale = 0.1
    learning_rate = 1.0
    max_grad_norm = 1
    num_layers = 1
    num_steps = 2
    hidden_size = 2
    max_epoch = 1
    max_max_epoch = 1
    keep_prob = 1.0
    lr_decay = 0.5
    batch_size = 20
    vocab_size = 10000


class TinyConfig:
    """Small enough to learn a 30-word chain in seconds (the example's test)."""
    init_scale = 0.1
    learning_rate = 1.0
    max_grad_norm = 5
    num_layers = 2
    num_steps = 10
    hidden_size = 64
    max_epoch = 4
    max_max_epoch = 6
    keep_prob = 1.0
    lr_decay = 0.5
    batch_size = 8
    vocab_size = 30


CONFIGS = {"small": SmallConfig, "medium": MediumConfig, "large": LargeConfig,
           "test": TestConfig, "tiny": TinyConfig}


# ---- the corpus (the tutorial's reader.ptb_raw_data and ptb_iterator) ----------------------

def markov_corpus(vocab_size: int, words: int, seed: int):
    """``words`` word ids of a Markov chain, cut 80/10/10 into train/valid/test, and the
    chain's entropy rate as a perplexity (what a perfect model of it would score)."""
    rng = np.random.default_rng(seed)
    successors = np.stack([rng.choice(vocab_size, 3, replace=False)
                           for _ in range(vocab_size)])
    probs = np.array([0.6, 0.25, 0.15])
    text = np.empty(words, np.int32)
    text[0] = 0
    picks = rng.choice(3, size=words, p=probs)
    for k in range(1, words):
        text[k] = successors[text[k - 1], picks[k]]
    entropy = -float((probs * np.log(probs)).sum())
    cut1, cut2 = int(words * 0.8), int(words * 0.9)
    return text[:cut1], text[cut1:cut2], text[cut2:], float(np.exp(entropy))


def ptb_iterator(raw_data, batch_size, num_steps):
    """(x, y) batches [batch_size, num_steps]: the corpus as batch_size parallel streams,
    y one word on from x."""
    raw_data = np.array(raw_data, dtype=np.int32)
    batch_len = len(raw_data) // batch_size
    data = raw_data[:batch_size * batch_len].reshape(batch_size, batch_len)
    epoch_size = (batch_len - 1) // num_steps
    if epoch_size == 0:
        raise ValueError("epoch_size == 0, decrease batch_size or num_steps")
    for i in range(epoch_size):
        x = data[:, i * num_steps:(i + 1) * num_steps]
        y = data[:, i * num_steps + 1:(i + 1) * num_steps + 1]
        yield x, y


# ---- the model -------------------------------------------------------------------------------

class PTBModel:
    """The PTB model."""

    def __init__(self, is_training, config, rnn_mode="dynamic"):
        self.batch_size = batch_size = config.batch_size
        self.num_steps = num_steps = config.num_steps
        size = config.hidden_size
        vocab_size = config.vocab_size
        self._input_data = tf.placeholder(tf.int32, [batch_size, num_steps])
        self._targets = tf.placeholder(tf.int32, [batch_size, num_steps])

        def make_cell():
            cell = tf.contrib.rnn.BasicLSTMCell(size, forget_bias=0.0, state_is_tuple=True,
                                                reuse=not is_training)
            if is_training and config.keep_prob < 1:
                cell = tf.contrib.rnn.DropoutWrapper(cell, output_keep_prob=config.keep_prob)
            return cell

        cell = tf.contrib.rnn.MultiRNNCell([make_cell() for _ in range(config.num_layers)],
                                           state_is_tuple=True)
        self._initial_state = cell.zero_state(batch_size, tf.float32)

        with tf.device("/cpu:0"):
            embedding = tf.get_variable("embedding", [vocab_size, size], dtype=tf.float32)
            inputs = tf.nn.embedding_lookup(embedding, self._input_data)
        if is_training and config.keep_prob < 1:
            inputs = tf.nn.dropout(inputs, config.keep_prob)

        if rnn_mode == "dynamic":
            # NOTE: scope "RNN", so the variables have the static loop's names (those of
            # the tutorial's checkpoints)
            outputs, state = tf.nn.dynamic_rnn(cell, inputs,
                                               initial_state=self._initial_state, scope="RNN")
            output = tf.reshape(outputs, [-1, size])
        else:
            # Simplified version of tf.nn.static_rnn(), as the tutorial writes it.
            outputs = []
            state = self._initial_state
            with tf.variable_scope("RNN"):
                for time_step in range(num_steps):
                    if time_step > 0:
                        tf.get_variable_scope().reuse_variables()
                    (cell_output, state) = cell(inputs[:, time_step, :], state)
                    outputs.append(cell_output)
            output = tf.reshape(tf.concat(outputs, 1), [-1, size])

        softmax_w = tf.get_variable("softmax_w", [size, vocab_size], dtype=tf.float32)
        softmax_b = tf.get_variable("softmax_b", [vocab_size], dtype=tf.float32)
        logits = tf.nn.xw_plus_b(output, softmax_w, softmax_b)
        logits = tf.reshape(logits, [batch_size, num_steps, vocab_size])
        loss = tf.contrib.seq2seq.sequence_loss(
            logits, self._targets, tf.ones([batch_size, num_steps], dtype=tf.float32),
            average_across_timesteps=False, average_across_batch=True)
        self._cost = tf.reduce_sum(loss)
        self._final_state = state

        if not is_training:
            return
        self._lr = tf.Variable(0.0, trainable=False)
        tvars = tf.trainable_variables()
        grads, _ = tf.clip_by_global_norm(tf.gradients(self._cost, tvars),
                                          config.max_grad_norm)
        optimizer = tf.train.GradientDescentOptimizer(self._lr)
        self._train_op = optimizer.apply_gradients(
            zip(grads, tvars, strict=True),
            global_step=tf.train.get_or_create_global_step())
        self._new_lr = tf.placeholder(tf.float32, shape=[], name="new_learning_rate")
        self._lr_update = tf.assign(self._lr, self._new_lr)

    def assign_lr(self, session, lr_value):
        session.run(self._lr_update, feed_dict={self._new_lr: lr_value})

    input_data = property(lambda self: self._input_data)
    targets = property(lambda self: self._targets)
    initial_state = property(lambda self: self._initial_state)
    cost = property(lambda self: self._cost)
    final_state = property(lambda self: self._final_state)
    lr = property(lambda self: self._lr)
    train_op = property(lambda self: self._train_op)


def run_epoch(session, model, data, eval_op=None, verbose=False):
    """Runs the model on the given data; returns its perplexity."""
    epoch_size = ((len(data) // model.batch_size) - 1) // model.num_steps
    start_time = time.time()
    costs = 0.0
    iters = 0
    state = session.run(model.initial_state)
    fetches = {"cost": model.cost, "final_state": model.final_state}
    if eval_op is not None:
        fetches["eval_op"] = eval_op
    for step, (x, y) in enumerate(ptb_iterator(data, model.batch_size, model.num_steps)):
        feed_dict = {model.input_data: x, model.targets: y}
        for i, (c, h) in enumerate(model.initial_state):
            feed_dict[c] = state[i].c
            feed_dict[h] = state[i].h
        vals = session.run(fetches, feed_dict)
        cost = vals["cost"]
        state = vals["final_state"]
        costs += cost
        iters += model.num_steps
        if verbose and epoch_size >= 10 and step % (epoch_size // 10) == 10:
            speed = iters * model.batch_size / (time.time() - start_time)
            print(f"{step / epoch_size:.3f} perplexity: {np.exp(costs / iters):.3f} "
                  f"speed: {speed:.0f} wps")
    return np.exp(costs / iters)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="small", choices=sorted(CONFIGS))
    parser.add_argument("--rnn_mode", default="dynamic", choices=["dynamic", "static"])
    parser.add_argument("--max_max_epoch", type=int, default=None)
    parser.add_argument("--words", type=int, default=None,
                        help="corpus length (default: 200 per vocabulary word, at least 4000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    config = CONFIGS[args.model]()
    if args.max_max_epoch is not None:
        config.max_max_epoch = args.max_max_epoch
    eval_config = CONFIGS[args.model]()
    eval_config.batch_size = 1
    eval_config.num_steps = 1
    words = args.words or max(4000, 200 * config.vocab_size)
    train_data, valid_data, test_data, chain_perplexity = markov_corpus(
        config.vocab_size, words, args.seed)
    print(f"corpus: {words} words, vocabulary {config.vocab_size}; the chain's own "
          f"perplexity is {chain_perplexity:.2f}")

    with tf.Graph().as_default():
        tf.set_random_seed(args.seed)
        initializer = tf.random_uniform_initializer(-config.init_scale, config.init_scale)
        with tf.name_scope("Train"):
            with tf.variable_scope("Model", reuse=None, initializer=initializer):
                m = PTBModel(is_training=True, config=config, rnn_mode=args.rnn_mode)
        with tf.name_scope("Valid"):
            with tf.variable_scope("Model", reuse=True, initializer=initializer):
                mvalid = PTBModel(is_training=False, config=config, rnn_mode=args.rnn_mode)
        with tf.name_scope("Test"):
            with tf.variable_scope("Model", reuse=True, initializer=initializer):
                mtest = PTBModel(is_training=False, config=eval_config,
                                 rnn_mode=args.rnn_mode)

        results = {"train": [], "valid": []}
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            for i in range(config.max_max_epoch):
                lr_decay = config.lr_decay ** max(i + 1 - config.max_epoch, 0.0)
                m.assign_lr(session, config.learning_rate * lr_decay)
                print(f"Epoch: {i + 1} Learning rate: {session.run(m.lr):.3f}")
                train_perplexity = run_epoch(session, m, train_data, eval_op=m.train_op,
                                             verbose=True)
                print(f"Epoch: {i + 1} Train Perplexity: {train_perplexity:.3f}")
                valid_perplexity = run_epoch(session, mvalid, valid_data)
                print(f"Epoch: {i + 1} Valid Perplexity: {valid_perplexity:.3f}")
                results["train"].append(float(train_perplexity))
                results["valid"].append(float(valid_perplexity))
            test_perplexity = run_epoch(session, mtest, test_data)
            print(f"Test Perplexity: {test_perplexity:.3f}")
        results["test"] = float(test_perplexity)
        results["chain"] = chain_perplexity
        return results


if __name__ == "__main__":
    main()
