"""The digits CNN of cnn_digits.py built ahead of time into a C library, run from C.

It restores the checkpoint cnn_digits.py saved, builds the network's inference -- the
softmax of the logits of one 8×8 image -- with ``tj.aot.compile_session`` into
``build/aot_digits/`` (``digits.o``, ``digits.so``, ``digits.h``, ``main.c``, a README),
compiles ``examples/aot/classify_digit.c`` against it with ``cc`` and runs it on the
first test images: the C program prints each digit. Then the library classifies the whole test set
(through ctypes) beside the session, its size is reported, and the same network is built
for ``aarch64-linux-gnu`` (Raspberry Pi 4/5) and checked with tracejit's ELF reader; where
qemu-aarch64 and an aarch64 C compiler are installed, the ARM program runs too.

    python examples/cnn_digits.py          # trains, saves results/cnn_digits
    python examples/aot_digits.py [--restore results/cnn_digits] [--out build/aot_digits]
"""

from __future__ import annotations

import argparse
import ctypes
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from cnn_digits import DEFAULT_LOGDIR, build_graph, checkpoint_to_restore, digits_split

import tracejit as tj
import tracejit.compat.v1 as tf
from tracejit.aot.link import allowed_symbol

HERE = Path(__file__).resolve().parent
PROGRAM = HERE / "aot" / "classify_digit.c"
SHOWN = 3           # test images the C program classifies


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restore", type=Path, default=DEFAULT_LOGDIR,
                        help="the checkpoint (or its directory) cnn_digits.py saved")
    parser.add_argument("--out", type=Path, default=Path("build") / "aot_digits",
                        help="where the library and the programs go")
    return parser.parse_args(argv)


def build(checkpoint: str, out: Path, x_test):
    """(host library, aarch64 library, the session's probabilities on ``x_test``)."""
    tf.reset_default_graph()
    g = build_graph(1e-3, 1)
    probabilities = tf.nn.softmax(g.logits, name="probabilities")
    with tf.Session() as sess:
        tf.train.Saver().restore(sess, checkpoint)
        expected = sess.run(probabilities, {g.x: x_test})
        host = tj.aot.compile_session(sess, probabilities, {g.x: "f32[1,8,8,1]"},
                                      out=out / "digits")
        arm = tj.aot.compile_session(sess, probabilities, {g.x: "f32[1,8,8,1]"},
                                     out=out / "aarch64" / "digits",
                                     target="aarch64-linux-gnu")
    return host, arm, expected


def classify_all(library, images) -> np.ndarray:
    """The library's probabilities for each image, one call each (through ctypes)."""
    lib = ctypes.CDLL(str(library.shared))
    out = np.zeros((len(images), 10), np.float32)
    for i, image in enumerate(np.ascontiguousarray(images, np.float32)):
        status = lib.digits_run(ctypes.c_void_p(image.ctypes.data),
                                ctypes.c_void_p(out[i].ctypes.data))
        if status != 0:
            raise SystemExit(f"digits_run returned {status}")
    return out


def compile_and_run(compiler: str, library, image_file: Path, runner=(), static=False,
                    build=True) -> str:
    """Compile classify_digit.c against ``library``'s object (unless ``build`` is
    False: done already) and run it on ``image_file``: what it prints."""
    program = library.object.parent / "classify_digit"
    command = [compiler, "-O2", *(["-static"] if static else []), "-I",
               str(library.object.parent), str(PROGRAM), str(library.object), "-lm",
               "-o", str(program)]
    if build:
        subprocess.run(command, check=True)
    done = subprocess.run([*runner, str(program), str(image_file)], check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


def check_arm(arm) -> None:
    elf = tj.aot.read_elf(arm.object.read_bytes())
    foreign = sorted(s for s in elf.undefined() if not allowed_symbol(s))
    ok = elf.machine == 183 and "digits_run" in elf.exported() and not foreign
    print(f"aarch64: {arm.object} ({arm.size('object') / 1024:.0f} KiB), ELF machine "
          f"{elf.machine} (AArch64), exports digits_run, calls "
          f"{', '.join(sorted(elf.undefined())) or 'nothing outside itself'}: "
          + ("checked" if ok else f"FAILED {foreign}"))
    if not ok:
        raise SystemExit("the aarch64 object failed its check")
    if arm.shared is None:
        print(f"aarch64: {arm.note}")


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        checkpoint = checkpoint_to_restore(args.restore)
    except SystemExit:
        raise SystemExit(f"no checkpoint in {args.restore}: run examples/cnn_digits.py "
                         "first") from None
    _, _, x_test, y_test = digits_split()
    host, arm, expected = build(checkpoint, args.out, x_test)
    print(f"built {', '.join(p.name for p in host.files.values())} in {args.out} "
          f"(weights from {checkpoint})")

    image_files = []
    for i in range(SHOWN):
        image_files.append(args.out / f"digit{i}.bin")
        x_test[i].astype(np.float32).tofile(image_files[-1])
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        print("no C compiler (cc): the C program is not built")
    else:
        for i, image_file in enumerate(image_files):
            said = compile_and_run(compiler, host, image_file, build=i == 0)
            print(f"C program on test image {i} (label {y_test[i]}): {said}")
    if host.shared is not None:
        got = classify_all(host, x_test)
        agree = np.mean(got.argmax(1) == expected.argmax(1))
        print(f"the library classifies {np.mean(got.argmax(1) == y_test):.2%} of the "
              f"{len(y_test)} test images right (the session: "
              f"{np.mean(expected.argmax(1) == y_test):.2%}); it agrees with the session on "
              f"{agree:.2%}, probabilities within {np.abs(got - expected).max():.1e}")
        print(f"digits.so: {host.size('shared') / 1024:.0f} KiB with "
              f"{host.weights_bytes / 1024:.0f} KiB of float32 weights (int8 weights would "
              "take a quarter)")
    check_arm(arm)
    qemu, arm_cc = shutil.which("qemu-aarch64"), shutil.which("aarch64-linux-gnu-gcc")
    if qemu and arm_cc:
        said = compile_and_run(arm_cc, arm, image_files[0], runner=[qemu], static=True)
        print(f"aarch64 C program under qemu-aarch64 on test image 0: {said}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
