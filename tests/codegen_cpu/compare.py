"""Comparing compiled results with the reference interpreter, in units in the last place."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from tracejit.ir import dtypes as dt


def ulp(values: np.ndarray, dtype) -> np.ndarray:
    """The spacing of ``dtype`` at each magnitude of ``values`` (float64 array)."""
    info = ml_dtypes.finfo(dt.as_dtype(dtype).np_dtype)
    mags = np.abs(values.astype(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.floor(np.log2(np.where(mags > 0, mags, 1.0)))
    spacing = np.exp2(exponent - info.nmant)
    return np.maximum(spacing, float(info.smallest_subnormal))


def assert_matches(got: np.ndarray, want: np.ndarray, dtype, *, ulps: float = 0,
                   atol: float = 0.0, rtol: float = 0.0, what: str = "") -> None:
    """Same dtype and shape; integers and bools equal; floats equal, both NaN, or within
    ``ulps`` units in the last place of the expected value (plus ``atol``/``rtol``)."""
    dtype = dt.as_dtype(dtype)
    assert isinstance(got, np.ndarray), (what, type(got))
    assert got.dtype == dtype.np_dtype, (what, got.dtype, dtype)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    if not dtype.is_float:
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    g, w = got.astype(np.float64), want.astype(np.float64)
    with np.errstate(invalid="ignore"):
        close = np.abs(g - w) <= ulps * ulp(w, dtype) + atol + rtol * np.abs(w)
        ok = (g == w) | (np.isnan(g) & np.isnan(w)) | (np.isfinite(w) & close)
    if not ok.all():
        bad = ~ok
        raise AssertionError(f"{what}: {int(bad.sum())} of {ok.size} {dtype.name} values "
                             f"differ; got {g[bad][:5]}, expected {w[bad][:5]}")
