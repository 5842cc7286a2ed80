"""Gradient (VJP) rules of the convolution and pooling ops (declared in ops_nn.py).

Every op here is linear in its differentiated operand, so each rule is the op's
transpose, and the transposes are ops of the same family:

    conv2d(x, w)                 -> d x: conv2d_backprop_input(ct, w)
                                    d w: conv2d_backprop_filter(x, ct)
    conv2d_backprop_input(ct, w) -> d ct: conv2d(g, w);      d w: backprop_filter(g, ct)
    conv2d_backprop_filter(x, ct)-> d x: backprop_input(ct, g); d ct: conv2d(x, g)
    max_pool2d(x)                -> max_pool2d_backprop(x, ct)
    max_pool2d_backprop(x, ct)   -> d ct: max_pool2d_select(x, g)
    max_pool2d_select(x, g)      -> d g: max_pool2d_backprop(x, ct)
    avg_pool2d(x) <-> avg_pool2d_backprop(ct)

Where the max ops read ``x`` only to find each window's maximum, the result is locally
constant in ``x`` (away from ties), so that cotangent is zero.
"""

from __future__ import annotations


def _conv(params) -> dict:
    return {k: params[k] for k in ("strides", "pads", "dilations")}


def _pool(params) -> dict:
    return {k: params[k] for k in ("ksize", "strides", "pads")}


def conv2d_vjp(g, ins, outs, cts, params):
    (x, w), ct = ins, cts[0]
    p = _conv(params)
    return (g.op("conv2d_backprop_input", ct, w, input_shape=x.shape, **p),
            g.op("conv2d_backprop_filter", x, ct, filter_shape=w.shape, **p))


def conv2d_backprop_input_vjp(g, ins, outs, cts, params):
    (ct, w), gx = ins, cts[0]
    p = _conv(params)
    return (g.op("conv2d", gx, w, **p),
            g.op("conv2d_backprop_filter", gx, ct, filter_shape=w.shape, **p))


def conv2d_backprop_filter_vjp(g, ins, outs, cts, params):
    (x, ct), gw = ins, cts[0]
    p = _conv(params)
    return (g.op("conv2d_backprop_input", ct, gw, input_shape=x.shape, **p),
            g.op("conv2d", x, gw, **p))


def max_pool2d_vjp(g, ins, outs, cts, params):
    return (g.op("max_pool2d_backprop", ins[0], cts[0], **_pool(params)),)


def max_pool2d_backprop_vjp(g, ins, outs, cts, params):
    x = ins[0]
    return g.zeros(x.shape, x.dtype), g.op("max_pool2d_select", x, cts[0], **_pool(params))


def max_pool2d_select_vjp(g, ins, outs, cts, params):
    x = ins[0]
    return g.zeros(x.shape, x.dtype), g.op("max_pool2d_backprop", x, cts[0], **_pool(params))


def avg_pool2d_vjp(g, ins, outs, cts, params):
    return (g.op("avg_pool2d_backprop", cts[0], input_shape=ins[0].shape, **_pool(params)),)


def avg_pool2d_backprop_vjp(g, ins, outs, cts, params):
    return (g.op("avg_pool2d", cts[0], **_pool(params)),)
