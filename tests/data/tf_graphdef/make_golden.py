"""Regenerate the TensorFlow GraphDefs and MetaGraphs the graph-import tests read.

Run with a Python that has TensorFlow (2.x, tf.compat.v1 graph mode), from this folder:

    /path/to/tf-python make_golden.py

It writes:

- ``frozen_cnn.pb``: a small TF1 CNN (placeholder -> conv2d -> bias_add -> relu ->
  max_pool -> reshape -> matmul -> add -> softmax) with fixed weights, frozen by
  ``convert_variables_to_constants``; ``frozen_cnn.npz`` holds the input ``x`` and
  TensorFlow's output ``probs``.
- ``op_zoo.pb``: one graph with every op type the importer maps, each result a named
  node; ``op_zoo.npz`` holds the fed inputs (``feed/<placeholder>``) and TensorFlow's
  value of each fetched tensor (``fetch/<tensor name>``).
- ``resource_model.ckpt.*`` and ``ref_model.ckpt.*``: a two-layer model with a
  gradient-descent training op, saved by ``tf.train.Saver`` (meta graph + V2
  checkpoint), once with resource variables
  (TensorFlow 2's default under ``tf.compat.v1``) and once with TF1's reference
  variables; ``saved_models.npz`` holds the fed ``x`` and TensorFlow's ``y`` after
  restoring.

The tests need neither TensorFlow nor this script.
"""

import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1
tf1.disable_eager_execution()
rng = np.random.default_rng(20)


def frozen_cnn():
    weights = {
        "conv/kernel": rng.standard_normal((3, 3, 1, 4)).astype(np.float32) * 0.5,
        "conv/bias": rng.standard_normal(4).astype(np.float32) * 0.1,
        "fc/kernel": rng.standard_normal((64, 3)).astype(np.float32) * 0.3,
        "fc/bias": rng.standard_normal(3).astype(np.float32) * 0.1,
    }
    x_value = rng.standard_normal((2, 8, 8, 1)).astype(np.float32)
    with tf.Graph().as_default() as graph:
        x = tf1.placeholder(tf.float32, [None, 8, 8, 1], name="x")
        variables = {name: tf1.Variable(value, name=name) for name, value in weights.items()}
        h = tf1.nn.conv2d(x, variables["conv/kernel"], strides=[1, 1, 1, 1], padding="SAME")
        h = tf1.nn.relu(tf1.nn.bias_add(h, variables["conv/bias"]))
        h = tf1.nn.max_pool(h, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="VALID")
        h = tf1.reshape(h, [-1, 4 * 4 * 4])
        logits = tf1.matmul(h, variables["fc/kernel"]) + variables["fc/bias"]
        probs = tf1.nn.softmax(logits, name="probs")
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            frozen = tf1.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), ["probs"])
            expected = sess.run(probs, {x: x_value})
    with open("frozen_cnn.pb", "wb") as file:
        file.write(frozen.SerializeToString())
    np.savez("frozen_cnn.npz", x=x_value, probs=expected)


def op_zoo():
    feeds = {
        "a": rng.standard_normal((3, 4)).astype(np.float32),
        "image": rng.standard_normal((2, 6, 6, 3)).astype(np.float32),
        "ints": np.array([[3, -1, 4], [1, -5, 9]], np.int32),
    }
    with tf.Graph().as_default() as graph:
        a = tf1.placeholder(tf.float32, [None, 4], name="a")
        image = tf1.placeholder(tf.float32, [None, 6, 6, 3], name="image")
        ints = tf1.placeholder(tf.int32, [2, 3], name="ints")
        fetches = []

        def keep(tensor):
            fetches.append(tensor)
            return tensor

        scale = tf1.placeholder_with_default(tf1.constant(2.0), [], name="scale")
        w = tf1.constant(rng.standard_normal((4, 5)).astype(np.float32), name="w")
        w_t = tf1.constant(rng.standard_normal((5, 4)).astype(np.float32), name="w_t")
        keep(tf1.constant(1.5, shape=[2, 3], name="filled"))            # one float_val
        keep(tf1.constant([1, 2, 3], tf.int64, name="int64s"))
        keep(tf1.constant([[True, False]], name="bools"))
        keep(tf1.constant([0.5, -2.0], tf.float16, name="halves"))
        keep(tf1.constant([1.0, 2.0], tf.float64, name="doubles"))
        keep(tf1.constant([7, 255], tf.uint8, name="bytes"))
        keep(tf1.constant(np.arange(12, dtype=np.int32).reshape(3, 4), name="content"))
        keep(tf1.identity(a * scale, name="scaled"))
        mm = keep(tf1.matmul(a, w, name="mm"))
        keep(tf1.matmul(a, w_t, transpose_b=True, name="mm_tb"))
        keep(tf1.matmul(w, a, transpose_a=True, transpose_b=True, name="mm_tatb"))
        keep(tf1.nn.bias_add(mm, tf1.constant(np.arange(5, dtype=np.float32)), name="bias"))
        keep(tf1.add(mm, 1.0, name="add"))
        keep(tf.raw_ops.AddV2(x=mm, y=mm, name="addv2"))
        keep(tf1.subtract(mm, 0.5, name="sub"))
        keep(tf1.multiply(mm, mm, name="mul"))
        keep(tf1.divide(mm, 4.0, name="div"))
        keep(tf1.maximum(mm, 0.0, name="maximum"))
        keep(tf1.minimum(mm, 0.25, name="minimum"))
        for fn in (tf1.nn.relu, tf1.nn.relu6, tf1.sigmoid, tf1.tanh, tf1.nn.softmax,
                   tf1.nn.log_softmax, tf1.exp, tf1.negative, tf1.abs, tf1.square,
                   tf1.nn.elu, tf1.nn.softplus):
            keep(fn(mm, name=fn.__name__))
        keep(tf1.sqrt(tf1.abs(mm) + 1.0, name="sqrt"))
        keep(tf1.rsqrt(tf1.abs(mm) + 1.0, name="rsqrt"))
        keep(tf1.log(tf1.abs(mm) + 1.0, name="log"))
        keep(tf1.squared_difference(mm, 1.0, name="sqdiff"))
        keep(tf1.pow(tf1.abs(mm), 1.5, name="pow"))
        kernel = tf1.constant(rng.standard_normal((3, 3, 3, 2)).astype(np.float32))
        keep(tf1.nn.conv2d(image, kernel, [1, 1, 1, 1], "SAME", name="conv_same"))
        keep(tf1.nn.conv2d(image, kernel, [1, 2, 2, 1], "VALID", name="conv_valid_s2"))
        keep(tf1.nn.conv2d(image, kernel, [1, 1, 1, 1], "SAME", dilations=[1, 2, 2, 1],
                           name="conv_dilated"))
        keep(tf1.nn.max_pool(image, [1, 3, 3, 1], [1, 2, 2, 1], "SAME", name="max_pool"))
        keep(tf1.nn.avg_pool(image, [1, 2, 2, 1], [1, 2, 2, 1], "VALID", name="avg_pool"))
        keep(tf1.reshape(image, [-1, 108], name="reshape"))
        keep(tf1.reshape(image, tf1.stack([tf1.shape(image)[0], -1]), name="reshape_dynamic"))
        expanded = keep(tf1.expand_dims(mm, 1, name="expand"))
        keep(tf1.squeeze(expanded, [1], name="squeeze"))
        keep(tf1.squeeze(tf1.expand_dims(mm, -1), name="squeeze_all"))
        keep(tf1.concat([mm, a], 1, name="concat"))
        keep(tf1.stack([a, a * 2.0], axis=1, name="pack"))
        keep(tf1.transpose(image, [0, 3, 1, 2], name="transpose"))
        keep(tf1.reduce_mean(image, [1, 2], name="mean"))
        keep(tf1.reduce_mean(image, [1, 2], keepdims=True, name="mean_keep"))
        keep(tf1.reduce_sum(mm, name="sum_all"))
        keep(tf1.reduce_max(mm, 0, name="max0"))
        keep(tf1.reduce_min(mm, 1, name="min1"))
        keep(tf1.reduce_prod(mm, 1, name="prod1"))
        keep(tf1.argmax(mm, 1, name="argmax"))
        keep(tf1.argmin(mm, 0, output_type=tf.int32, name="argmin"))
        keep(tf1.cast(ints, tf.float32, name="cast"))
        keep(tf1.shape(image, name="shape"))
        keep(tf1.shape(image, out_type=tf.int64, name="shape64"))
        keep(tf1.size(image, name="size"))
        keep(tf1.rank(image, name="rank"))
        keep(tf1.identity(image[:, 1], name="slice_shrink"))
        keep(tf1.identity(image[1:, ::2, -3:], name="slice_steps"))
        keep(tf1.identity(image[..., 0], name="slice_ellipsis"))
        keep(tf1.identity(mm[:, None, 2:4], name="slice_newaxis"))
        keep(tf1.identity(mm[-1], name="slice_last"))
        keep(tf1.identity(mm[::-1, 3:0:-2], name="slice_reverse"))
        keep(tf1.slice(image, [0, 1, 2, 0], [-1, 2, 3, 2], name="slice_op"))
        keep(tf1.pad(mm, [[1, 0], [2, 3]], name="pad"))
        keep(tf1.pad(mm, [[1, 1], [0, 2]], constant_values=-1.0, name="pad_value"))
        keep(tf1.pad(mm, [[1, 1], [2, 2]], mode="REFLECT", name="pad_reflect"))
        keep(tf1.tile(a, [2, 1], name="tile"))
        keep(tf1.gather(a, [2, 0], name="gather"))
        keep(tf1.gather(a, [3, 1], axis=1, name="gather_axis1"))
        keep(tf1.one_hot(ints[0], 10, name="one_hot"))
        pieces = tf1.split(mm, [2, 3], axis=1, name="split_v")
        keep(tf1.identity(pieces[1], name="split_v_second"))
        halves = tf1.split(image, 3, axis=3, name="split")
        keep(tf1.identity(halves[2], name="split_third"))
        rows = tf1.unstack(a, axis=1, name="unstack")
        keep(tf1.identity(rows[1], name="unstack_second"))
        keep(tf1.fill([2, 2], 3.0, name="fill"))
        keep(tf1.zeros_like(mm, name="zeros_like"))
        keep(tf1.ones_like(ints, name="ones_like"))
        keep(tf1.range(1, 10, 3, name="range"))
        keep(tf1.where(mm > 0.0, mm, -mm, name="select"))
        keep(tf1.cast(tf1.equal(ints, 1), tf.int32, name="equal"))
        keep(tf1.cast(tf1.logical_and(ints > 0, ints < 5), tf.float32, name="logical"))
        channels = 3
        keep(tf1.nn.fused_batch_norm(
            image, scale=tf1.constant([1.0, 2.0, 0.5]), offset=tf1.constant([0.1, 0.0, -0.1]),
            mean=tf1.constant([0.2, -0.1, 0.0]), variance=tf1.constant([1.5, 0.5, 2.0]),
            epsilon=0.01, is_training=False, name="fused_bn")[0])
        keep(tf1.nn.batch_normalization(image, 0.1, 0.5, tf1.zeros([channels]),
                                        tf1.ones([channels]), 1e-3, name="batch_norm"))
        with tf1.control_dependencies([tf1.no_op(name="noop")]):
            keep(tf1.identity(a, name="after_noop"))
        for op in graph.get_operations():
            assert op.type != "Placeholder" or op.name in feeds or op.name == "scale", op.name
        with tf1.Session(graph=graph) as sess:
            feed = {graph.get_tensor_by_name(f"{name}:0"): value for name, value in feeds.items()}
            values = sess.run(fetches, feed)
        graph_def = graph.as_graph_def()
    with open("op_zoo.pb", "wb") as file:
        file.write(graph_def.SerializeToString())
    arrays = {f"feed/{name}": value for name, value in feeds.items()}
    arrays.update({f"fetch/{t.name}": v for t, v in zip(fetches, values, strict=True)})
    np.savez("op_zoo.npz", **arrays)
    print("op types:", sorted({n.op for n in graph_def.node}))


def saved_models():
    x_value = rng.standard_normal((2, 3)).astype(np.float32)
    w1 = rng.standard_normal((3, 4)).astype(np.float32)
    w2 = rng.standard_normal((4, 2)).astype(np.float32)
    results = {"x": x_value}
    for prefix, resource in (("resource_model", True), ("ref_model", False)):
        if resource:
            tf1.enable_resource_variables()
        else:
            tf1.disable_resource_variables()
        with tf.Graph().as_default() as graph:
            x = tf1.placeholder(tf.float32, [None, 3], name="x")
            with tf1.variable_scope("layer1"):
                k1 = tf1.get_variable("kernel", initializer=tf1.zeros_initializer(),
                                      shape=[3, 4])
                b1 = tf1.get_variable("bias", shape=[4], initializer=tf1.zeros_initializer())
            k2 = tf1.get_variable("kernel2", shape=[4, 2])       # glorot_uniform
            step = tf1.train.get_or_create_global_step()
            h = tf1.nn.relu(tf1.matmul(x, k1) + b1)
            y = tf1.nn.softmax(tf1.matmul(h, k2), name="y")
            # a training op: its gradient and update nodes are in the .meta too
            loss = tf1.reduce_mean(-tf1.log(y[:, 0]), name="loss")
            tf1.train.GradientDescentOptimizer(0.1).minimize(loss, global_step=step,
                                                             name="train")
            saver = tf1.train.Saver()
            with tf1.Session(graph=graph) as sess:
                sess.run(tf1.global_variables_initializer())
                k1.load(w1, sess)
                b1.load(np.array([0.1, -0.2, 0.3, 0.0], np.float32), sess)
                k2.load(w2, sess)
                sess.run(tf1.assign(step, 7))
                saver.save(sess, f"{prefix}.ckpt", latest_filename=f"{prefix}_checkpoint")
        with tf.Graph().as_default() as graph:
            restorer = tf1.train.import_meta_graph(f"{prefix}.ckpt.meta")
            with tf1.Session(graph=graph) as sess:
                restorer.restore(sess, f"{prefix}.ckpt")
                results[f"{prefix}/y"] = sess.run(graph.get_tensor_by_name("y:0"),
                                                  {"x:0": x_value})
    np.savez("saved_models.npz", **results)


frozen_cnn()
op_zoo()
saved_models()
