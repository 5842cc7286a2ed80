"""The user-facing gradient API: grad, value_and_grad, gradients, custom_gradient,
gradients of Variables and of the nn losses, and tf.gradients in TF1 graphs."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tracejit.ir.errors import DTypeError, TracejitError


def numeric_grad(f, x, eps=1e-6):
    """Central differences of the NumPy function ``f`` at ``x`` (float64)."""
    x = np.array(x, np.float64)
    out = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        hi, lo = x.copy(), x.copy()
        hi[idx] += eps
        lo[idx] -= eps
        out[idx] = (f(hi) - f(lo)) / (2 * eps)
    return out


def close(got, expected, rtol=1e-6, atol=1e-8):
    np.testing.assert_allclose(np.asarray(got, np.float64), expected, rtol=rtol, atol=atol)


# ---- grad and value_and_grad ------------------------------------------------------------------

def test_grad_of_a_scalar_function_keeps_the_dtype():
    g = tj.grad(lambda x: tj.reduce_sum(x * x))(np.array([1.0, 2.0], np.float32))
    assert g.dtype == tj.float32
    close(g, [2.0, 4.0])


def test_argnums_int_and_tuple():
    def f(x, y):
        return tj.reduce_sum(tj.sin(x) * y)
    x, y = np.array([0.5, 1.0]), np.array([2.0, 3.0])
    close(tj.grad(f)(x, y), np.cos(x) * y)
    close(tj.grad(f, argnums=1)(x, y), np.sin(x))
    gx, gy = tj.grad(f, argnums=(0, 1))(x, y)
    close(gx, np.cos(x) * y)
    close(gy, np.sin(x))
    (gy_only,) = tj.grad(f, argnums=(1,))(x, y)
    close(gy_only, np.sin(x))
    value, (gx, gy) = tj.value_and_grad(f, argnums=(0, 1))(x, y)
    close(value, np.sum(np.sin(x) * y))


def test_pytree_arguments():
    params = {"w": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.array([0.5, -0.5])}
    x = np.array([[1.0, -1.0], [2.0, 0.5]])

    def loss(p, x):
        return tj.reduce_sum(tj.square(x @ p["w"] + p["b"]))

    value, grads = tj.value_and_grad(loss)(params, x)
    assert set(grads) == {"w", "b"}
    z = x @ params["w"] + params["b"]
    close(value, np.sum(z * z))
    close(grads["w"], x.T @ (2 * z))
    close(grads["b"], np.sum(2 * z, axis=0))


def test_has_aux():
    def f(x):
        return tj.reduce_sum(x * x), {"peak": tj.reduce_max(x)}

    x = np.array([1.0, 3.0])
    g, aux = tj.grad(f, has_aux=True)(x)
    close(g, 2 * x)
    close(aux["peak"], 3.0)
    (value, aux), g = tj.value_and_grad(f, has_aux=True)(x)
    close(value, 10.0)
    close(aux["peak"], 3.0)


def test_integer_argument_gets_no_gradient():
    gx, gn = tj.grad(lambda x, n: tj.reduce_sum(x * tj.cast(n, tj.float64)),
                     argnums=(0, 1))(np.ones(2), np.array([1, 2], np.int32))
    close(gx, [1.0, 2.0])
    assert gn is None


def test_non_scalar_output_is_an_error():
    with pytest.raises(DTypeError, match=r"f64\[3\].*reduce_sum.*gradients"):
        tj.grad(lambda x: x * 2)(np.ones(3))
    with pytest.raises(DTypeError, match="float scalar"):
        tj.grad(lambda x: tj.cast(tj.reduce_sum(x), tj.int32))(np.ones(3))


def test_grad_inside_jit_and_jit_of_grad():
    @tj.jit
    def step(x):
        return x - 0.1 * tj.grad(lambda y: tj.reduce_sum(y ** 3))(x)

    x = np.array([1.0, 2.0])
    close(step(x), x - 0.3 * x ** 2)
    df = tj.jit(tj.grad(lambda x: tj.reduce_sum(tj.sin(x))))
    close(df(x), np.cos(x))
    close(df(np.zeros(3)), np.ones(3))      # a new shape retraces


def test_higher_derivatives_of_x4():
    f = lambda x: x ** 4  # noqa: E731
    x = np.float64(1.5)
    close(tj.grad(f)(x), 4 * x ** 3)
    close(tj.grad(tj.grad(f))(x), 12 * x ** 2)
    close(tj.grad(tj.grad(tj.grad(f)))(x), 24 * x)


# ---- gradients (TF style) ---------------------------------------------------------------------

def test_gradients_inside_jit_with_grad_ys_and_unconnected():
    seen = {}

    @tj.jit
    def f(x, y):
        z = x * x
        gx, gy = tj.gradients(z, [x, y], grad_ys=np.array([1.0, 10.0]))
        seen["none"] = gy
        (gy_zero,) = tj.gradients([z], [y], unconnected_gradients="zero")
        return gx, gy_zero

    gx, gy = f(np.array([1.0, 2.0]), np.ones(3))
    assert seen["none"] is None
    close(gx, [2.0, 40.0])
    close(gy, np.zeros(3))


def test_gradients_of_several_ys_sum():
    @tj.jit
    def f(x):
        return tj.gradients([tj.reduce_sum(x * x), tj.reduce_sum(3.0 * x)], x)

    close(f(np.array([1.0, -1.0])), [5.0, 1.0])


def test_gradients_outside_a_trace_is_a_clear_error():
    with pytest.raises(TracejitError, match="inside a @jit function or a TF1 graph"):
        tj.gradients(tj.constant(1.0), tj.constant(2.0))


def test_stop_gradient():
    g = tj.grad(lambda x: tj.reduce_sum(x * tj.stop_gradient(x)))(np.array([1.0, 2.0]))
    close(g, [1.0, 2.0])


# ---- custom_gradient --------------------------------------------------------------------------

@tj.custom_gradient
def clip_gradient(x):
    return x * 1.0, lambda dy: tj.clip_by_value(dy, -1.0, 1.0)


@tj.custom_gradient
def log1pexp(x):
    e = tj.exp(x)
    return tj.log(1 + e), lambda dy: dy * (1 - 1 / (1 + e))


def test_custom_gradient_clips():
    w = np.array([5.0, -0.5, -3.0])
    g = tj.grad(lambda x: tj.reduce_sum(clip_gradient(x) * w))(np.ones(3))
    close(g, [1.0, -0.5, -1.0])


def test_custom_gradient_is_numerically_stable():
    x = np.array([0.0, 2.0, 100.0], np.float32)
    naive = tj.grad(lambda x: tj.reduce_sum(tj.log(1 + tj.exp(x))))(x)
    assert np.isnan(np.asarray(naive)[2])     # inf / inf in float32
    stable = tj.grad(lambda x: tj.reduce_sum(log1pexp(x)))(x)
    close(stable, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6)
    close(log1pexp(np.array([1.0])), np.log1p(np.e))       # eager: just the value


def test_custom_gradient_with_several_outputs_and_inputs():
    @tj.custom_gradient
    def both(x, y):
        return (x * y, x + y), lambda da, db: (da * y + db, da * x + db)

    def f(x, y):
        a, b = both(x, y)
        return tj.reduce_sum(2.0 * a + 3.0 * b)

    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    gx, gy = tj.grad(f, argnums=(0, 1))(x, y)
    close(gx, 2 * y + 3)
    close(gy, 2 * x + 3)


def test_custom_gradient_replaces_the_traced_one_under_grad_of_grad():
    @tj.custom_gradient
    def cube(x):
        return x * x * x, lambda dy: dy * 3.0 * x * x

    close(tj.grad(tj.grad(lambda x: cube(x)))(np.float64(2.0)), 12.0)


# ---- Variables --------------------------------------------------------------------------------

def test_gradient_with_respect_to_a_variable_read():
    v = tj.Variable(np.array([1.0, 2.0]), name="w")

    @tj.jit
    def step(x):
        w = v.read_value()
        loss = tj.reduce_sum(w * w * x)
        v.assign_sub(0.1 * tj.gradients(loss, w))
        return loss

    x = np.array([1.0, 3.0])
    close(step(x), 13.0)
    close(v.numpy(), [1.0 - 0.2, 2.0 - 1.2])
    close(step(x), 0.8 ** 2 + 3 * 0.8 ** 2)      # the update is visible to the next call
    close(v.numpy(), [0.64, 0.32])


# ---- nn losses against finite differences ----------------------------------------------------

def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


RNG = np.random.default_rng(3)
LOGITS = RNG.normal(size=(3, 4)) * 2
LABELS = np.abs(RNG.normal(size=(3, 4)))
LABELS /= LABELS.sum(axis=-1, keepdims=True)
CLASSES = np.array([0, 3, 1], np.int32)
WEIGHTS = np.array([1.0, -2.0, 0.5])


def test_softmax_cross_entropy_gradients():
    def loss(logits, labels):
        per = tj.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        return tj.reduce_sum(per * WEIGHTS)

    glog, glab = tj.grad(loss, argnums=(0, 1))(LOGITS, LABELS)
    ref = lambda z, y: np.sum(-np.sum(y * _log_softmax(z), axis=-1) * WEIGHTS)  # noqa: E731
    close(glog, numeric_grad(lambda z: ref(z, LABELS), LOGITS), rtol=1e-5, atol=1e-7)
    close(glab, numeric_grad(lambda y: ref(LOGITS, y), LABELS), rtol=1e-5, atol=1e-7)
    close(tj.grad(lambda z: tj.reduce_sum(tj.nn.softmax_cross_entropy_with_logits_v2(
        labels=LABELS, logits=z)))(LOGITS), np.exp(_log_softmax(LOGITS)) - LABELS)


def test_sparse_softmax_cross_entropy_gradient():
    def loss(logits):
        per = tj.nn.sparse_softmax_cross_entropy_with_logits(labels=CLASSES, logits=logits)
        return tj.reduce_sum(per * WEIGHTS)

    ref = lambda z: np.sum(-_log_softmax(z)[np.arange(3), CLASSES] * WEIGHTS)  # noqa: E731
    close(tj.grad(loss)(LOGITS), numeric_grad(ref, LOGITS), rtol=1e-5, atol=1e-7)


def test_sigmoid_cross_entropy_gradient():
    logits = np.array([[-30.0, -1.5, 0.3], [2.0, 25.0, -0.7]])
    labels = np.array([[0.0, 1.0, 0.3], [1.0, 0.0, 0.5]])

    def loss(z, y):
        return tj.reduce_sum(tj.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z))

    ref = lambda z, y: np.sum(np.logaddexp(0, z) - z * y)  # noqa: E731
    gz, gy = tj.grad(loss, argnums=(0, 1))(logits, labels)
    close(gz, numeric_grad(lambda z: ref(z, labels), logits), rtol=1e-5, atol=1e-7)
    close(gz, 1 / (1 + np.exp(-logits)) - labels)
    close(gy, -logits)


def test_losses_second_derivative_of_softmax_cross_entropy():
    """d/dz (softmax(z) - y) . v = J_softmax v, compared with differences of the gradient."""
    v = RNG.normal(size=LOGITS.shape)
    grad_fn = tj.grad(lambda z: tj.reduce_sum(tj.nn.softmax_cross_entropy_with_logits(
        labels=LABELS, logits=z)))
    hvp = tj.grad(lambda z: tj.reduce_sum(grad_fn(z) * v))(LOGITS)
    ref = numeric_grad(lambda z: np.sum((np.exp(_log_softmax(z)) - LABELS) * v), LOGITS)
    close(hvp, ref, rtol=1e-5, atol=1e-7)


# ---- TF1 --------------------------------------------------------------------------------------

def test_tf1_gradients_match_numpy():
    import tracejit.compat.v1 as tf

    x_in = np.array([[1.0, -2.0, 0.5], [0.3, 0.1, -1.0]])
    t_in = np.array([[0.5, -0.5], [1.0, 0.0]])
    w_in = np.arange(6.0).reshape(3, 2) / 10
    b_in = np.array([0.1, -0.2])
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float64, shape=[None, 3], name="x")
        t = tf.placeholder(tf.float64, shape=[None, 2], name="t")
        w, b = tf.constant(w_in), tf.constant(b_in)
        y = tf.tanh(tf.matmul(x, w) + b)
        loss = tf.reduce_mean(tf.square(y - t))
        gw, gb, gx = tf.gradients(loss, [w, b, x])
        with tf.Session() as sess:
            got = sess.run([gw, gb, gx], feed_dict={x: x_in, t: t_in})
    y_np = np.tanh(x_in @ w_in + b_in)
    dz = 2 * (y_np - t_in) / y_np.size * (1 - y_np ** 2)
    close(got[0], x_in.T @ dz)
    close(got[1], dz.sum(axis=0))
    close(got[2], dz @ w_in.T)
