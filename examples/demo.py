"""`make demo`: the main job. Each part is a runnable example of its own."""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

# NOTE: set before anything imports NumPy. The demo's matrices are small (at most a few
# hundred rows and columns): one OpenBLAS thread is as fast on an idle machine, and on a
# busy one two spinning BLAS threads waiting on each other made the CNN 8x slower.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
# aot_digits.py builds the CNN cnn_digits.py trained ahead of time and classifies an image
# from C (it reads the checkpoint cnn_digits.py saved).
PARTS = ["linear_regression.py", "cnn_digits.py", "aot_digits.py", "jit_tour.py"]


def main() -> int:
    sys.path.insert(0, str(HERE))       # the parts import each other by bare name
    for part in PARTS:
        print(f"\n=== examples/{part} ===", flush=True)
        runpy.run_path(str(HERE / part), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
