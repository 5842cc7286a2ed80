"""examples/word2vec_tf1.py, TensorFlow's word2vec tutorial graph with only the import
changed, cut to 801 steps: the NCE loss falls from its start (about 22, TensorFlow 2.21
gives 22.4 at step 0 and 3.29 at step 1000 on the same program) and each validation
word's nearest neighbour is a word of its own topic of the synthetic language."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_word2vec_learns_the_topics(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    word2vec = importlib.import_module("word2vec_tf1")
    averages, neighbours, embeddings, dictionary = word2vec.train(num_steps=801,
                                                                  report_every=200)
    assert len(averages) == 5
    assert averages[0] > 15.0          # the loss of random embeddings (about 22)
    assert averages[-1] < 4.5 and averages[-1] < averages[1]
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    topic_of = {w: name for name, words in word2vec.TOPICS.items() for w in words}
    assert topic_of[neighbours["cat"][0]] == "animals"
    same_topic = [topic_of.get(found[0]) == topic_of[word]
                  for word, found in neighbours.items()]
    assert sum(same_topic) >= 7, neighbours
