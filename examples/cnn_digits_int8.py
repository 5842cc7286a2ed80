"""The digits CNN of cnn_digits_jit.py quantized to int8 after training (tj.quantize).

Restores the trained network from a checkpoint cnn_digits_jit.py wrote (or trains one
first), calibrates the int8 activation ranges on training images, and compares the
int8 program with the float32 one: test accuracy and the time to classify the whole
test set (median of several runs, on this machine's CPU).

    python examples/cnn_digits_jit.py --logdir results/cnn_digits_jit
    python examples/cnn_digits_int8.py --restore results/cnn_digits_jit
    python examples/cnn_digits_int8.py --epochs 40        # train first, then quantize
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from cnn_digits import digits_split
from cnn_digits_jit import build_model, checkpoint_of
from cnn_digits_jit import main as train

import tracejit as tj


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restore", type=Path, default=None,
                        help="a checkpoint folder of cnn_digits_jit.py (default: train one)")
    parser.add_argument("--epochs", type=int, default=40, help="epochs when training")
    parser.add_argument("--seed", type=int, default=2016)
    parser.add_argument("--calibration-images", type=int, default=400)
    parser.add_argument("--method", choices=["minmax", "percentile"], default="minmax")
    parser.add_argument("--repeats", type=int, default=15,
                        help="timed runs over the test set (the median is reported)")
    return parser.parse_args(argv)


def cpu_model() -> str:
    """The CPU's name as lscpu prints it (``model name`` of /proc/cpuinfo)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def median_seconds(fn, x, repeats: int) -> float:
    np.asarray(fn(x))                           # compiled and warm
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(fn(x))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None) -> tuple[float, float]:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    x_train, _, x_test, y_test = digits_split()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.restore
        if folder is None:
            folder = Path(scratch)
            train(["--epochs", str(args.epochs), "--seed", str(args.seed),
                   "--logdir", str(folder)])
        tj.initializers.set_seed(args.seed)
        model = build_model()
        model(np.zeros((1, 8, 8, 1), np.float32))            # make the Variables
        checkpoint_of(model).restore(str(folder))

    def predict(x):
        return model(x, training=False)

    float32 = tj.jit(predict)
    calibration = x_train[:args.calibration_images]
    int8 = tj.quantize(predict, [calibration[i:i + 100]
                                 for i in range(0, len(calibration), 100)],
                       method=args.method)
    print(int8.quantization)

    def accuracy(fn) -> float:
        return float(np.mean(np.argmax(np.asarray(fn(x_test)), axis=1) == y_test))

    float_accuracy, int8_accuracy = accuracy(float32), accuracy(int8)
    print(f"test accuracy: float32 {float_accuracy:.2%}, int8 {int8_accuracy:.2%} "
          f"({(int8_accuracy - float_accuracy) * 100:+.2f} points) on {len(x_test)} images")
    if args.repeats:
        t_float = median_seconds(float32, x_test, args.repeats)
        t_int8 = median_seconds(int8, x_test, args.repeats)
        print(f"{len(x_test)} images: float32 {t_float * 1e3:.2f} ms, int8 "
              f"{t_int8 * 1e3:.2f} ms ({t_float / t_int8:.2f}x), median of {args.repeats} "
              f"runs on {cpu_model()}")
    return float_accuracy, int8_accuracy


if __name__ == "__main__":
    main()
