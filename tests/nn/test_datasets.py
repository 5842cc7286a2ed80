"""The digits loader reads scikit-learn's data file without importing sklearn or scipy."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from tracejit.data import datasets

HAVE_SKLEARN = importlib.util.find_spec("sklearn") is not None


@pytest.mark.skipif(not HAVE_SKLEARN, reason="scikit-learn (pip install -e .[demo]) is absent")
def test_load_digits_shapes_ranges_and_split():
    images, labels = datasets.load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.float32
    assert labels.shape == (1797,) and labels.dtype == np.int32
    assert images.min() == 0 and images.max() == 1
    assert labels[:10].tolist() == list(range(10))
    np.testing.assert_array_equal(np.bincount(labels) > 170, True)
    images[0] = 5                                   # callers get their own copies
    assert datasets.load_digits()[0].max() == 1
    split = datasets.train_test_split(images, labels, 0.2, seed=0)
    again = datasets.train_test_split(images, labels, 0.2, seed=0)
    assert all((a == b).all() for a, b in zip(split, again, strict=True))
    x_train, y_train, x_test, y_test = split
    assert len(x_train) + len(x_test) == 1797 and 350 <= len(x_test) <= 370
    assert (np.bincount(y_test) >= 34).all()        # stratified


@pytest.mark.skipif(not HAVE_SKLEARN, reason="scikit-learn (pip install -e .[demo]) is absent")
def test_loading_does_not_import_sklearn_or_scipy():
    code = ("import sys; from tracejit.data.datasets import load_digits; load_digits(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_missing_sklearn_names_the_install_command(monkeypatch):
    monkeypatch.setattr(datasets.importlib.util, "find_spec", lambda name: None)
    datasets._read_digits.cache_clear()
    try:
        with pytest.raises(ModuleNotFoundError, match=r"pip install -e \.\[demo\]"):
            datasets.load_digits()
    finally:
        datasets._read_digits.cache_clear()
