"""A small MLP forward pass, used by the README and `tracejit ir` examples."""

import numpy as np

import tracejit as tj


def predict(w1, b1, w2, b2, x):
    hidden = tj.nn.relu(x @ w1 + b1)
    return tj.nn.softmax(hidden @ w2 + b2)


def loss(w1, b1, w2, b2, x, labels):
    probs = predict(w1, b1, w2, b2, x)
    picked = tj.reduce_sum(probs * tj.one_hot(labels, 10), axis=1)
    return -tj.reduce_mean(tj.log(picked))


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    params = [rng.normal(size=s).astype(np.float32) * 0.1 for s in [(784, 128), (128,),
                                                                   (128, 10), (10,)]]
    x = rng.normal(size=(32, 784)).astype(np.float32)
    print(tj.jit(predict)(*params, x).shape)
