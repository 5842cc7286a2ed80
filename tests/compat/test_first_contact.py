"""The first lines of TF1 scripts (issue 12). Expected values were recorded from
TensorFlow 2.21 (``tensorflow.compat.v1``, eager execution off) running the same lines;
TensorFlow itself is not needed here."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit
import tracejit.compat.v1 as tf


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield


# ---- wrong results before -----------------------------------------------------------------


def test_a_read_inside_control_dependencies_runs_after_them():
    counter = tf.Variable(0.0)
    with tf.control_dependencies([tf.assign_add(counter, 1.0)]):
        r = tf.identity(counter)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        assert [float(s.run(r)) for _ in range(4)] == [1.0, 2.0, 3.0, 4.0]


def test_update_ops_run_before_the_train_step_that_depends_on_them():
    x = tf.placeholder(tf.float32, [None, 2])
    mean = tf.Variable([0.0, 0.0], trainable=False)
    update = tf.assign(mean, 0.5 * mean + 0.5 * tf.reduce_mean(x, 0))
    tf.add_to_collection(tf.GraphKeys.UPDATE_OPS, update)
    w = tf.Variable([1.0, 1.0])
    loss = tf.reduce_sum(w * x)
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        for i in range(3):
            s.run(train, {x: np.array([[1.0, 2.0], [3.0, 4.0]], np.float32) * (i + 1)})
        np.testing.assert_allclose(s.run(mean), [4.25, 6.375])
        np.testing.assert_allclose(s.run(w), [-1.4, -2.6], rtol=1e-6)


def test_optimizer_state_is_in_global_variables():
    w = tf.Variable([1.0, 2.0], name="w")
    train = tf.train.AdamOptimizer(0.1).minimize(tf.reduce_sum(w * w))
    assert [v.name for v in tf.global_variables()] == [
        "w:0", "beta1_power:0", "beta2_power:0", "w/Adam:0", "w/Adam_1:0"]
    assert [v.name for v in tf.trainable_variables()] == ["w:0"]
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        s.run(train)
        s.run(tf.global_variables_initializer())          # resets the slots too
        assert s.run(tf.global_variables()[3]).tolist() == [0.0, 0.0]


def test_adagrad_da_with_the_global_step_tensor():
    w = tf.Variable([1.0, -2.0])
    step = tf.train.get_or_create_global_step()
    optimizer = tf.train.AdagradDAOptimizer(0.3, global_step=step)
    train = optimizer.minimize(tf.reduce_sum(w * w), global_step=step)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        for _ in range(3):
            s.run(train)
        np.testing.assert_allclose(s.run(w), [-0.1406979262828827, 0.21273034811019897],
                                   rtol=1e-6)
        assert int(s.run(step)) == 3
    assert [v.name for v in tf.global_variables()] == [
        "Variable:0", "global_step:0", "Variable/AdagradDA:0", "Variable/AdagradDA_1:0"]


def test_device_strings_and_soft_placement(no_gpu):
    c = tf.constant(1.0)
    assert c.op.device == ""
    with tf.device("/gpu:0"):
        on_gpu = tf.constant(2.0, name="on_gpu") + 1.0
    with pytest.raises(tf.errors.InvalidArgumentError, match="on_gpu.*GPU:0"):
        tf.Session().run(on_gpu)
    soft = tf.Session(config=tf.ConfigProto(allow_soft_placement=True))
    assert float(soft.run(on_gpu)) == 3.0


def test_hard_placement_checks_the_devices_this_process_has(monkeypatch, no_gpu):
    # TensorFlow's rule: an op pinned to a device that does not exist fails, naming the
    # devices there are; soft placement runs it anyway. /cpu:1 exists with two.
    monkeypatch.setenv("TRACEJIT_CPU_DEVICES", "2")
    with tf.device("/cpu:1"):
        here = tf.constant(2.0) * 3.0
    with tf.device("/cpu:2"):
        missing = tf.constant(1.0, name="missing") + 1.0
    with tf.device("/job:ps/task:0"):
        remote = tf.constant(4.0, name="remote") - 1.0
    with tf.Session() as s:
        assert float(s.run(here)) == 6.0
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"missing.*CPU:2.*available devices are \[ "
                                 r"/job:localhost/replica:0/task:0/device:CPU:0, "
                                 r"/job:localhost/replica:0/task:0/device:CPU:1 \]"):
            s.run(missing)
        with pytest.raises(tf.errors.InvalidArgumentError, match="remote.*job:ps"):
            s.run(remote)
    soft = tf.Session(config=tf.ConfigProto(allow_soft_placement=True))
    assert [float(v) for v in soft.run([missing, remote])] == [2.0, 3.0]


def test_log_device_placement_prints_each_op_once(capsys):
    a = tf.constant(2.0, name="a")
    b = tf.multiply(a, 3.0, name="b")
    with tf.Session(config=tf.ConfigProto(log_device_placement=True)) as s:
        assert float(s.run(b)) == 6.0
        s.run(b)
    lines = capsys.readouterr().err.splitlines()
    cpu = "/job:localhost/replica:0/task:0/device:CPU:0"
    assert f"a: (Const): {cpu}" in lines and f"b: (Mul): {cpu}" in lines
    assert len([line for line in lines if line.startswith(("a: ", "b: "))]) == 2


# ---- errors where TensorFlow runs -----------------------------------------------------------


def test_tf1_argument_spellings():
    x = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    with tf.Session() as s:
        assert s.run(tf.reduce_sum(x, reduction_indices=[1])).tolist() == [3.0, 7.0]
        assert s.run(tf.reduce_mean(x, axis=0, keep_dims=True)).tolist() == [[2.0, 3.0]]
        np.testing.assert_allclose(s.run(tf.nn.softmax(x, dim=0))[:, 0], [0.11920292, 0.880797])
    with pytest.raises(ValueError, match="both 'axis' and 'reduction_indices'"):
        tf.reduce_sum(x, axis=0, reduction_indices=[1])


def test_names_from_before_tf_1_0():
    a, b = tf.constant([1.0, 2.0]), tf.constant([3.0, 4.0])
    with tf.Session() as s:
        assert s.run(tf.concat(0, [a, b])).tolist() == [1.0, 2.0, 3.0, 4.0]
        assert s.run(tf.concat([a, b], 0)).tolist() == [1.0, 2.0, 3.0, 4.0]
        assert s.run(tf.to_float(tf.constant([1, 2]))).tolist() == [1.0, 2.0]
        assert s.run(tf.to_int32(tf.constant([1.7, -2.5]))).tolist() == [1, -2]
        assert s.run(tf.mul(a, b)).tolist() == [3.0, 8.0]
        assert s.run(tf.sub(a, b)).tolist() == [-2.0, -2.0]
        assert s.run(tf.neg(a)).tolist() == [-1.0, -2.0]
        assert s.run(tf.pack([a, b])).shape == (2, 2)
        assert [v.tolist() for v in s.run(tf.unpack(tf.pack([a, b])))] == [[1.0, 2.0],
                                                                           [3.0, 4.0]]
        assert s.run(tf.select(tf.constant([True, False]), a, b)).tolist() == [1.0, 4.0]
        assert [p.tolist() for p in s.run(tf.split(0, 2, tf.concat([a, b], 0)))] == [
            [1.0, 2.0], [3.0, 4.0]]


def test_dropout_with_a_fed_keep_prob():
    x = tf.placeholder(tf.float32, [None, 1000])
    keep_prob = tf.placeholder(tf.float32)
    dropped = tf.nn.dropout(x, keep_prob)
    assert dropped.shape.as_list() == [None, 1000]
    with tf.Session() as s:
        half = s.run(dropped, {x: np.ones((4, 1000), np.float32), keep_prob: 0.5})
        everything = s.run(dropped, {x: np.ones((4, 1000), np.float32), keep_prob: 1.0})
    assert set(np.unique(half).tolist()) == {0.0, 2.0}
    assert 0.45 < (half == 0).mean() < 0.55
    assert float(everything.sum()) == 4000.0


def test_shapes_from_tf_shape():
    x = tf.placeholder(tf.float32, [None, 5])
    reshaped = tf.reshape(x, [tf.shape(x)[0], 5, 1])
    zeros = tf.zeros(tf.shape(x))
    filled = tf.fill([tf.shape(x)[0], 2], 7.0)
    noise = tf.random_normal(tf.shape(x))
    assert [t.shape.as_list() for t in (reshaped, zeros, filled, noise)] == [
        [None, 5, 1], [None, 5], [None, 2], [None, 5]]
    values = np.arange(15, dtype=np.float32).reshape(3, 5)
    with tf.Session() as s:
        a, b, c, d = s.run([reshaped, zeros, filled, noise], {x: values})
    assert a.shape == (3, 5, 1) and a.reshape(-1).tolist() == values.reshape(-1).tolist()
    assert b.shape == (3, 5) and not b.any()
    assert c.tolist() == [[7.0, 7.0]] * 3
    assert d.shape == (3, 5)


def test_shape_values_under_jit_size_what_they_compute():
    @tracejit.jit
    def f(x):
        n = tracejit.shape(x)[0]
        return tracejit.reshape(x, [n * 2, -1]), tracejit.zeros([n + 1, 2])

    a, b = f(np.ones((3, 4), np.float32))
    assert a.shape == (6, 2) and b.shape == (4, 2)


def test_shapes_that_fit_only_some_fed_sizes_are_checked_at_run_time():
    x = tf.placeholder(tf.float32, [None, 5])
    y = tf.matmul(x, tf.constant(np.ones((5, 5), np.float32))) + \
        tf.constant(np.ones((6, 5), np.float32))
    assert y.shape.as_list() == [6, 5]
    with tf.Session() as s:
        assert float(s.run(y, {x: np.ones((6, 5), np.float32)}).sum()) == 180.0
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"(?is)\[7, 5\] and \[6, 5\].*node add"):
            s.run(y, {x: np.ones((7, 5), np.float32)})
        assert float(s.run(y, {x: np.ones((6, 5), np.float32)}).sum()) == 180.0


def test_session_configuration():
    config = tf.ConfigProto()
    config.gpu_options.allow_growth = True
    config.allow_soft_placement = True
    config.intra_op_parallelism_threads = 1
    options = tf.GPUOptions(per_process_gpu_memory_fraction=0.5, allow_growth=True,
                            visible_device_list="0")
    other = tf.ConfigProto(gpu_options=options, device_count={"GPU": 0},
                           operation_timeout_in_ms=1000, log_device_placement=False)
    assert config.gpu_options.allow_growth and other.gpu_options.allow_growth
    assert other.gpu_options.per_process_gpu_memory_fraction == 0.5
    assert other.device_count == {"GPU": 0}
    assert tf.ConfigProto().gpu_options.allow_growth is False      # not shared
    with pytest.raises(ValueError, match="ConfigProto has no 'not_a_field' field"):
        tf.ConfigProto(not_a_field=1)
    with pytest.raises(AttributeError, match="GPUOptions has no 'alow_growth' field"):
        config.gpu_options.alow_growth = True
    x = tf.constant(np.arange(6, dtype=np.float32))
    with tf.Session(config=config) as s:
        assert s.run(tf.reduce_sum(x * 2.0)) == 30.0
        assert tracejit.config.threads == 0                 # restored after the run


def test_get_variable_with_the_initializers_tensorflow_accepts():
    b = tf.get_variable("b", initializer=tf.constant([0.5, 1.5]))
    c = tf.get_variable("c", initializer=np.array([1.0, 2.0], np.float32))
    d = tf.get_variable("d", initializer=3.0)
    e = tf.get_variable("e", shape=[2], initializer=tf.constant_initializer(0.25))
    assert b.shape.as_list() == [2] and d.shape.as_list() == []
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        assert [np.asarray(v).tolist() for v in s.run([b, c, d, e])] == [
            [0.5, 1.5], [1.0, 2.0], 3.0, [0.25, 0.25]]


def test_which_variables_a_session_has_initialized():
    v1, v2 = tf.Variable(1.0, name="v1"), tf.Variable(2.0, name="v2")
    with tf.Session() as s:
        s.run(v1.initializer)
        assert s.run(tf.report_uninitialized_variables()).tolist() == [b"v2"]
        assert [bool(x) for x in s.run([tf.is_variable_initialized(v1),
                                        tf.is_variable_initialized(v2)])] == [True, False]
    assert tf.report_uninitialized_variables().dtype is tf.string


def test_exponential_moving_average():
    v = tf.Variable(1.0, name="v")
    ema = tf.train.ExponentialMovingAverage(decay=0.9)
    maintain = ema.apply([v])
    assign = tf.assign(v, 5.0)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        s.run(assign)
        s.run(maintain)
        first = float(s.run(ema.average(v)))
        s.run(maintain)
        second = float(s.run(ema.average(v)))
    assert first == pytest.approx(1.4000000953674316) and \
        second == pytest.approx(1.760000228881836)
    assert ema.average_name(v) == "v/ExponentialMovingAverage"
    assert sorted(ema.variables_to_restore()) == ["v/ExponentialMovingAverage"]
    assert [x.name for x in tf.global_variables()] == ["v:0", "v/ExponentialMovingAverage:0"]
    assert [x.name for x in tf.moving_average_variables()] == ["v:0"]


def test_exponential_moving_average_with_num_updates():
    step = tf.Variable(0, trainable=False, name="step")
    v = tf.Variable(1.0, name="v")
    ema = tf.train.ExponentialMovingAverage(decay=0.9, num_updates=step)
    maintain = ema.apply([v])
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        s.run(tf.assign(v, 3.0))
        s.run(maintain)
        assert float(s.run(ema.average(v))) == pytest.approx(2.799999952316284)


def test_errors_as_tensorflow_names_them():
    names = ["OutOfRangeError", "InvalidArgumentError", "FailedPreconditionError",
             "NotFoundError", "AlreadyExistsError", "ResourceExhaustedError",
             "UnimplementedError", "InternalError", "UnavailableError",
             "DeadlineExceededError", "CancelledError", "UnknownError", "AbortedError",
             "DataLossError", "PermissionDeniedError", "UnauthenticatedError"]
    for name in names:
        assert issubclass(getattr(tf.errors, name), tf.errors.OpError), name
    error = tf.errors.OutOfRangeError(None, None, "End of sequence")
    assert error.message == "End of sequence" and error.error_code == tf.errors.OUT_OF_RANGE
    x = tf.placeholder(tf.float32, name="needed")
    with pytest.raises(tf.errors.OpError) as caught:
        tf.Session().run(x + 1.0)
    assert caught.value.error_code == tf.errors.INVALID_ARGUMENT
    assert tf.string.name == "string"


def test_string_constants_are_fetched_as_bytes():
    path = tf.constant("data/train.csv")
    names = tf.constant(["a", "b"])
    assert path.dtype is tf.string and names.shape.as_list() == [2]
    with tf.Session() as s:
        got_path, got_names = s.run([path, names])
    assert got_path == b"data/train.csv" and got_names.tolist() == [b"a", b"b"]
    with pytest.raises(tf.errors.UnimplementedError, match="known to the session only"):
        tf.Session().run(tf.identity(path))


def _train_tf1(layout: str) -> tuple[float, np.ndarray]:
    tf.reset_default_graph()
    rng = np.random.default_rng(1)
    x_data = rng.standard_normal((16, 4)).astype(np.float32)
    y_data = (x_data @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)).astype(np.float32)
    x = tf.placeholder(tf.float32, [None, 4])
    y = tf.placeholder(tf.float32, [None, 1])
    scope = {"one": None, "split": "/job:localhost/cpu:1",
             "setter": tf.train.replica_device_setter(
                 ps_tasks=1, ps_device="/job:localhost/cpu:1",
                 worker_device="/job:localhost/cpu:2")}[layout]
    with tf.device(scope):                      # the parameter server
        w = tf.Variable(tf.zeros([4, 1]), name="w")
        with tf.device("/cpu:2" if layout == "split" else None):     # the worker
            loss = tf.reduce_mean(tf.square(tf.matmul(x, w) - y))
        train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        for _ in range(15):
            s.run(train, {x: x_data, y: y_data})
        return float(s.run(loss, {x: x_data, y: y_data})), s.run(w)


def test_a_graph_placed_over_devices_trains_as_on_one(monkeypatch, capsys):
    monkeypatch.setenv("TRACEJIT_CPU_DEVICES", "3")
    one_loss, one_w = _train_tf1("one")
    for layout in ("split", "setter"):
        loss, w = _train_tf1(layout)
        assert loss == pytest.approx(one_loss, rel=1e-6), layout
        np.testing.assert_allclose(w, one_w, rtol=1e-6, err_msg=layout)
    # what runs where, as log_device_placement prints it
    tf.reset_default_graph()
    with tf.device("/cpu:1"):
        a = tf.constant(1.0, name="a")
    b = tf.add(a, 2.0, name="b")
    with tf.Session(config=tf.ConfigProto(log_device_placement=True)) as s:
        assert float(s.run(b)) == 3.0
    err = capsys.readouterr().err
    assert "a: (Const): /job:localhost/replica:0/task:0/device:CPU:1" in err
    assert "b: (Add): /job:localhost/replica:0/task:0/device:CPU:0" in err


def test_replica_device_setter_and_colocation(monkeypatch):
    monkeypatch.setenv("TRACEJIT_CPU_DEVICES", "3")
    tf.reset_default_graph()
    # The 2016 talk's ps/worker layout, on this process's devices: variables
    # round-robin over two "parameter servers", the rest on the "worker".
    setter = tf.train.replica_device_setter(ps_tasks=2, ps_device="/job:localhost",
                                            worker_device="/job:localhost/task:0/cpu:0")
    with tf.device(setter):
        w1 = tf.Variable(tf.ones([3, 3]), name="w1")
        w2 = tf.Variable(tf.ones([3]), name="w2")
        with tf.device("/cpu:2"):
            pinned = tf.Variable(tf.zeros([1]), name="pinned")
        y = tf.matmul(tf.ones([2, 3]), w1) + w2
    assert w1.device == "/job:localhost/task:0"
    assert w2.device == "/job:localhost/task:1"
    assert pinned.device == "/job:localhost/task:0/device:CPU:2"    # its own field wins
    assert y.device == "/job:localhost/task:0/device:CPU:0"
    with tf.device("/cpu:1"):
        with tf.colocate_with(pinned):
            z = tf.identity(pinned)
    assert z.device == pinned.device
    assert tf.train.replica_device_setter(ps_tasks=0) is None
    # task 1 is not this process's: hard placement says so, soft placement runs it
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        with pytest.raises(tf.errors.InvalidArgumentError, match="w2.*task:1"):
            s.run(y)
    with tf.Session(config=tf.ConfigProto(allow_soft_placement=True)) as s:
        s.run(tf.global_variables_initializer())
        np.testing.assert_array_equal(s.run(y), np.full((2, 3), 4.0))


def test_tf_config_lists_the_runtimes_devices(monkeypatch, no_gpu):
    monkeypatch.setenv("TRACEJIT_CPU_DEVICES", "2")
    logical = tf.config.list_logical_devices("CPU")
    assert [(d.name, d.device_type) for d in logical] == [
        (f"/job:localhost/replica:0/task:0/device:CPU:{i}", "CPU") for i in range(2)]
    assert tf.config.experimental.list_logical_devices() == logical
    assert tf.config.list_physical_devices() == [
        tf.config.PhysicalDevice("/physical_device:CPU:0", "CPU")]
    assert tf.config.list_logical_devices("GPU") == []
