"""resolve(): the cluster and this task from flags, TF_CONFIG, Slurm or MPI; and Slurm's
compact host lists. Every test passes argv and environ explicitly: nothing real is read."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tracejit.cluster.hostlist import MAX_HOSTS, expand_hostlist, expand_tasks_per_node
from tracejit.cluster.resolve import ClusterInfo, resolve
from tracejit.cluster.spec import ClusterError, ClusterSpec

FLAGS = ["--ps_hosts=ps0:2222", "--worker_hosts=w0:2222,w1:2222"]


def tf_config(cluster, task=None, **extra) -> dict[str, str]:
    config = {"cluster": cluster, **extra}
    if task is not None:
        config["task"] = task
    return {"TF_CONFIG": json.dumps(config)}


# -- flags ------------------------------------------------------------------------------

def test_tutorial_flags_give_cluster_and_task():
    info = resolve(["--job_name=worker", "--task_index=1", *FLAGS], environ={})
    assert info == ClusterInfo(
        ClusterSpec({"ps": ["ps0:2222"], "worker": ["w0:2222", "w1:2222"]}), "worker", 1,
        "flags")
    assert info.address == "w1:2222"


def test_flags_with_spaces_single_dashes_and_other_flags_mixed_in():
    argv = ["train.py-arg", "--learning_rate", "0.1", "--job_name", "ps", "-task_index", "0",
            "--ps_hosts", "ps0:2222", "-worker_hosts=w0:2222, w1:2222", "--verbose"]
    info = resolve(argv, environ={})
    assert (info.job_name, info.task_index) == ("ps", 0)
    assert info.cluster.job_tasks("worker") == ["w0:2222", "w1:2222"]


def test_task_index_defaults_to_zero_as_in_the_tf_tutorial():
    assert resolve(["--job_name=ps", *FLAGS], environ={}).task_index == 0


def test_last_repeated_flag_wins_and_flags_after_double_dash_are_not_read():
    argv = ["--job_name=ps", "--job_name=worker", "--task_index=1", *FLAGS,
            "--", "--task_index=0"]
    info = resolve(argv, environ={})
    assert (info.job_name, info.task_index) == ("worker", 1)


def test_chief_and_evaluator_host_flags():
    info = resolve(["--job_name=chief", "--chief_hosts=c:1", "--worker_hosts=w:1",
                    "--evaluator_hosts=e:1"], environ={})
    assert info.cluster.jobs == ["chief", "evaluator", "worker"]


def test_flag_hosts_win_over_every_environment_source():
    environ = {**tf_config({"worker": ["x:1"]}, {"type": "worker", "index": 0}),
               "SLURM_PROCID": "0", "OMPI_COMM_WORLD_RANK": "0"}
    assert resolve(["--job_name=worker", *FLAGS], environ=environ).source == "flags"


@pytest.mark.parametrize("argv, named", [
    (["--job_name=worker", "--task_index=2", *FLAGS],
     r"--task_index=2 is out of range: job 'worker' .* task indices \[0, 1\]"),
    (["--job_name=chief", *FLAGS], r"--job_name='chief' is not a job .* \['ps', 'worker'\]"),
    (["--job_name=worker", "--task_index=x", *FLAGS], "--task_index='x'"),
    (["--job_name=worker", "--task_index", "-1", *FLAGS], "--task_index='-1'"),
    (["--job_name=wor-ker", *FLAGS], "flag --job_name: job name 'wor-ker'"),
    (["--job_name=ps", "--ps_hosts=ps0"], "flag --ps_hosts: address 'ps0'"),
    (["--job_name=ps", "--ps_hosts=a:1,,b:1"], r"flag --ps_hosts='a:1,,b:1' has an empty"),
    (["--job_name=ps", "--ps_hosts="], "flag --ps_hosts='' has an empty"),
    (["--job_name", "--task_index=0", *FLAGS], "flag --job_name has no value"),
    (["--job_name=ps", "--ps_hosts"], "flag --ps_hosts has no value"),
    ([*FLAGS], r"does not say which task .* pass --job_name"),
])
def test_bad_flags_raise_naming_the_flag_and_value(argv, named):
    with pytest.raises(ClusterError, match=named):
        resolve(argv, environ={})


def test_job_name_without_hosts_anywhere_says_so():
    with pytest.raises(ClusterError, match="no source gave the hosts") as caught:
        resolve(["--job_name=worker", "--task_index=0"], environ={})
    assert "TF_CONFIG" in str(caught.value)


# -- TF_CONFIG --------------------------------------------------------------------------

CLUSTER = {"chief": ["c:2222"], "ps": ["p:2222"], "worker": ["w0:2222", "w1:2222"]}


def test_tf_config():
    info = resolve([], environ=tf_config(CLUSTER, {"type": "worker", "index": 1},
                                         environment="cloud", rpc_layer="grpc"))
    assert info == ClusterInfo(ClusterSpec(CLUSTER), "worker", 1, "TF_CONFIG")


def test_tf_config_index_defaults_to_zero_and_may_be_a_digit_string():
    assert resolve([], environ=tf_config(CLUSTER, {"type": "chief"})).task_index == 0
    environ = tf_config(CLUSTER, {"type": "worker", "index": "1"})
    assert resolve([], environ=environ).task_index == 1


def test_tf_config_evaluator_may_stand_outside_the_cluster():
    info = resolve([], environ=tf_config(CLUSTER, {"type": "evaluator", "index": 0}))
    assert (info.job_name, info.task_index) == ("evaluator", 0)
    assert "evaluator" not in info.cluster.jobs
    with pytest.raises(ValueError, match="no job 'evaluator'"):
        _ = info.address


def test_tf_config_sparse_cluster():
    environ = tf_config({"worker": {"1": "w1:1", "4": "w4:1"}}, {"type": "worker", "index": 4})
    info = resolve([], environ=environ)
    assert info.cluster.job_tasks("worker") == [None, "w1:1", None, None, "w4:1"]
    assert info.address == "w4:1"


def test_flags_name_the_task_of_a_tf_config_cluster():
    environ = tf_config(CLUSTER)       # a cluster but no task
    info = resolve(["--job_name=worker", "--task_index=1"], environ=environ)
    assert (info.job_name, info.task_index) == ("worker", 1)
    assert info.source == "TF_CONFIG (task from flags)"
    # flags override a task TF_CONFIG names, too; --task_index alone keeps its job
    environ = tf_config(CLUSTER, {"type": "worker", "index": 0})
    info = resolve(["--task_index=1"], environ=environ)
    assert (info.job_name, info.task_index) == ("worker", 1)
    info = resolve(["--job_name=chief"], environ=tf_config(CLUSTER, {"type": "worker",
                                                                      "index": 1}))
    assert (info.job_name, info.task_index) == ("chief", 0)


@pytest.mark.parametrize("text", ["", "  ", "{}", '{"cluster": {}}', '{"task": {"type": "w"}}'])
def test_a_tf_config_without_a_cluster_is_no_cluster(text):
    with pytest.raises(ClusterError, match="found no cluster"):
        resolve([], environ={"TF_CONFIG": text})


@pytest.mark.parametrize("environ, named", [
    ({"TF_CONFIG": "{'cluster': 1}"}, r"TF_CONFIG is not valid JSON .*'cluster'"),
    ({"TF_CONFIG": "[1]"}, "TF_CONFIG must be a JSON object"),
    (tf_config({"worker": "w:1"}, {"type": "worker"}), "TF_CONFIG cluster: job 'worker'"),
    (tf_config({"worker": ["w"]}, {"type": "worker"}), "TF_CONFIG cluster: .* address 'w'"),
    (tf_config(CLUSTER, "worker"), "TF_CONFIG task must be an object"),
    (tf_config(CLUSTER, {"index": 0}), "TF_CONFIG task.type: job name None"),
    (tf_config(CLUSTER, {"type": "master"}), r"TF_CONFIG task.type='master' is not a job"),
    (tf_config(CLUSTER, {"type": "worker", "index": 2}),
     r"TF_CONFIG task.index=2 is out of range: job 'worker' .* \[0, 1\]"),
    (tf_config(CLUSTER, {"type": "worker", "index": -1}), "TF_CONFIG task.index=-1"),
    (tf_config(CLUSTER, {"type": "worker", "index": True}), "TF_CONFIG task.index=True"),
    (tf_config(CLUSTER, {"type": "worker", "index": "one"}), "TF_CONFIG task.index='one'"),
    (tf_config(CLUSTER, {}), r"does not say which task .* give TF_CONFIG a 'task'"),
])
def test_bad_tf_config_names_the_part(environ, named):
    with pytest.raises(ClusterError, match=named):
        resolve([], environ=environ)


def test_a_bad_flag_task_in_a_tf_config_cluster_names_the_flag():
    with pytest.raises(ClusterError, match=r"--task_index \(default 0\)|--job_name='ps'"):
        resolve(["--job_name=ps"], environ=tf_config({"worker": ["w:1"]}))
    with pytest.raises(ClusterError, match="--task_index=5 is out of range"):
        resolve(["--task_index=5"], environ=tf_config(CLUSTER, {"type": "worker"}))


# -- Slurm ------------------------------------------------------------------------------

def slurm(procid, ntasks, nodelist, per_node=None, **more) -> dict[str, str]:
    environ = {"SLURM_PROCID": str(procid), "SLURM_NTASKS": str(ntasks),
               "SLURM_JOB_NODELIST": nodelist, **more}
    if per_node is not None:
        environ["SLURM_TASKS_PER_NODE"] = per_node
    return environ


def test_slurm_one_task_per_node_default_layout():
    info = resolve([], environ=slurm(2, 4, "node[01-04]", "1(x4)"))
    assert info.cluster.as_dict() == {"ps": ["node01:8888"],
                                      "worker": ["node02:8888", "node03:8888", "node04:8888"]}
    assert (info.job_name, info.task_index, info.source) == ("worker", 1, "Slurm")
    assert info.address == "node03:8888"


def test_slurm_tasks_on_one_node_get_consecutive_ports():
    environ = slurm(0, 5, "a,b[1-2]", "2(x2),1")
    infos = [resolve([], environ={**environ, "SLURM_PROCID": str(rank)}, port_base=7000)
             for rank in range(5)]
    assert infos[0].cluster.tasks() == [
        ("ps", 0, "a:7000"), ("worker", 0, "a:7001"), ("worker", 1, "b1:7000"),
        ("worker", 2, "b1:7001"), ("worker", 3, "b2:7000")]
    assert [(i.job_name, i.task_index) for i in infos] == [
        ("ps", 0), ("worker", 0), ("worker", 1), ("worker", 2), ("worker", 3)]
    assert all(i.cluster == infos[0].cluster for i in infos)


def test_slurm_job_layout_in_rank_order():
    jobs = {"chief": 1, "ps": 2, "worker": None}
    environ = slurm(3, 6, "n[1-6]")      # no tasks-per-node: spread evenly
    info = resolve([], environ=environ, jobs=jobs)
    assert info.cluster.as_dict() == {"chief": ["n1:8888"], "ps": ["n2:8888", "n3:8888"],
                                      "worker": ["n4:8888", "n5:8888", "n6:8888"]}
    assert (info.job_name, info.task_index) == ("worker", 0)
    info = resolve([], environ=slurm(1, 4, "n1", "4"), jobs={"worker": 3, "ps": 1})
    assert (info.job_name, info.task_index) == ("worker", 1)
    assert info.cluster.job_tasks("ps") == ["n1:8891"]


def test_a_lone_slurm_task_is_a_worker():
    info = resolve([], environ=slurm(0, 1, "n1"))
    assert info.cluster.as_dict() == {"worker": ["n1:8888"]}


def test_slurm_step_variables_win_over_the_allocations():
    environ = {**slurm(1, 8, "n[1-4]", "2(x4)"), "SLURM_STEP_NUM_TASKS": "2",
               "SLURM_STEP_NODELIST": "n[3-4]", "SLURM_STEP_TASKS_PER_NODE": "1(x2)"}
    info = resolve([], environ=environ)
    assert info.cluster.tasks() == [("ps", 0, "n3:8888"), ("worker", 0, "n4:8888")]


def test_flags_choose_the_task_in_a_slurm_cluster():
    info = resolve(["--job_name=ps"], environ=slurm(2, 3, "n[1-3]"))
    assert (info.job_name, info.task_index, info.source) == ("ps", 0, "Slurm (task from flags)")


@pytest.mark.parametrize("environ, named", [
    (slurm(4, 4, "n[1-4]"), "SLURM_PROCID=4 is not below SLURM_NTASKS=4"),
    (slurm("x", 4, "n[1-4]"), "SLURM_PROCID='x'"),
    (slurm(0, 0, "n1"), "SLURM_NTASKS='0' is not a positive integer"),
    (slurm(0, 4, "n[1-4"), "SLURM_JOB_NODELIST='n\\[1-4' has a '\\[' without"),
    (slurm(0, 4, "n[4-1]"), "SLURM_JOB_NODELIST=.* range '4-1' runs backwards"),
    (slurm(0, 4, "n[1-2]", "2(x3)"), r"SLURM_TASKS_PER_NODE='2\(x3\)' gives 3 nodes .* has 2"),
    (slurm(0, 4, "n[1-2]", "3,2"), "adds up to 5 tasks but SLURM_NTASKS=4"),
    (slurm(0, 4, "n[1-2]", "2(y2)"), "SLURM_TASKS_PER_NODE='2\\(y2\\)' has '2\\(y2\\)'"),
    (slurm(0, 3, "n[1-2]"), "do not spread evenly over the 2 nodes of SLURM_JOB_NODELIST"),
    (slurm(0, 2, "bad!host,b"), "SLURM_JOB_NODELIST: address 'bad!host:8888' has a bad host"),
    ({"SLURM_PROCID": "0", "SLURM_JOB_NODELIST": "n1"}, "SLURM_NTASKS is not"),
    ({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}, "SLURM_STEP_NODELIST is not"),
])
def test_bad_slurm_environment_names_the_variable(environ, named):
    with pytest.raises(ClusterError, match=named):
        resolve([], environ=environ)


def test_slurm_ports_past_65535_and_bad_layouts_are_refused():
    with pytest.raises(ClusterError, match="port_base=65535 their ports pass 65535"):
        resolve([], environ=slurm(0, 2, "n1", "2"), port_base=65535)
    with pytest.raises(ClusterError, match=r"lays out 3 tasks but SLURM_NTASKS=4"):
        resolve([], environ=slurm(0, 4, "n[1-4]"), jobs={"ps": 1, "worker": 2})
    with pytest.raises(ClusterError, match=r"lays out 5 tasks but SLURM_NTASKS=4"):
        resolve([], environ=slurm(0, 4, "n[1-4]"), jobs={"ps": 5, "worker": None})


# -- MPI --------------------------------------------------------------------------------

def test_open_mpi_on_one_machine():
    environ = {"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "3"}
    info = resolve([], environ=environ, port_base=9000)
    assert info.cluster.as_dict() == {"ps": ["127.0.0.1:9000"],
                                      "worker": ["127.0.0.1:9001", "127.0.0.1:9002"]}
    assert (info.job_name, info.task_index, info.source) == ("worker", 1, "MPI")


def test_pmi_with_a_host_list():
    environ = {"PMI_RANK": "0", "PMI_SIZE": "4",
               "TRACEJIT_MPI_HOSTS": "h1, h1,h2:5000,[::1]"}
    info = resolve([], environ=environ, jobs={"worker": None})
    assert info.cluster.job_tasks("worker") == ["h1:8888", "h1:8889", "h2:5000", "[::1]:8888"]
    assert (info.job_name, info.task_index) == ("worker", 0)


def test_mpi_rank_wins_over_a_slurm_rank_that_disagrees():
    # mpirun inside an allocation: every rank inherits its launcher daemon's SLURM_PROCID
    environ = {**slurm(0, 1, "n1"), "OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2"}
    info = resolve([], environ=environ)
    assert (info.source, info.job_name, info.task_index) == ("MPI", "worker", 0)
    # srun --mpi=pmi2 sets both, in agreement: Slurm, which knows the nodes, is used
    environ = {**slurm(1, 2, "n[1-2]"), "PMI_RANK": "1", "PMI_SIZE": "2"}
    assert resolve([], environ=environ).source == "Slurm"


@pytest.mark.parametrize("environ, named", [
    ({"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "3"},
     "OMPI_COMM_WORLD_RANK=3 is not below OMPI_COMM_WORLD_SIZE=3"),
    ({"OMPI_COMM_WORLD_RANK": "0"}, "OMPI_COMM_WORLD_RANK is set but OMPI_COMM_WORLD_SIZE"),
    ({"PMI_RANK": "a", "PMI_SIZE": "2"}, "PMI_RANK='a'"),
    ({"PMI_RANK": "0", "PMI_SIZE": "2", "TRACEJIT_MPI_HOSTS": "h1"},
     "TRACEJIT_MPI_HOSTS='h1' lists 1 hosts but the MPI launch has 2 ranks"),
    ({"PMI_RANK": "0", "PMI_SIZE": "2", "TRACEJIT_MPI_HOSTS": "h1,"},
     "TRACEJIT_MPI_HOSTS='h1,' has an empty host"),
    ({"PMI_RANK": "0", "PMI_SIZE": "2", "TRACEJIT_MPI_HOSTS": "h1,h2:0"},
     "TRACEJIT_MPI_HOSTS: address 'h2:0' has a bad port"),
    ({"PMI_RANK": "0", "PMI_SIZE": "2", "TRACEJIT_MPI_HOSTS": "h1,h1:8888"},
     "TRACEJIT_MPI_HOSTS gives two ranks the same address 'h1:8888'"),
])
def test_bad_mpi_environment_names_the_variable(environ, named):
    with pytest.raises(ClusterError, match=named):
        resolve([], environ=environ)


# -- nothing found, arguments, defaults -------------------------------------------------

def test_nothing_found_explains_the_four_ways():
    with pytest.raises(ClusterError) as caught:
        resolve([], environ={"HOME": "/root"})
    message = str(caught.value)
    for way in ("--job_name", "--ps_hosts", "TF_CONFIG", "SLURM_PROCID",
                "OMPI_COMM_WORLD_RANK", "PMI_RANK", "TRACEJIT_MPI_HOSTS"):
        assert way in message


@pytest.mark.parametrize("kwargs, named", [
    ({"port_base": 0}, "port_base=0"),
    ({"port_base": True}, "port_base=True"),
    ({"jobs": {}}, "jobs={} must be a non-empty dict"),
    ({"jobs": {"ps": -1}}, "job 'ps' has count -1"),
    ({"jobs": {"ps": None, "worker": None}}, "only one job can take the rest"),
    ({"jobs": {"p s": 1}}, "jobs=: job name 'p s'"),
])
def test_bad_arguments_are_refused_before_looking(kwargs, named):
    with pytest.raises(ClusterError, match=named):
        resolve([], environ={}, **kwargs)


def test_defaults_read_the_real_argv_and_environment(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py", "--job_name=worker", *FLAGS])
    monkeypatch.setenv("TF_CONFIG", "not json")       # never read: flags come first
    assert resolve().job_name == "worker"
    monkeypatch.setattr("sys.argv", ["train.py"])
    with pytest.raises(ClusterError, match="TF_CONFIG is not valid JSON"):
        resolve()


def test_cluster_info_is_frozen():
    info = resolve(["--job_name=ps", *FLAGS], environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.task_index = 3


# -- Slurm's compact lists --------------------------------------------------------------

@pytest.mark.parametrize("text, hosts", [
    ("node1", ["node1"]),
    ("node[01-03,07],gpu5", ["node01", "node02", "node03", "node07", "gpu5"]),
    ("n[8-11]", ["n8", "n9", "n10", "n11"]),
    ("n[098-101]", ["n098", "n099", "n100", "n101"]),
    ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
    ("a[1,3]-ib", ["a1-ib", "a3-ib"]),
    ("[1-2]x", ["1x", "2x"]),
    ("h.example.com,10.0.0.[1-2]", ["h.example.com", "10.0.0.1", "10.0.0.2"]),
])
def test_expand_hostlist(text, hosts):
    assert expand_hostlist(text) == hosts


@pytest.mark.parametrize("text, named", [
    ("", "is not a host list"),
    ("a,,b", "empty host name"),
    ("a,", "empty host name"),
    ("n[1-2", "'\\[' without a '\\]'"),
    ("n1-2]", "'\\]' without a '\\['"),
    ("n[1[2]]", "nests"),
    ("n[]", "bad range ''"),
    ("n[a-b]", "bad range 'a-b'"),
    ("n[1-]", "bad range '1-'"),
    ("n[3-1]", "runs backwards"),
    ("n1, n2", "white space"),
    ("n[0-99999999]", f"over {MAX_HOSTS} hosts"),
    ("a[1-2000]b[1-2000]", f"over {MAX_HOSTS} hosts"),
])
def test_expand_hostlist_errors_name_the_list(text, named):
    with pytest.raises(ClusterError, match=named) as caught:
        expand_hostlist(text, what="NODES")
    assert str(caught.value).startswith("NODES=")


@pytest.mark.parametrize("text, counts", [
    ("1", [1]), ("2(x3),1", [2, 2, 2, 1]), ("4,2(x2)", [4, 2, 2]), (" 1(x2) ", [1, 1]),
])
def test_expand_tasks_per_node(text, counts):
    assert expand_tasks_per_node(text) == counts


@pytest.mark.parametrize("text", ["", "0", "2(x0)", "2(3)", "x", "1,,1", "2(x1000000000)"])
def test_expand_tasks_per_node_errors_name_the_variable(text):
    with pytest.raises(ClusterError, match="^SLURM_TASKS_PER_NODE="):
        expand_tasks_per_node(text)
