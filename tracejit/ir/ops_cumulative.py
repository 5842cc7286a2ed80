"""Scans along one axis: ``cumsum`` and ``cumprod`` (TensorFlow's, with ``exclusive``
and ``reverse``).

``cumsum[axis, exclusive, reverse](x)``: element ``j`` of each line along ``axis`` is
the sum of the elements before it (``exclusive``: strictly before; ``reverse``: the
line read from its end). The sum runs in order, one element after the other, in the
input's own type (integers wrap; halves accumulate in float32 and each result is
rounded once), so every backend gives the reference's bits. ``axis`` is non-negative
(the front end resolves -1).
"""

from __future__ import annotations

import numpy as np

from . import dtypes as dt
from .opdef import ParamSpec, bool_param, declare, int_param, require_dtype
from .ops_movement import canonical_axis

__all__ = ["CUMSUM", "CUMPROD"]


def _infer(name: str):
    def infer(types, params):
        (t,) = types
        require_dtype(name, t, dt.NUMERIC_DTYPES, "a numeric tensor")
        canonical_axis(name, params["axis"], t.ndim)
        return (t,)
    return infer


def _impl(np_fn, identity):
    def impl(x, axis, exclusive, reverse):
        dtype = dt.as_dtype(x.dtype)
        compute = np.dtype(np.float32) if dtype.is_half else dtype.np_dtype
        lines = np.moveaxis(x.astype(compute), axis, 0)      # the scanned axis first
        if reverse:
            lines = lines[::-1]
        out = np.empty_like(lines)
        with np.errstate(all="ignore"):
            if exclusive and len(lines):
                # NOTE: shifted by one along the axis, the identity first
                out[0] = identity
                out[1:] = np_fn(lines[:-1], axis=0, dtype=compute)
            else:
                out[...] = np_fn(lines, axis=0, dtype=compute)
            if reverse:
                out = out[::-1]
            # NOTE: a float32 running sum of halves may overflow their range: inf
            return np.ascontiguousarray(np.moveaxis(out, 0, axis)).astype(dtype.np_dtype,
                                                                          copy=False)
    return impl


def _cumsum_vjp(g, ins, outs, cts, params):
    """Each x[i] is in every later (inclusive or not) output: the gradient is the scan of
    the cotangent the other way round."""
    return (g.op("cumsum", cts[0], axis=params["axis"], exclusive=params["exclusive"],
                 reverse=not params["reverse"]),)


def _cumprod_vjp(g, ins, outs, cts, params):
    """TensorFlow's rule: cumsum(cumprod(x) * ct, the other way round) / x, with 0 where
    x is 0 (``div_no_nan``; so at a zero it is TensorFlow's 0, not the derivative)."""
    (x,), (y,) = ins, outs
    if not x.dtype.is_float:
        return (None,)
    spread = g.op("cumsum", y * cts[0], axis=params["axis"], exclusive=params["exclusive"],
                  reverse=not params["reverse"])
    is_zero = x.eq(0)
    return (g.select(is_zero, 0, spread / g.select(is_zero, 1, x)),)


def _declare(name, np_fn, identity, vjp):
    return declare(name, arity=1, infer=_infer(name), impl=_impl(np_fn, identity), vjp=vjp,
                   params={"axis": ParamSpec(int_param),
                           "exclusive": ParamSpec(bool_param, False),
                           "reverse": ParamSpec(bool_param, False)},
                   doc=f"{name}[axis, exclusive, reverse](x): the running "
                       f"{'sum' if identity == 0 else 'product'} along axis, in order "
                       "(exclusive: of the elements before; reverse: from the end)")


CUMSUM = _declare("cumsum", np.cumsum, 0, _cumsum_vjp)
CUMPROD = _declare("cumprod", np.cumprod, 1, _cumprod_vjp)
