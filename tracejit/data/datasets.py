"""Small real data sets that ship inside installed packages.

``load_digits()`` reads scikit-learn's copy of the UCI handwritten digits (1797 images of
8×8 pixels, 16 grey levels) straight from the CSV file inside the installed ``sklearn``
package. It never imports sklearn: that would import SciPy, whose bundled OpenBLAS next
to NumPy's makes every matrix product in the process many times slower (two BLAS thread
pools competing; see BENCHMARKS.md).

>>> images, labels = load_digits()                       # doctest: +SKIP
>>> images.shape, images.dtype, labels[:5]               # doctest: +SKIP
((1797, 8, 8), dtype('float32'), array([0, 1, 2, 3, 4], dtype=int32))
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np

__all__ = ["load_digits", "digits_path", "train_test_split"]

_DIGITS_FILE = Path("datasets") / "data" / "digits.csv.gz"


def digits_path() -> Path:
    """Where the installed scikit-learn keeps ``digits.csv.gz`` (found without importing
    it)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "load_digits reads the digits data file that ships with scikit-learn, which is "
            "not installed: run `pip install -e .[demo]` (or `pip install scikit-learn`)")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / _DIGITS_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(f"scikit-learn is installed but has no {_DIGITS_FILE} in "
                            f"{list(spec.submodule_search_locations)}")


@functools.lru_cache(maxsize=1)
def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(digits_path(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    if table.shape != (1797, 65):
        raise ValueError(f"unexpected digits table of shape {table.shape} (want 1797 x 65)")
    images = (table[:, :64] / 16.0).reshape(-1, 8, 8)
    labels = table[:, 64].astype(np.int32)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images float32 [1797, 8, 8] in [0, 1], labels int32 [1797] in 0..9), fresh copies."""
    images, labels = _read_digits()
    return images.copy(), labels.copy()


def train_test_split(images: np.ndarray, labels: np.ndarray, test_fraction: float = 0.2,
                     seed: int = 0):
    """A fixed, stratified split: the same ``seed`` always gives the same split, and each
    class is divided in the same proportion. Returns (x_train, y_train, x_test, y_test)."""
    rng = np.random.default_rng(seed)
    test = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        test.extend(rng.permutation(members)[: round(len(members) * test_fraction)])
    is_test = np.zeros(len(labels), bool)
    is_test[test] = True
    train_order = rng.permutation(np.flatnonzero(~is_test))
    test_order = np.flatnonzero(is_test)
    return images[train_order], labels[train_order], images[test_order], labels[test_order]
