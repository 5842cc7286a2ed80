"""Cluster sessions in one process: servers for a ps and workers on loopback, TF1 graphs
placed over them, variables living on the ps across sessions and workers."""

from __future__ import annotations

import numpy as np
import pytest

import tracejit.compat.v1 as tf
from tracejit.cluster import free_port
from tracejit.cluster.remote import RemoteVariable


@pytest.fixture
def cluster():
    spec = tf.train.ClusterSpec({"ps": [f"127.0.0.1:{free_port()}" for _ in range(2)],
                                 "worker": [f"127.0.0.1:{free_port()}" for _ in range(2)]})
    servers = [tf.train.Server(spec, job, task) for job, task, _ in spec.tasks()]
    yield spec, {(s.job_name, s.task_index): s for s in servers}
    for server in servers:
        server.stop()


def _linear_model(spec, worker: int):
    with tf.device(tf.train.replica_device_setter(
            worker_device=f"/job:worker/task:{worker}", cluster=spec)):
        x = tf.placeholder(tf.float32, [None, 3], name="x")
        w = tf.Variable(tf.ones([3, 1]), name="w")
        b = tf.Variable(tf.zeros([1]), name="b")
        step = tf.train.get_or_create_global_step()
        loss = tf.reduce_mean(tf.square(tf.matmul(x, w) + b - 1.0))
        train = tf.train.GradientDescentOptimizer(0.1).minimize(loss, global_step=step)
    return x, w, b, step, loss, train


X = np.arange(12, dtype=np.float32).reshape(4, 3) / 10


def _one_process_values(steps: int):
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [None, 3], name="x")
        w = tf.Variable(tf.ones([3, 1]), name="w")
        b = tf.Variable(tf.zeros([1]), name="b")
        loss = tf.reduce_mean(tf.square(tf.matmul(x, w) + b - 1.0))
        train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(steps):
                sess.run(train, {x: X})
            return sess.run([w, b])


def test_variables_live_on_their_ps_task_and_train_to_the_one_process_values(cluster):
    spec, servers = cluster
    with tf.Graph().as_default():
        x, w, b, step, loss, train = _linear_model(spec, 0)
        assert w.device == "/job:ps/task:0" and b.device == "/job:ps/task:1"
        with tf.Session(servers["worker", 0].target) as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(5):
                sess.run(train, {x: X})
            got = sess.run([w, b, step])
        assert isinstance(w.core._value, RemoteVariable)
    expected = _one_process_values(5)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-6)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-6)
    assert got[2] == 5
    # the values are on the parameter servers, by the variables' names
    np.testing.assert_array_equal(servers["ps", 0].service.variables["w"], got[0])
    np.testing.assert_array_equal(servers["ps", 1].service.variables["b"], got[1])


def test_a_second_worker_sees_what_the_first_trained(cluster):
    spec, servers = cluster
    with tf.Graph().as_default():
        x, w, _, step, _, train = _linear_model(spec, 0)
        with tf.Session(servers["worker", 0].target) as sess:
            sess.run(tf.global_variables_initializer())
            sess.run(train, {x: X})
            trained = sess.run(w)
    with tf.Graph().as_default():
        x, w, _, step, _, train = _linear_model(spec, 1)
        with tf.Session(servers["worker", 1].target) as sess:
            # no initializer here: the ps has the values, and the session knows it
            assert sess.run(tf.report_uninitialized_variables()).size == 0
            np.testing.assert_array_equal(sess.run(w), trained)
            sess.run(train, {x: X})
            assert sess.run(step) == 2


def test_reading_a_variable_no_one_initialized_is_a_failed_precondition(cluster):
    spec, servers = cluster
    with tf.Graph().as_default():
        x, w, _, _, loss, _ = _linear_model(spec, 0)
        with tf.Session(servers["worker", 0].target) as sess:
            with pytest.raises(tf.errors.FailedPreconditionError,
                               match=r"(?s)w.*test_session\.py"):
                sess.run(loss, {x: X})


def test_a_session_from_a_process_without_a_server_runs_on_the_target_task(cluster):
    spec, servers = cluster
    # the worker servers are in this process; a bare address still works: it is PINGed
    # for its cluster, and unpinned work runs on that task
    target = f"grpc://{spec.task_address('ps', 1)}"
    with tf.Graph().as_default():
        a = tf.constant([1.0, 2.0])
        with tf.device("/job:ps/task:0"):
            v = tf.Variable([10.0, 20.0], name="v_remote")
        total = a * 3.0 + v
        with tf.Session(target) as sess:
            sess.run(v.initializer)
            np.testing.assert_array_equal(sess.run(total), [13.0, 26.0])


def test_bad_device_strings_name_the_cluster(cluster):
    spec, servers = cluster
    with tf.Graph().as_default():
        with tf.device("/job:nope/task:0"):
            y = tf.constant(1.0) + 1.0
        with tf.Session(servers["worker", 0].target) as sess:
            with pytest.raises(tf.errors.InvalidArgumentError, match="nope.*ps.*worker"):
                sess.run(y)
    with tf.Graph().as_default():
        with tf.device("/job:ps/task:7"):
            y = tf.constant(1.0) + 1.0
        with tf.Session(servers["worker", 0].target) as sess:
            with pytest.raises(tf.errors.InvalidArgumentError, match="task:7"):
                sess.run(y)


def test_a_step_past_its_deadline_names_the_task_key_and_op(cluster):
    spec, servers = cluster
    with tf.Graph().as_default():
        x, w, b, step, loss, train = _linear_model(spec, 0)
        config = tf.ConfigProto(operation_timeout_in_ms=60_000)
        with tf.Session(servers["worker", 0].target, config=config) as sess:
            sess.run(tf.global_variables_initializer())
            sess.run(train, {x: X})         # registered and compiled: no waiting below
            config.operation_timeout_in_ms = 300
            servers["ps", 1].stop()         # b's task stops answering
            with pytest.raises(tf.errors.DeadlineExceededError) as info:
                sess.run(train, {x: X})
    text = str(info.value)
    assert "/job:ps/replica:0/task:1" in text and "300 ms" in text
    assert "test_session.py" in text            # the user's line
    assert ";" in text and "rendezvous" in text     # the stage's receive keys
    assert "ops [" in text


def test_greedy_load_balancing_places_variables_by_bytes():
    strategy = tf.contrib.training.GreedyLoadBalancingStrategy(
        2, tf.contrib.training.byte_size_load_fn)
    with tf.Graph().as_default():
        with tf.device(tf.train.replica_device_setter(ps_tasks=2, ps_strategy=strategy)):
            big = tf.Variable(tf.zeros([1000]))
            small = [tf.Variable(tf.zeros([10])) for _ in range(3)]
    assert big.device == "/job:ps/task:0"
    assert {v.device for v in small} == {"/job:ps/task:1"}


def test_monitored_training_session_stops_at_the_step(cluster):
    spec, servers = cluster
    with tf.Graph().as_default():
        x, w, _, step, _, train = _linear_model(spec, 0)
        hooks = [tf.train.StopAtStepHook(last_step=7)]
        with tf.train.MonitoredTrainingSession(master=servers["worker", 0].target,
                                               is_chief=True, hooks=hooks) as sess:
            runs = 0
            while not sess.should_stop():
                sess.run(train, {x: X})
                runs += 1
        assert runs == 7
    with tf.Graph().as_default():
        x, w, _, step, _, train = _linear_model(spec, 1)
        # a non-chief finds the model ready and continues from the ps's step
        with tf.train.MonitoredTrainingSession(master=servers["worker", 1].target,
                                               is_chief=False,
                                               hooks=[tf.train.StopAtStepHook(num_steps=3)]
                                               ) as sess:
            while not sess.should_stop():
                sess.run(train, {x: X})
            assert sess.run(step) == 10


def test_tracejit_programs_place_variables_and_work_on_cluster_tasks(cluster):
    import tracejit as tj
    spec, servers = cluster
    assert tj.train.ClusterSpec is tf.train.ClusterSpec
    with tj.cluster.connect(servers["worker", 0].target):
        with tj.device("/job:ps/task:1"):
            w = tj.Variable(np.ones(3, np.float32), name="tj_w")

        @tj.jit
        def step(x):
            loss, g = tj.value_and_grad(lambda w: tj.reduce_sum((w * x) ** 2))(w.read_value())
            w.assign(w - 0.1 * g)
            return loss

        losses = [float(step(np.ones(3, np.float32))) for _ in range(3)]
    # w <- w - 0.2 w each step: 0.8, 0.64, 0.512
    np.testing.assert_allclose(losses, [3.0, 3 * 0.64, 3 * 0.8 ** 4], rtol=1e-6)
    np.testing.assert_allclose(servers["ps", 1].service.variables["tj_w"], 0.512, rtol=1e-6)
    np.testing.assert_allclose(w.numpy(), 0.512, rtol=1e-6)


def test_registering_the_same_stage_twice_compiles_it_once(cluster):
    spec, servers = cluster
    handles = []
    for worker in (0, 1):
        with tf.Graph().as_default():
            x, w, _, step, _, train = _linear_model(spec, worker)
            with tf.Session(servers["worker", worker].target) as sess:
                if worker == 0:
                    sess.run(tf.global_variables_initializer())
                sess.run(train, {x: X})
        handles.append(set(servers["ps", 0].service.graphs))
    assert handles[0] and handles[1] == handles[0]


def test_create_local_server_serves_a_session():
    server = tf.train.Server.create_local_server()
    try:
        assert server.target.startswith("zmq://127.0.0.1:")
        with tf.Graph().as_default():
            with tf.device("/job:localhost/task:0"):
                v = tf.Variable(3.0, name="local_v")
            with tf.Session(server.target) as sess:
                sess.run(v.initializer)
                assert sess.run(v * 2.0) == 6.0
    finally:
        server.stop()


def test_a_synchronous_train_op_is_fetched_not_depended_on():
    with tf.Graph().as_default():
        w = tf.Variable(1.0, name="sync_w")
        step = tf.train.get_or_create_global_step()
        opt = tf.train.SyncReplicasOptimizer(tf.train.GradientDescentOptimizer(0.1), 2)
        train = opt.minimize(w * w, global_step=step)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            with pytest.raises(tf.errors.UnimplementedError, match="fetch it with session.run"):
                sess.run(tf.group(train))
            # and outside a cluster it says what it needs
            with pytest.raises(tf.errors.FailedPreconditionError, match="cluster task"):
                sess.run(train)


def test_supervisor_chief_initializes_and_another_worker_waits_for_it(cluster):
    import threading
    spec, servers = cluster
    results = {}

    def worker(task: int) -> None:
        with tf.Graph().as_default():
            x, w, _, step, _, train = _linear_model(spec, task)
            sv = tf.train.Supervisor(is_chief=task == 0, global_step=step,
                                     init_op=tf.global_variables_initializer())
            with sv.managed_session(servers["worker", task].target) as sess:
                for _ in range(3):
                    sess.run(train, {x: X})
                results[task] = int(sess.run(step))

    other = threading.Thread(target=worker, args=(1,))
    other.start()                   # waits: nothing is initialized yet
    worker(0)
    other.join(60)
    assert not other.is_alive()
    assert max(results.values()) == 6 and min(results.values()) >= 3


def test_chief_checkpoints_the_parameter_servers_and_a_new_cluster_resumes(tmp_path):
    # the chief saves the ps tasks' variables; a whole new cluster (fresh ps tasks,
    # nothing initialized) restores them from checkpoint_dir and goes on training
    for last_step, start in ((4, 0), (7, 4)):
        spec = tf.train.ClusterSpec({"ps": [f"127.0.0.1:{free_port()}" for _ in range(2)],
                                     "worker": [f"127.0.0.1:{free_port()}"]})
        servers = [tf.train.Server(spec, job, task) for job, task, _ in spec.tasks()]
        try:
            with tf.Graph().as_default():
                x, w, b, step, _, train = _linear_model(spec, 0)
                final = tf.train.FinalOpsHook([w, b, step])
                hooks = [tf.train.StopAtStepHook(last_step=last_step), final]
                with tf.train.MonitoredTrainingSession(
                        master=servers[-1].target, is_chief=True, hooks=hooks,
                        checkpoint_dir=str(tmp_path), save_checkpoint_steps=2) as sess:
                    assert sess.run(step) == start
                    while not sess.should_stop():
                        sess.run(train, {x: X})
        finally:
            for server in servers:
                server.stop()
        expected = _one_process_values(last_step)
        np.testing.assert_allclose(final.final_ops_values[0], expected[0], rtol=1e-5)
        np.testing.assert_allclose(final.final_ops_values[1], expected[1], rtol=1e-5)
        assert final.final_ops_values[2] == last_step
        assert tf.train.latest_checkpoint(str(tmp_path)).endswith(f"model.ckpt-{last_step}")
