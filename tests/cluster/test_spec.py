"""ClusterSpec (tf.train.ClusterSpec's API), its strict JSON form, and session targets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tracejit.cluster.spec import (
    ClusterError,
    ClusterSpec,
    check_job_name,
    parse_address,
    split_target,
)
from tracejit.ir.errors import TracejitError

DENSE = {"ps": ["ps0:2222", "ps1:2222"], "worker": ["w0:2222", "w1:2222", "w2:2222"]}


def test_dense_queries_follow_tf():
    spec = ClusterSpec(DENSE)
    assert spec.jobs == ["ps", "worker"]
    assert spec.num_tasks("worker") == 3
    assert spec.task_indices("ps") == [0, 1]
    assert spec.task_address("worker", 2) == "w2:2222"
    assert spec.job_tasks("worker") == ["w0:2222", "w1:2222", "w2:2222"]
    assert spec.as_dict() == DENSE
    assert isinstance(spec.as_dict()["ps"], list)


def test_jobs_are_sorted_whatever_order_the_dict_has():
    spec = ClusterSpec({"worker": ["w:1"], "chief": ["c:1"], "ps": ["p:1"]})
    assert spec.jobs == ["chief", "ps", "worker"]
    assert list(spec.as_dict()) == ["chief", "ps", "worker"]


def test_sparse_job_keeps_its_holes():
    spec = ClusterSpec({"worker": {3: "w3:1", 0: "w0:1"}, "ps": ["p:1"]})
    assert spec.task_indices("worker") == [0, 3]
    assert spec.num_tasks("worker") == 2
    assert spec.job_tasks("worker") == ["w0:1", None, None, "w3:1"]
    assert spec.as_dict() == {"ps": ["p:1"], "worker": {0: "w0:1", 3: "w3:1"}}


def test_a_dict_without_holes_comes_back_as_a_list_as_in_tf():
    spec = ClusterSpec({"worker": {1: "b:1", 0: "a:1"}})
    assert spec.as_dict() == {"worker": ["a:1", "b:1"]}


def test_an_empty_job_is_an_empty_dict_as_in_tf():
    spec = ClusterSpec({"worker": []})
    assert spec.as_dict() == {"worker": {}}
    assert spec.job_tasks("worker") == []
    assert spec.num_tasks("worker") == 0
    assert bool(spec)


def test_tasks_lists_every_task_in_a_stable_order():
    spec = ClusterSpec({"worker": {2: "w2:1", 0: "w0:1"}, "ps": ["p:1"]})
    assert spec.tasks() == [("ps", 0, "p:1"), ("worker", 0, "w0:1"), ("worker", 2, "w2:1")]


def test_numpy_integer_task_indices_are_accepted():
    spec = ClusterSpec({"worker": {np.int64(1): "w:1"}})
    assert spec.task_indices("worker") == [1]


def test_copy_equality_hash_bool_and_repr():
    spec = ClusterSpec(DENSE)
    copy = ClusterSpec(spec)
    assert copy == spec and copy is not spec
    assert hash(copy) == hash(spec)
    assert spec == DENSE                       # as TF: equal to the dict it describes
    assert spec != {"ps": ["ps0:2222"]}
    assert spec != {"bad job!": []}            # a dict that is no spec is just unequal
    assert spec != ClusterSpec({"ps": ["ps0:2222"]})
    assert spec != 3
    assert not ClusterSpec({})
    assert ClusterSpec({"w": ["a:1"]})
    assert repr(ClusterSpec({"worker": {0: "a:1", 2: "b:1"}, "ps": ["p:1"]})) == (
        "ClusterSpec({'ps': ['p:1'], 'worker': {0: 'a:1', 2: 'b:1'}})")


def test_as_dict_is_a_copy():
    spec = ClusterSpec(DENSE)
    spec.as_dict()["ps"].append("x:1")
    assert spec.num_tasks("ps") == 2


def test_unknown_job_or_task_names_what_the_spec_has():
    spec = ClusterSpec({"worker": {0: "w0:1", 3: "w3:1"}})
    with pytest.raises(ValueError, match=r"no job 'ps'.*\['worker'\]"):
        spec.task_address("ps", 0)
    with pytest.raises(ValueError, match=r"no task 1 in job 'worker'.*\[0, 3\]"):
        spec.task_address("worker", 1)
    for query in (spec.num_tasks, spec.task_indices, spec.job_tasks):
        with pytest.raises(ValueError, match="no job 'chief'"):
            query("chief")


def test_the_error_class_is_a_tracejit_value_error():
    assert issubclass(ClusterError, TracejitError)
    assert issubclass(ClusterError, ValueError)
    assert str(ClusterError("bad", location="train.py:3")) == "bad\n  at train.py:3"


@pytest.mark.parametrize("cluster, named", [
    ({"work er": ["a:1"]}, "'work er'"),
    ({"": ["a:1"]}, "job name ''"),
    ({3: ["a:1"]}, "job name 3"),
    ({"worker": ["localhost"]}, r"job 'worker' task 0: address 'localhost'"),
    ({"worker": ["a:1", "b:0"]}, r"task 1: address 'b:0' has a bad port '0'"),
    ({"worker": ["a:65536"]}, "bad port '65536'"),
    ({"worker": ["a:http"]}, "bad port 'http'"),
    ({"worker": [":1"]}, "address ':1'"),
    ({"worker": ["-a:1"]}, "bad host '-a'"),
    ({"worker": ["::1:2222"]}, "IPv6 host in brackets"),
    ({"worker": [2222]}, "address 2222 is a int"),
    ({"worker": "localhost:2222"}, r"for one task write \['localhost:2222'\]"),
    ({"worker": None}, "job 'worker': tasks must be"),
    ({"worker": {-1: "a:1"}}, "task index -1 is negative"),
    ({"worker": {"0": "a:1"}}, "task index '0' is not an integer"),
    ({"worker": {True: "a:1"}}, "task index True"),
    ({"worker": {1: None}}, "job 'worker' task 1: address None"),
])
def test_bad_specs_raise_naming_the_bad_part(cluster, named):
    with pytest.raises(ClusterError, match=named):
        ClusterSpec(cluster)


def test_a_spec_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="got list"):
        ClusterSpec([("worker", ["a:1"])])


@pytest.mark.parametrize("address, host, port", [
    ("localhost:2222", "localhost", 2222),
    ("10.0.0.5:1", "10.0.0.5", 1),
    ("node-01.cluster.example:65535", "node-01.cluster.example", 65535),
    ("[::1]:2222", "[::1]", 2222),
    ("[fe80::1%eth0]:80", "[fe80::1%eth0]", 80),
    ("my_host:8888", "my_host", 8888),
])
def test_parse_address_accepts_names_ipv4_and_bracketed_ipv6(address, host, port):
    assert parse_address(address) == (host, port)
    ClusterSpec({"worker": [address]})


def test_check_job_name_prefixes_where():
    assert check_job_name("chief") == "chief"
    with pytest.raises(ClusterError, match=r"^TF_CONFIG: job name 'a-b'"):
        check_job_name("a-b", where="TF_CONFIG")


# -- JSON ------------------------------------------------------------------------------

@pytest.mark.parametrize("cluster", [
    DENSE,
    {"worker": {0: "a:1", 5: "b:2"}, "ps": ["p:1"]},
    {"worker": {10: "a:1", 2: "b:2"}},
    {"worker": []},
    {},
    {"chief": ["[::1]:2222"], "evaluator": ["e:1"]},
])
def test_json_round_trips(cluster):
    spec = ClusterSpec(cluster)
    text = spec.to_json()
    assert ClusterSpec.from_json(text) == spec
    assert ClusterSpec.from_json(text.encode()) == spec
    assert ClusterSpec.from_json(text).as_dict() == spec.as_dict()


def test_json_form_is_deterministic_and_plain():
    spec = ClusterSpec({"worker": {10: "a:1", 2: "b:2"}, "ps": ["p:1"]})
    assert spec.to_json() == '{"ps":["p:1"],"worker":{"2":"b:2","10":"a:1"}}'
    assert ClusterSpec(dict(reversed(list(spec.as_dict().items())))).to_json() == spec.to_json()


@pytest.mark.parametrize("text, named", [
    ("{", "malformed"),
    ("", "malformed"),
    ("[]", "must be an object"),
    ('{"worker": "a:1"}', "job 'worker': tasks must be a list or an object, not str"),
    ('{"worker": [1]}', "job 'worker' task 0: address 1"),
    ('{"worker": ["a"]}', "address 'a' is not host:port"),
    ('{"worker": {"x": "a:1"}}', "task index 'x' is not a decimal integer"),
    ('{"worker": {"-1": "a:1"}}', "task index '-1'"),
    ('{"worker": {"01": "a:1"}}', "task index '01'"),
    ('{"bad-job": []}', "job name 'bad-job'"),
    ('{"worker": ["a:1"], "worker": ["b:1"]}', "repeats the key 'worker'"),
    ('{"worker": {"0": "a:1", "0": "b:1"}}', "repeats the key '0'"),
    ('{"worker": [NaN]}', "NaN"),
    ("[" * 100_000 + "]" * 100_000, "malformed"),
])
def test_from_json_is_strict_and_says_what_is_wrong(text, named):
    with pytest.raises(ClusterError, match=named) as caught:
        ClusterSpec.from_json(text)
    assert str(caught.value).startswith(("cluster spec JSON", "cluster spec JSON:"))


def test_from_json_refuses_oversized_and_non_text_input():
    with pytest.raises(ClusterError, match="over the limit"):
        ClusterSpec.from_json(json.dumps({"worker": ["a:1"] * 200_000}))
    with pytest.raises(ClusterError, match="not UTF-8"):
        ClusterSpec.from_json(b'{"worker": ["\xff:1"]}')
    with pytest.raises(ClusterError, match="str or bytes, not dict"):
        ClusterSpec.from_json({"worker": ["a:1"]})


def test_from_json_value_names_its_source():
    with pytest.raises(ClusterError, match=r"^TF_CONFIG cluster: job 'worker' task 0"):
        ClusterSpec.from_json_value({"worker": ["nope"]}, where="TF_CONFIG cluster")


# -- targets ---------------------------------------------------------------------------

@pytest.mark.parametrize("target, expected", [
    ("zmq://localhost:2222", ("zmq", "localhost:2222")),
    ("grpc://10.0.0.1:2222", ("grpc", "10.0.0.1:2222")),
    ("GRPC://h:1", ("grpc", "h:1")),
    ("h:1", ("zmq", "h:1")),
    ("zmq://[::1]:5555", ("zmq", "[::1]:5555")),
])
def test_split_target(target, expected):
    assert split_target(target) == expected


@pytest.mark.parametrize("target, named", [
    ("", "target is empty"),
    ("http://h:1", "scheme 'http'"),
    ("zmq://h", r"target 'zmq://h': address 'h' is not host:port"),
    ("zmq://", "target 'zmq://'"),
    ("zmq://h:1/", "bad port '1/'"),
    ("grpc://h:99999", "bad port '99999'"),
    ("localhost", "target 'localhost'"),
    (None, "not a string"),
])
def test_split_target_errors_name_the_target(target, named):
    with pytest.raises(ClusterError, match=named):
        split_target(target)
