"""`make demo`: the main job. Each part is a runnable example of its own."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = ["linear_regression.py", "cnn_digits.py", "jit_tour.py"]


def main() -> int:
    for part in PARTS:
        print(f"\n=== examples/{part} ===", flush=True)
        runpy.run_path(str(HERE / part), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
