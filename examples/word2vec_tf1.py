"""word2vec (skip-gram with noise-contrastive estimation), as TensorFlow's
``word2vec_basic.py`` tutorial wrote it, on a small synthetic language.

Only the import differs from the TensorFlow 1.x tutorial's graph and training loop:
``embeddings = tf.Variable(tf.random_uniform([V, D], -1, 1))``, ``tf.nn.embedding_lookup``,
``nce_weights``/``nce_biases``, ``tf.reduce_mean(tf.nn.nce_loss(...))`` (classes drawn by
the log-uniform sampler inside the compiled step), ``GradientDescentOptimizer(1.0)``
(which updates only the embedding rows each batch looks up: the gradients are
``IndexedSlices``), a loss summary, and the cosine similarity of a few validation words
to every word through the normalized embeddings. ``generate_batch`` is the tutorial's
(a sliding window over the corpus, ``num_skips`` context words per centre word).

Instead of downloading text8 the corpus is written here: a language of topics (animals,
colours, food, ...), each sentence about one topic, its content words drawn from that
topic among a few function words that go everywhere. Words of one topic share their
contexts, so after training each word's nearest neighbours are words of its topic.

    python examples/word2vec_tf1.py [--steps 3001] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import math
import random

import numpy as np

import tracejit.compat.v1 as tf

TOPICS = {
    "animals": ["cat", "dog", "horse", "cow", "sheep", "goat"],
    "colours": ["red", "green", "blue", "yellow", "purple", "orange"],
    "food": ["bread", "cheese", "apple", "soup", "rice", "cake"],
    "weather": ["rain", "snow", "wind", "storm", "cloud", "sun"],
    "music": ["piano", "violin", "drum", "guitar", "flute", "song"],
    "numbers": ["one", "two", "three", "four", "five", "six"],
    "family": ["mother", "father", "sister", "brother", "uncle", "aunt"],
    "tools": ["hammer", "saw", "drill", "wrench", "nail", "screw"],
}
FUNCTION_WORDS = ["the", "a", "and", "of", "is", "in", "with", "very"]
# NOTE: rare words (names), each seen a few times: build_dataset's vocabulary leaves them
# out, so they become 'UNK', as text8's rare words do in the tutorial
RARE_WORDS = ["anna", "boris", "carla", "dmitri", "elena", "farid", "greta", "hugo",
              "ines", "jonas", "kira", "luca", "mona", "nils", "olga", "pavel"]


def synthetic_corpus(num_sentences=3000, seed=0):
    """A list of words: sentences of 6 to 10 words about one topic each, about a third
    of their words function words. Frequencies differ between words (as in text)."""
    rng = random.Random(seed)
    topics = list(TOPICS.values())
    # NOTE: Zipf-like weights within a topic, so word ids ordered by frequency (as
    # build_dataset orders them) suit the log-uniform sampler
    weights = [1.0 / (rank + 1) ** 0.5 for rank in range(6)]
    words = []
    for _ in range(num_sentences):
        topic = rng.choice(topics)
        for _ in range(rng.randint(6, 10)):
            roll = rng.random()
            if roll < 0.02:
                words.append(rng.choice(RARE_WORDS))
            elif roll < 0.35:
                words.append(rng.choice(FUNCTION_WORDS))
            else:
                words.append(rng.choices(topic, weights)[0])
    return words


def build_dataset(words, n_words):
    """The tutorial's: ids by decreasing frequency, 'UNK' (0) for the rarest words."""
    count = [["UNK", -1]]
    count.extend(collections.Counter(words).most_common(n_words - 1))
    dictionary = {word: i for i, (word, _) in enumerate(count)}
    data = []
    unk_count = 0
    for word in words:
        index = dictionary.get(word, 0)
        if index == 0:
            unk_count += 1
        data.append(index)
    count[0][1] = unk_count
    reversed_dictionary = dict(zip(dictionary.values(), dictionary.keys(), strict=True))
    return data, count, dictionary, reversed_dictionary


class BatchGenerator:
    """The tutorial's ``generate_batch``, its ``data_index`` kept here (not a global)."""

    def __init__(self, data, seed=0):
        self.data = data
        self.data_index = 0
        self.rng = random.Random(seed)

    def generate_batch(self, batch_size, num_skips, skip_window):
        assert batch_size % num_skips == 0
        assert num_skips <= 2 * skip_window
        batch = np.ndarray(shape=(batch_size,), dtype=np.int32)
        labels = np.ndarray(shape=(batch_size, 1), dtype=np.int32)
        span = 2 * skip_window + 1    # [ skip_window target skip_window ]
        buffer = collections.deque(maxlen=span)
        if self.data_index + span > len(self.data):
            self.data_index = 0
        buffer.extend(self.data[self.data_index:self.data_index + span])
        self.data_index += span
        for i in range(batch_size // num_skips):
            context_words = [w for w in range(span) if w != skip_window]
            words_to_use = self.rng.sample(context_words, num_skips)
            for j, context_word in enumerate(words_to_use):
                batch[i * num_skips + j] = buffer[skip_window]
                labels[i * num_skips + j, 0] = buffer[context_word]
            if self.data_index == len(self.data):
                buffer.extend(self.data[0:span])
                self.data_index = span
            else:
                buffer.append(self.data[self.data_index])
                self.data_index += 1
        # Backtrack a little bit to avoid skipping words in the end of a batch
        self.data_index = (self.data_index + len(self.data) - span) % len(self.data)
        return batch, labels


def build_graph(vocabulary_size, valid_examples, batch_size=128, embedding_size=32,
                num_sampled=16):
    """The tutorial's graph: (train_inputs, train_labels, loss, optimizer, merged,
    normalized_embeddings, similarity)."""
    with tf.name_scope("inputs"):
        train_inputs = tf.placeholder(tf.int32, shape=[batch_size])
        train_labels = tf.placeholder(tf.int32, shape=[batch_size, 1])
        valid_dataset = tf.constant(valid_examples, dtype=tf.int32)

    # Ops and variables pinned to the CPU because of missing GPU implementation
    with tf.device("/cpu:0"):
        # Look up embeddings for inputs.
        with tf.name_scope("embeddings"):
            embeddings = tf.Variable(
                tf.random_uniform([vocabulary_size, embedding_size], -1.0, 1.0))
            embed = tf.nn.embedding_lookup(embeddings, train_inputs)

        # Construct the variables for the NCE loss
        with tf.name_scope("weights"):
            nce_weights = tf.Variable(
                tf.truncated_normal([vocabulary_size, embedding_size],
                                    stddev=1.0 / math.sqrt(embedding_size)))
        with tf.name_scope("biases"):
            nce_biases = tf.Variable(tf.zeros([vocabulary_size]))

    # Compute the average NCE loss for the batch.
    # tf.nce_loss automatically draws a new sample of the negative labels each
    # time we evaluate the loss.
    with tf.name_scope("loss"):
        loss = tf.reduce_mean(
            tf.nn.nce_loss(weights=nce_weights, biases=nce_biases, labels=train_labels,
                           inputs=embed, num_sampled=num_sampled,
                           num_classes=vocabulary_size))

    # Add the loss value as a scalar to summary.
    tf.summary.scalar("loss", loss)

    # Construct the SGD optimizer using a learning rate of 1.0.
    with tf.name_scope("optimizer"):
        optimizer = tf.train.GradientDescentOptimizer(1.0).minimize(loss)

    # Compute the cosine similarity between minibatch examples and all embeddings.
    norm = tf.sqrt(tf.reduce_sum(tf.square(embeddings), 1, keepdims=True))
    normalized_embeddings = embeddings / norm
    valid_embeddings = tf.nn.embedding_lookup(normalized_embeddings, valid_dataset)
    similarity = tf.matmul(valid_embeddings, normalized_embeddings, transpose_b=True)

    # Merge all summaries.
    merged = tf.summary.merge_all()
    return (train_inputs, train_labels, loss, optimizer, merged, normalized_embeddings,
            similarity)


def nearest(similarity_row, reverse_dictionary, top_k):
    """The ``top_k`` words most similar to one validation word (itself excluded)."""
    order = (-similarity_row).argsort()[1:top_k + 1]
    return [reverse_dictionary[k] for k in order]


def train(num_steps=3001, seed=0, batch_size=128, embedding_size=32, num_sampled=16,
          valid_words=("cat", "red", "bread", "rain", "piano", "three", "sister", "hammer"),
          report_every=500):
    """Trains; returns (average losses per report, {valid word: its nearest words},
    final normalized embeddings, dictionary)."""
    words = synthetic_corpus(seed=seed)
    # the topics' words, the function words and 'UNK' (which the rare words become)
    vocabulary_size = sum(len(t) for t in TOPICS.values()) + len(FUNCTION_WORDS) + 1
    data, count, dictionary, reverse_dictionary = build_dataset(words, vocabulary_size)
    print("Most common words (+UNK)", count[:5])
    print("Sample data", data[:10], [reverse_dictionary[i] for i in data[:10]])
    valid_examples = np.array([dictionary[w] for w in valid_words], np.int32)

    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(seed)
        (train_inputs, train_labels, loss, optimizer, merged, normalized_embeddings,
         similarity) = build_graph(vocabulary_size, valid_examples, batch_size,
                                   embedding_size, num_sampled)
        init = tf.global_variables_initializer()

    batches = BatchGenerator(data, seed)
    averages = []
    with tf.Session(graph=graph) as session:
        init.run()
        print("Initialized")
        average_loss = 0
        for step in range(num_steps):
            batch_inputs, batch_labels = batches.generate_batch(batch_size, num_skips=2,
                                                                skip_window=1)
            feed_dict = {train_inputs: batch_inputs, train_labels: batch_labels}
            # Also evaluate the merged summaries, as the tutorial does for TensorBoard.
            _, summary, loss_val = session.run([optimizer, merged, loss],
                                               feed_dict=feed_dict)
            average_loss += loss_val
            if step % report_every == 0:
                if step > 0:
                    average_loss /= report_every
                # The average loss is an estimate of the loss over the last batches.
                print("Average loss at step ", step, ": ", average_loss)
                averages.append(float(average_loss))
                average_loss = 0
        sim = similarity.eval()
        neighbours = {}
        for i, word in enumerate(valid_words):
            neighbours[word] = nearest(sim[i], reverse_dictionary, top_k=4)
            print(f"Nearest to {word}: {', '.join(neighbours[word])}")
        final_embeddings = normalized_embeddings.eval()
    return averages, neighbours, final_embeddings, dictionary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3001)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return train(args.steps, args.seed)


if __name__ == "__main__":
    main()
