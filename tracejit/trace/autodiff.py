"""Gradients for users: ``gradients`` (TF1), ``grad`` / ``value_and_grad`` (JAX style),
``custom_gradient``. All of them add ops to the graph being traced (passes/autodiff.py).

>>> import numpy as np, tracejit as tj
>>> tj.grad(lambda x: tj.reduce_sum(x * x))(np.array([1.0, 2.0], np.float32))
Array([2., 4.], dtype=float32)
"""

from __future__ import annotations

import functools

from ..ir.core import VarMeta
from ..ir.errors import DTypeError, ShapeError, TracejitError
from ..ir.ops_autodiff import CUSTOM_VJP, register_custom_vjp
from ..ir.source import user_location
from ..passes.autodiff import RowSlices, add_gradients
from . import pytree
from .array_ops import zeros_like
from .indexed_slices import IndexedSlices, dense_shape_tensor
from .jit import JitFunction
from .math_ops import cast
from .tracing import bind, current_trace, to_tensor
from .values import Tracer


def _fail(error_type, message):
    raise error_type(message, op="gradients", location=user_location())


def _trace_of(values):
    for v in values:
        if isinstance(v, Tracer):
            return v.trace
    return None


def gradients(ys, xs, grad_ys=None, unconnected_gradients="none", name=None,
              indexed_slices=False):
    """d(sum(ys * grad_ys))/d(x) for each x, as new ops in the graph being traced.

    Works inside ``@jit`` and in TF1 graphs. An x that no y depends on gets ``None``
    (``unconnected_gradients="zero"`` gives zeros instead), as in TensorFlow. With
    ``indexed_slices``, an x read only through ``gather`` along axis 0 on the way to the
    ys (an embedding table) gets an :class:`IndexedSlices` of the rows read, as
    TensorFlow's ``tf.gradients`` gives it."""
    single = not isinstance(xs, (list, tuple))
    ys = [to_tensor(y) for y in (ys if isinstance(ys, (list, tuple)) else [ys])]
    xs = [to_tensor(x) for x in ([xs] if single else xs)]
    trace = _trace_of(ys + xs)
    if trace is None:
        _fail(TracejitError, "gradients needs traced values: call it inside a @jit function or "
              "a TF1 graph, or use tracejit.grad(f) on concrete values")
    if grad_ys is None:
        gy_vars = None
    else:
        grad_ys = grad_ys if isinstance(grad_ys, (list, tuple)) else [grad_ys]
        gy_vars = [_cotangent_var(trace, gy, y, "grad_ys for a y")
                   for y, gy in zip(ys, grad_ys, strict=True)]
    meta = VarMeta(source=user_location())
    try:
        grads = add_gradients(trace.builder, [trace.var_of(y) for y in ys],
                              [trace.var_of(x) for x in xs], gy_vars, meta,
                              sparse=[indexed_slices] * len(xs))
    except TracejitError as err:
        raise err.at(meta.source) from None
    out = []
    for x, gvar in zip(xs, grads, strict=True):
        if isinstance(gvar, RowSlices):
            out.append(IndexedSlices(Tracer(gvar.values, trace), Tracer(gvar.indices, trace),
                                     dense_shape_tensor(x.shape)))
        elif gvar is not None:
            out.append(Tracer(gvar, trace))
        elif unconnected_gradients == "zero" and x.dtype.is_float:
            out.append(zeros_like(x))
        else:
            out.append(None)
    return out[0] if single else out


def _cotangent_var(trace, value, like, what: str):
    """``value`` as a Var in ``trace`` with ``like``'s dtype; None stays None."""
    if value is None:
        return None
    tensor = cast(to_tensor(value), like.dtype)
    if tensor.shape != like.shape:
        _fail(ShapeError, f"{what} of shape {list(like.shape)} has shape {list(tensor.shape)}")
    return trace.var_of(tensor)


def _as_tracer(value, trace):
    """A differentiable handle on ``value`` inside ``trace`` (constants become Vars)."""
    tensor = to_tensor(value)
    if isinstance(tensor, Tracer):
        return tensor
    return Tracer(trace.var_of(tensor), trace, tensor.weak)


def value_and_grad(fun, argnums=0, has_aux=False):
    """``fun``'s value and its gradient with respect to the arguments at ``argnums``
    (each may be a pytree of arrays). ``fun`` must return a float scalar (or
    ``(scalar, aux)`` with ``has_aux``)."""
    many = isinstance(argnums, (list, tuple))
    positions = tuple(argnums) if many else (argnums,)

    def body(*args):
        trace = current_trace()
        args = list(args)
        leaves_per_arg = {}
        for pos in positions:
            leaves: list = []
            treedef = pytree.flatten(args[pos], leaves)
            handles = [_as_tracer(leaf, trace) for leaf in leaves]
            leaves_per_arg[pos] = (treedef, handles)
            args[pos] = pytree.unflatten(treedef, iter(handles))
        result = fun(*args)
        value, aux = result if has_aux else (result, None)
        value = to_tensor(value)
        if value.shape != () or not value.dtype.is_float:
            _fail(DTypeError, f"grad needs a function returning a float scalar, got "
                  f"{value.type}; reduce it (e.g. reduce_sum) or use tracejit.gradients with "
                  "grad_ys")
        # NOTE: one gradient computation for every argument: separate calls would each
        # build a backward pass (and a loop records its residuals once per call)
        every = [h for pos in positions for h in leaves_per_arg[pos][1]]
        found = iter(gradients(value, every, unconnected_gradients="zero") if every else [])
        grads = []
        for pos in positions:
            treedef, handles = leaves_per_arg[pos]
            mine = [next(found) for _ in handles]
            for gr, handle in zip(mine, handles, strict=True):
                if gr is not None:
                    gr.weak = handle.weak    # d/dx of a Python number is a Python-like number
            grads.append(pytree.unflatten(treedef, iter(mine)))
        grads = tuple(grads) if many else grads[0]
        return (value, grads, aux) if has_aux else (value, grads)

    jitted = JitFunction(body)

    @functools.wraps(fun)
    def run(*args):
        if current_trace() is not None:
            out = body(*args)     # already tracing: add the ops to the enclosing graph
        else:
            out = jitted(*args)
        if has_aux:
            value, grads, aux = out
            return (value, aux), grads
        return out

    return run


def grad(fun, argnums=0, has_aux=False):
    """The gradient of a scalar function, as a function (JAX's ``grad``).

    ``grad(grad(f))`` gives second derivatives."""
    vg = value_and_grad(fun, argnums, has_aux)

    @functools.wraps(fun)
    def run(*args):
        out = vg(*args)
        if has_aux:
            (value, aux), grads = out
            return grads, aux
        return out[1]

    return run


def custom_gradient(fun):
    """Decorator: ``fun(*xs)`` returns ``(y, grad_fn)`` and ``grad_fn(dy)`` returns one
    gradient per x, replacing the traced gradient of ``y`` (TensorFlow's
    ``tf.custom_gradient``). ``y`` may be a tuple; then ``grad_fn`` takes one dy each."""

    @functools.wraps(fun)
    def wrapped(*xs):
        xs = [to_tensor(x) for x in xs]
        trace = _trace_of(xs) or current_trace()
        result, grad_fn = fun(*xs)
        single = not isinstance(result, (list, tuple))
        ys = [to_tensor(y) for y in ([result] if single else result)]
        if trace is None:
            return result        # eager: nothing will differentiate it
        xs = [_as_tracer(x, trace) for x in xs]

        def rule(g, x_syms, ct_syms):
            cts = [Tracer(c.var, trace) for c in ct_syms]
            grads = grad_fn(*cts)
            grads = list(grads) if isinstance(grads, (list, tuple)) else [grads]
            return [g.wrap(_cotangent_var(trace, gr, x, "the custom gradient of an input"))
                    for x, gr in zip(x_syms, grads, strict=True)]

        outs = bind(CUSTOM_VJP, xs + ys, {"num_outputs": len(ys),
                                           "rule": register_custom_vjp(rule)})
        outs = outs if isinstance(outs, tuple) else (outs,)
        return outs[0] if single else tuple(outs)

    return wrapped
