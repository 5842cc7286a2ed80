"""Cluster specs: which jobs a distributed run has, and where each of their tasks listens.

``ClusterSpec`` follows ``tf.train.ClusterSpec``: built from ``{job: [address, ...]}``
(dense: task i listens at the i-th address) or ``{job: {index: address}}`` (sparse: only
some indices present), asked with ``jobs``, ``num_tasks``, ``task_address`` and so on.
It also travels between processes, so it has a strict JSON form (``to_json`` /
``from_json``) that never evaluates anything it reads.

>>> spec = ClusterSpec({"ps": ["ps0:2222"], "worker": ["w0:2222", "w1:2222"]})
>>> spec.jobs, spec.num_tasks("worker"), spec.task_address("worker", 1)
(['ps', 'worker'], 2, 'w1:2222')
>>> ClusterSpec.from_json(spec.to_json()) == spec
True
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Mapping, Sequence

from tracejit.ir.errors import TracejitError

__all__ = ["ClusterError", "ClusterSpec", "SCHEMES", "check_job_name", "parse_address",
           "split_target"]


class ClusterError(TracejitError, ValueError):
    """A cluster description that cannot be used: a bad job name, address, task index,
    target or launcher environment. The message names the bad value and where it was."""


# Schemes a session target may carry. NOTE: "grpc" is accepted because TF code writes
# server targets as grpc://host:port; tracejit's transport behind both is ZeroMQ.
SCHEMES = ("zmq", "grpc")

_JOB_NAME = re.compile(r"[A-Za-z0-9_]+")
# A DNS name, an IPv4 address, or an IPv6 address in brackets (with an optional zone).
# NOTE: a host may not start with '-' so that an address can never be read as a flag.
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?\]")
_PORT = re.compile(r"[0-9]{1,5}")
_INDEX_KEY = re.compile(r"0|[1-9][0-9]*")
# NOTE: the JSON form arrives from sockets; a cap keeps a hostile peer from making the
# parser build an arbitrarily large object before validation can refuse it.
MAX_JSON_CHARS = 1 << 20


def _where(prefix: str, message: str) -> str:
    return f"{prefix}: {message}" if prefix else message


def check_job_name(name: object, *, where: str = "") -> str:
    """Return ``name`` if it is a job name (letters, digits, underscores), else raise
    ClusterError naming it. ``where`` prefixes the message (e.g. ``"TF_CONFIG"``)."""
    if not isinstance(name, str) or not _JOB_NAME.fullmatch(name):
        raise ClusterError(_where(
            where, f"job name {name!r} is not a name of letters, digits and underscores"))
    return name


def parse_address(address: object, *, where: str = "") -> tuple[str, int]:
    """Split ``"host:port"`` into ``(host, port)``, checking both; raise ClusterError
    naming the address otherwise. An IPv6 host is written in brackets: ``[::1]:2222``.

    >>> parse_address("localhost:2222")
    ('localhost', 2222)
    """
    if not isinstance(address, str):
        raise ClusterError(_where(
            where, f"address {address!r} is a {type(address).__name__}, not a 'host:port' "
                   "string"))
    host, colon, port = address.rpartition(":")
    if not colon or not host:
        raise ClusterError(_where(
            where, f"address {address!r} is not host:port (it needs a ':' and a port)"))
    if not _HOST.fullmatch(host):
        hint = " (write an IPv6 host in brackets: [::1]:2222)" if ":" in host else ""
        raise ClusterError(_where(where, f"address {address!r} has a bad host {host!r}{hint}"))
    if not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
        raise ClusterError(_where(
            where, f"address {address!r} has a bad port {port!r} (a port is 1..65535)"))
    return host, int(port)


def _task_index(key: object, where: str) -> int:
    # NOTE: bool is an int subclass; True as a task index is a mistake, not task 1.
    if isinstance(key, bool):
        raise ClusterError(_where(where, f"task index {key!r} is not an integer"))
    try:
        index = operator.index(key)
    except TypeError:
        raise ClusterError(_where(where, f"task index {key!r} is not an integer")) from None
    if index < 0:
        raise ClusterError(_where(where, f"task index {index} is negative"))
    return index


def _job_tasks(job: str, tasks: object, prefix: str) -> dict[int, str]:
    """The ``{index: address}`` of one job's entry, validated, in index order."""
    where = _where(prefix, f"job {job!r}")
    if isinstance(tasks, Mapping):
        found = {}
        for key, address in tasks.items():
            index = _task_index(key, where)
            if index in found:
                raise ClusterError(_where(where, f"task index {index} is given twice"))
            parse_address(address, where=f"{where} task {index}")
            found[index] = address
        return dict(sorted(found.items()))
    if isinstance(tasks, Sequence) and not isinstance(tasks, (str, bytes, bytearray)):
        for index, address in enumerate(tasks):
            parse_address(address, where=f"{where} task {index}")
        return dict(enumerate(tasks))
    hint = f"; for one task write [{tasks!r}]" if isinstance(tasks, str) else ""
    raise ClusterError(_where(
        where, f"tasks must be a list of addresses or a dict {{index: address}}, not "
               f"{type(tasks).__name__} {tasks!r}{hint}"))


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # NOTE: json.loads keeps the last of repeated keys; a spec that names a job or a
    # task twice is ambiguous, so it is refused rather than silently half-read.
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ClusterError(f"cluster spec JSON repeats the key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> object:
    raise ClusterError(f"cluster spec JSON has {name}, which is not JSON")


class ClusterSpec:
    """The jobs of a cluster and the address of each of their tasks (``tf.train.ClusterSpec``).

    >>> spec = ClusterSpec({"worker": {0: "w0:2222", 3: "w3:2222"}})
    >>> spec.task_indices("worker"), spec.job_tasks("worker")
    ([0, 3], ['w0:2222', None, None, 'w3:2222'])
    >>> spec.as_dict()
    {'worker': {0: 'w0:2222', 3: 'w3:2222'}}
    """

    __slots__ = ("_jobs",)

    def __init__(self, cluster: ClusterSpec | Mapping[str, object]) -> None:
        if isinstance(cluster, ClusterSpec):
            self._jobs: dict[str, dict[int, str]] = {
                job: dict(tasks) for job, tasks in cluster._jobs.items()}
            return
        if not isinstance(cluster, Mapping):
            raise TypeError(
                "ClusterSpec takes a dict {job: [address, ...]} or {job: {index: address}}, "
                f"or another ClusterSpec; got {type(cluster).__name__}")
        self._jobs = self._validated(cluster, "ClusterSpec")

    @staticmethod
    def _validated(cluster: Mapping[str, object], prefix: str) -> dict[str, dict[int, str]]:
        jobs = {}
        for job, tasks in cluster.items():
            check_job_name(job, where=prefix)
            jobs[job] = _job_tasks(job, tasks, prefix)
        return {job: jobs[job] for job in sorted(jobs)}

    # -- TF's queries -------------------------------------------------------------------

    @property
    def jobs(self) -> list[str]:
        """The job names, sorted."""
        return list(self._jobs)

    def _tasks_of(self, job: str) -> dict[int, str]:
        try:
            return self._jobs[job]
        except (KeyError, TypeError):
            raise ValueError(
                f"no job {job!r} in the cluster; it has jobs {self.jobs}") from None

    def num_tasks(self, job_name: str) -> int:
        """How many tasks ``job_name`` has (holes of a sparse job not counted)."""
        return len(self._tasks_of(job_name))

    def task_indices(self, job_name: str) -> list[int]:
        """The task indices of ``job_name``, ascending."""
        return list(self._tasks_of(job_name))

    def task_address(self, job_name: str, task_index: int) -> str:
        """The ``host:port`` of one task; ValueError naming the job and its tasks if absent."""
        tasks = self._tasks_of(job_name)
        try:
            return tasks[task_index]
        except (KeyError, TypeError):
            raise ValueError(
                f"no task {task_index!r} in job {job_name!r}; it has task indices "
                f"{list(tasks)}") from None

    def job_tasks(self, job_name: str) -> list[str | None]:
        """The addresses of ``job_name`` by index, None where a sparse job has a hole."""
        tasks = self._tasks_of(job_name)
        if not tasks:
            return []
        return [tasks.get(index) for index in range(max(tasks) + 1)]

    def as_dict(self) -> dict[str, list[str] | dict[int, str]]:
        """``{job: [address, ...]}`` for dense jobs, ``{job: {index: address}}`` for sparse
        ones (and for empty ones, as TF does)."""
        result: dict[str, list[str] | dict[int, str]] = {}
        for job, tasks in self._jobs.items():
            dense = bool(tasks) and max(tasks) + 1 == len(tasks)
            result[job] = list(tasks.values()) if dense else dict(tasks)
        return result

    def tasks(self) -> list[tuple[str, int, str]]:
        """Every ``(job, index, address)``, by job name then index: the same order in
        every process that holds an equal spec."""
        return [(job, index, address)
                for job, tasks in self._jobs.items() for index, address in tasks.items()]

    # -- the wire form ------------------------------------------------------------------

    def to_json(self) -> str:
        """The spec as compact JSON; sparse jobs become objects keyed by decimal strings."""
        payload = {job: tasks if isinstance(tasks, list)
                   else {str(index): address for index, address in tasks.items()}
                   for job, tasks in self.as_dict().items()}
        return json.dumps(payload, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ClusterSpec:
        """Read ``to_json``'s form back; anything else raises ClusterError saying what."""
        if isinstance(text, (bytes, bytearray, memoryview)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as err:
                raise ClusterError(f"cluster spec JSON is not UTF-8: {err}") from None
        if not isinstance(text, str):
            raise ClusterError(
                f"cluster spec JSON must be str or bytes, not {type(text).__name__}")
        if len(text) > MAX_JSON_CHARS:
            raise ClusterError(
                f"cluster spec JSON is {len(text)} characters, over the limit of "
                f"{MAX_JSON_CHARS}")
        try:
            value = json.loads(text, object_pairs_hook=_reject_duplicate_keys,
                               parse_constant=_reject_constant)
        except ClusterError:
            raise
        except (ValueError, RecursionError) as err:
            raise ClusterError(f"cluster spec JSON is malformed: {err}") from None
        return cls.from_json_value(value)

    @classmethod
    def from_json_value(cls, value: object, *, where: str = "cluster spec JSON") -> ClusterSpec:
        """Build a spec from decoded JSON: an object of jobs, each a list of address
        strings or an object from decimal index strings to addresses. ``where`` names
        the source in error messages (e.g. ``"TF_CONFIG cluster"``)."""
        if not isinstance(value, dict):
            raise ClusterError(
                f"{where} must be an object {{job: [address, ...]}}, not "
                f"{type(value).__name__}")
        cluster: dict[str, object] = {}
        for job, tasks in value.items():
            check_job_name(job, where=where)
            job_where = f"{where}: job {job!r}"
            if isinstance(tasks, list):
                cluster[job] = tasks
            elif isinstance(tasks, dict):
                sparse = {}
                for key, address in tasks.items():
                    if not _INDEX_KEY.fullmatch(key):
                        raise ClusterError(
                            f"{job_where}: task index {key!r} is not a decimal integer")
                    sparse[int(key)] = address
                cluster[job] = sparse
            else:
                raise ClusterError(
                    f"{job_where}: tasks must be a list or an object, not "
                    f"{type(tasks).__name__} {tasks!r}")
        spec = cls.__new__(cls)
        spec._jobs = cls._validated(cluster, where)
        return spec

    # -- value behaviour ----------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ClusterSpec):
            return self._jobs == other._jobs
        if isinstance(other, Mapping):
            # NOTE: TF's ClusterSpec compares equal to the dict it describes.
            try:
                return self._jobs == ClusterSpec(other)._jobs
            except (ValueError, TypeError):
                return False
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self.tasks()))

    def __bool__(self) -> bool:
        return bool(self._jobs)

    def __repr__(self) -> str:
        return f"ClusterSpec({self.as_dict()!r})"


def split_target(target: str) -> tuple[str, str]:
    """Split a session target into ``(scheme, "host:port")``.

    ``zmq://host:port`` and ``grpc://host:port`` keep their scheme (lower-cased); a bare
    ``host:port`` has the default scheme ``"zmq"``.

    >>> split_target("grpc://localhost:2222")
    ('grpc', 'localhost:2222')
    >>> split_target("10.0.0.5:2222")
    ('zmq', '10.0.0.5:2222')
    """
    if not isinstance(target, str):
        raise ClusterError(f"target {target!r} is a {type(target).__name__}, not a string")
    if not target:
        raise ClusterError("target is empty; a remote target is zmq://host:port")
    scheme, sep, rest = target.partition("://")
    if sep:
        scheme = scheme.lower()
        if scheme not in SCHEMES:
            raise ClusterError(
                f"target {target!r} has scheme {scheme!r}; known schemes are "
                f"{', '.join(s + '://' for s in SCHEMES)}")
    else:
        scheme, rest = SCHEMES[0], target
    parse_address(rest, where=f"target {target!r}")
    return scheme, rest
