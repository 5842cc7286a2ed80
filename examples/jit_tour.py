"""A tour of the front end: jit, the traced IR, compile reasons, eager mode, errors."""

import numpy as np

import tracejit as tj


@tj.jit
def predict(w, b, x):
    return tj.nn.softmax(x @ w + b)


def main():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(784, 10)).astype(np.float32) * 0.01
    b = np.zeros(10, np.float32)

    probs = predict(w, b, rng.normal(size=(128, 784)).astype(np.float32))
    print("predict ->", probs.shape, probs.dtype, "rows sum to", np.asarray(probs).sum(1)[:3])
    predict(w, b, rng.normal(size=(64, 784)).astype(np.float32))
    for record in predict.compile_log:
        print(f"compile: {record.reason} ({record.seconds * 1e3:.1f} ms)")

    print("\nThe traced IR for a batch of 64:")
    print(predict.compile_log[-1].graph)

    # Eager mode: the same functions on concrete values run at once.
    y = tj.tanh(np.linspace(-2, 2, 5).astype(np.float32)) * 2.0
    print("\neager:", y, "->", np.asarray(y).tolist())

    # A user's mistake names the op, the shapes and the line.
    try:
        predict(w, b, np.ones((8, 100), np.float32))
    except tj.ShapeError as err:
        print("\nerror, as a user sees it:\n ", str(err).replace("\n", "\n  "))


if __name__ == "__main__":
    main()
