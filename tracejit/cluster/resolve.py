"""Find this process's place in a cluster from how it was launched (TF's cluster resolvers).

``resolve()`` looks, in order, at

1. command-line flags, TF tutorial style: ``--job_name=worker --task_index=1
   --ps_hosts=h:p,h:p --worker_hosts=h:p,h:p`` (also ``--chief_hosts``, ``--master_hosts``,
   ``--evaluator_hosts``; ``--x v`` works as ``--x=v``; other flags are ignored);
2. the ``TF_CONFIG`` environment variable (JSON with ``cluster`` and ``task``);
3. a Slurm step (``SLURM_PROCID``, ``SLURM_NTASKS``, the node list, tasks per node);
4. an MPI launch (``OMPI_COMM_WORLD_RANK``/``_SIZE`` or ``PMI_RANK``/``PMI_SIZE``).

The first that describes a cluster wins. ``--job_name``/``--task_index`` without host
flags name this task within a cluster found by the later sources. Slurm and MPI give
ranks, not jobs: ``jobs={"ps": 1, "worker": 3}`` lays ranks out over jobs in order.

>>> info = resolve(["--job_name=worker", "--task_index=1",
...                 "--ps_hosts=ps0:2222", "--worker_hosts=w0:2222,w1:2222"], environ={})
>>> info.job_name, info.task_index, info.address
('worker', 1, 'w1:2222')
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tracejit.cluster.hostlist import expand_hostlist, expand_tasks_per_node
from tracejit.cluster.spec import ClusterError, ClusterSpec, check_job_name, parse_address

__all__ = ["ClusterInfo", "expand_hostlist", "expand_tasks_per_node", "resolve"]

DEFAULT_PORT_BASE = 8888
# The --<job>_hosts flags read; NOTE: a fixed set, so a script's own flag that happens
# to end in _hosts (--allowed_hosts) is not mistaken for a job.
HOST_FLAGS = {"ps_hosts": "ps", "worker_hosts": "worker", "chief_hosts": "chief",
              "master_hosts": "master", "evaluator_hosts": "evaluator"}
_MPI_VARIABLES = (("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("PMI_RANK", "PMI_SIZE"))
MPI_HOSTS_VARIABLE = "TRACEJIT_MPI_HOSTS"

_NOTHING_FOUND = """\
found no cluster to join. Describe one in any of four ways:
  1. flags: --job_name=worker --task_index=0 --ps_hosts=host:port,... \
--worker_hosts=host:port,...
  2. TF_CONFIG='{"cluster": {"ps": ["host:port"], "worker": ["host:port"]}, \
"task": {"type": "worker", "index": 0}}'
  3. a Slurm step (srun sets SLURM_PROCID, SLURM_NTASKS, SLURM_STEP_NODELIST, \
SLURM_TASKS_PER_NODE)
  4. an MPI launch (mpirun sets OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE or \
PMI_RANK/PMI_SIZE; TRACEJIT_MPI_HOSTS lists each rank's host)"""


@dataclass(frozen=True)
class ClusterInfo:
    """The cluster and which task of it this process is. ``source`` says where they
    were found: ``"flags"``, ``"TF_CONFIG"``, ``"Slurm"`` or ``"MPI"``, with
    ``" (task from flags)"`` when --job_name/--task_index chose the task."""

    cluster: ClusterSpec
    job_name: str
    task_index: int
    source: str

    @property
    def address(self) -> str:
        """This task's ``host:port`` (ValueError for a TF evaluator outside the cluster)."""
        return self.cluster.task_address(self.job_name, self.task_index)


@dataclass(frozen=True)
class _Found:
    """What one source said; ``job``/``index`` are None where it names no task."""

    cluster: ClusterSpec
    job: str | None
    index: int | None
    source: str
    job_from: str = ""
    index_from: str = ""


@dataclass
class _Flags:
    job_name: str | None = None
    task_index: int | None = None
    hosts: dict[str, list[str]] | None = None


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _decimal(value: str, what: str, *, minimum: int) -> int:
    text = value.strip()
    if not text.isascii() or not text.isdigit() or int(text) < minimum:
        kind = "a positive integer" if minimum else "a non-negative integer"
        raise ClusterError(f"{what}={_shorten(value)!r} is not {kind}")
    return int(text)


# -- 1. flags -------------------------------------------------------------------------


def _read_flags(argv: Sequence[str]) -> _Flags:
    values: dict[str, str] = {}
    wanted = {"job_name", "task_index", *HOST_FLAGS}
    position = 0
    while position < len(argv):
        arg = argv[position]
        position += 1
        if arg == "--":
            break     # NOTE: what follows "--" is positional by convention
        if not arg.startswith("-"):
            continue
        body = arg[2:] if arg.startswith("--") else arg[1:]
        name, equals, value = body.partition("=")
        if name not in wanted:
            continue
        if not equals:
            following = argv[position] if position < len(argv) else "-"
            # NOTE: "-1" is a (bad) value to report as such, not a missing one.
            if following.startswith("-") and not following[1:].isdigit():
                raise ClusterError(f"flag {arg} has no value; write {arg}=VALUE")
            value = argv[position]
            position += 1
        values[name] = value     # NOTE: the last of repeated flags wins, as with absl
    flags = _Flags()
    if "job_name" in values:
        flags.job_name = check_job_name(values["job_name"], where="flag --job_name")
    if "task_index" in values:
        flags.task_index = _decimal(values["task_index"], "--task_index", minimum=0)
    for flag, job in HOST_FLAGS.items():
        if flag in values:
            addresses = [item.strip() for item in values[flag].split(",")]
            for address in addresses:
                if not address:
                    raise ClusterError(
                        f"flag --{flag}={values[flag]!r} has an empty address; it is a "
                        "comma-separated list of host:port")
                parse_address(address, where=f"flag --{flag}")
            flags.hosts = {**(flags.hosts or {}), job: addresses}
    return flags


# -- 2. TF_CONFIG ---------------------------------------------------------------------


def _from_tf_config(environ: Mapping[str, str]) -> _Found | None:
    text = environ.get("TF_CONFIG")
    if text is None or not text.strip():
        return None
    try:
        config = json.loads(text)
    except ValueError as err:
        raise ClusterError(f"TF_CONFIG is not valid JSON ({err}): {_shorten(text)!r}") from None
    if not isinstance(config, dict):
        raise ClusterError(
            f"TF_CONFIG must be a JSON object with 'cluster' and 'task', not "
            f"{type(config).__name__}: {_shorten(text)!r}")
    if not config.get("cluster"):
        return None   # NOTE: TF reads a TF_CONFIG without a cluster as no cluster
    cluster = ClusterSpec.from_json_value(config["cluster"], where="TF_CONFIG cluster")
    task = config.get("task")
    if not task:
        return _Found(cluster, None, None, "TF_CONFIG")
    if not isinstance(task, dict):
        raise ClusterError(
            f"TF_CONFIG task must be an object {{'type': job, 'index': n}}, not {task!r}")
    job = check_job_name(task.get("type"), where="TF_CONFIG task.type")
    index = task.get("index", 0)      # NOTE: TF's RunConfig defaults the index to 0
    if isinstance(index, str):
        index = _decimal(index, "TF_CONFIG task.index", minimum=0)
    elif isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ClusterError(f"TF_CONFIG task.index={index!r} is not a non-negative integer")
    return _Found(cluster, job, index, "TF_CONFIG", "TF_CONFIG task.type",
                  "TF_CONFIG task.index")


# -- 3. and 4. launchers that give ranks ----------------------------------------------


def _layout(jobs: Mapping[str, int | None] | None, ntasks: int,
            what: str) -> list[tuple[str, int]]:
    """``(job, count)`` in rank order; a count of None takes the tasks left over."""
    if jobs is None:
        # NOTE: a lone task has nobody to serve parameters to; it is a worker.
        return [("worker", 1)] if ntasks == 1 else [("ps", 1), ("worker", ntasks - 1)]
    fixed = sum(count for count in jobs.values() if count is not None)
    rest = ntasks - fixed
    if rest < 0 or (rest and None not in jobs.values()):
        raise ClusterError(
            f"jobs={dict(jobs)!r} lays out {fixed} tasks but {what}={ntasks}")
    layout = [(job, rest if count is None else count) for job, count in jobs.items()]
    return [(job, count) for job, count in layout if count]


def _check_jobs(jobs: object) -> Mapping[str, int | None] | None:
    if jobs is None:
        return None
    if not isinstance(jobs, Mapping) or not jobs:
        raise ClusterError(f"jobs={jobs!r} must be a non-empty dict {{job: count}}")
    for job, count in jobs.items():
        check_job_name(job, where="jobs=")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                                  or count < 0):
            raise ClusterError(
                f"jobs={dict(jobs)!r}: job {job!r} has count {count!r}; a count is a "
                "non-negative integer, or None for the tasks left over")
    if sum(count is None for count in jobs.values()) > 1:
        raise ClusterError(f"jobs={dict(jobs)!r}: only one job can take the rest (None)")
    return jobs


def _with_ports(hosts: Sequence[str], port_base: int, what: str) -> list[str]:
    """``host:port`` for each task; tasks on one host get consecutive ports."""
    seen: dict[str, int] = {}
    addresses = []
    for host in hosts:
        port = port_base + seen.get(host, 0)
        seen[host] = seen.get(host, 0) + 1
        if port > 65535:
            raise ClusterError(
                f"{what}: host {host!r} has {seen[host]} tasks; from port_base={port_base} "
                "their ports pass 65535")
        address = f"{host}:{port}"
        parse_address(address, where=what)
        addresses.append(address)
    return addresses


def _assign(layout: list[tuple[str, int]], addresses: list[str], rank: int,
            source: str, rank_from: str) -> _Found:
    cluster: dict[str, list[str]] = {}
    start = 0
    job, index = "", 0
    for name, count in layout:
        cluster[name] = addresses[start:start + count]
        if start <= rank < start + count:
            job, index = name, rank - start
        start += count
    return _Found(ClusterSpec(cluster), job, index, source, rank_from, rank_from)


def _mpi_rank(environ: Mapping[str, str]) -> tuple[int, int, str, str] | None:
    """``(rank, size, rank variable, size variable)`` of an MPI launch, or None."""
    for rank_var, size_var in _MPI_VARIABLES:
        if rank_var in environ:
            rank = _decimal(environ[rank_var], rank_var, minimum=0)
            if size_var not in environ:
                raise ClusterError(f"{rank_var} is set but {size_var} is not")
            size = _decimal(environ[size_var], size_var, minimum=1)
            if rank >= size:
                raise ClusterError(f"{rank_var}={rank} is not below {size_var}={size}")
            return rank, size, rank_var, size_var
    return None


def _first(environ: Mapping[str, str], names: Sequence[str]) -> str | None:
    return next((name for name in names if name in environ), None)


def _from_slurm(environ: Mapping[str, str], jobs, port_base: int) -> _Found | None:
    if "SLURM_PROCID" not in environ:
        return None
    rank = _decimal(environ["SLURM_PROCID"], "SLURM_PROCID", minimum=0)
    # NOTE: the step's variables describe this srun; the job's describe the allocation,
    # which can be larger. Prefer the step's where both are set.
    ntasks_var = _first(environ, ("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_NPROCS"))
    nodes_var = _first(environ, ("SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"))
    if ntasks_var is None or nodes_var is None:
        missing = "SLURM_NTASKS" if ntasks_var is None else "SLURM_STEP_NODELIST"
        raise ClusterError(
            f"SLURM_PROCID is set but {missing} is not: run the program under srun "
            "(not directly in the batch script), or describe the cluster another way")
    ntasks = _decimal(environ[ntasks_var], ntasks_var, minimum=1)
    mpi = _mpi_rank(environ)
    if mpi is not None and (mpi[0], mpi[1]) != (rank, ntasks):
        # NOTE: mpirun inside an allocation starts its daemons with srun, so the ranks
        # inherit the daemon's SLURM_PROCID; MPI's own rank is the one that is true.
        return None
    if rank >= ntasks:
        raise ClusterError(f"SLURM_PROCID={rank} is not below {ntasks_var}={ntasks}")
    nodes = expand_hostlist(environ[nodes_var], what=nodes_var)
    per_node_var = _first(environ, ("SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"))
    if per_node_var is not None:
        per_node = expand_tasks_per_node(environ[per_node_var], what=per_node_var)
        if len(per_node) != len(nodes):
            raise ClusterError(
                f"{per_node_var}={environ[per_node_var]!r} gives {len(per_node)} nodes but "
                f"{nodes_var}={_shorten(environ[nodes_var])!r} has {len(nodes)}")
        if sum(per_node) != ntasks:
            raise ClusterError(
                f"{per_node_var}={environ[per_node_var]!r} adds up to {sum(per_node)} "
                f"tasks but {ntasks_var}={ntasks}")
    elif ntasks % len(nodes) == 0:
        per_node = [ntasks // len(nodes)] * len(nodes)
    else:
        raise ClusterError(
            f"SLURM_TASKS_PER_NODE is not set and {ntasks_var}={ntasks} tasks do not "
            f"spread evenly over the {len(nodes)} nodes of {nodes_var}")
    # NOTE: Slurm's default (block) distribution puts consecutive ranks on one node.
    hosts = [node for node, count in zip(nodes, per_node, strict=True) for _ in range(count)]
    addresses = _with_ports(hosts, port_base, nodes_var)
    return _assign(_layout(jobs, ntasks, ntasks_var), addresses, rank, "Slurm", "SLURM_PROCID")


def _mpi_hosts(text: str, size: int, port_base: int) -> list[str]:
    entries = [entry.strip() for entry in text.split(",")]
    if len(entries) != size:
        raise ClusterError(
            f"{MPI_HOSTS_VARIABLE}={_shorten(text)!r} lists {len(entries)} hosts but the "
            f"MPI launch has {size} ranks; list one host (or host:port) per rank")
    addresses: list[str | None] = []
    portless: list[str] = []
    for entry in entries:
        if not entry:
            raise ClusterError(f"{MPI_HOSTS_VARIABLE}={_shorten(text)!r} has an empty host")
        if ":" in entry and not entry.endswith("]"):
            parse_address(entry, where=MPI_HOSTS_VARIABLE)
            addresses.append(entry)
        else:
            addresses.append(None)
            portless.append(entry)
    numbered = iter(_with_ports(portless, port_base, MPI_HOSTS_VARIABLE))
    result = [address if address is not None else next(numbered) for address in addresses]
    repeated = sorted({address for address in result if result.count(address) > 1})
    if repeated:
        raise ClusterError(
            f"{MPI_HOSTS_VARIABLE} gives two ranks the same address {repeated[0]!r}")
    return result


def _from_mpi(environ: Mapping[str, str], jobs, port_base: int) -> _Found | None:
    mpi = _mpi_rank(environ)
    if mpi is None:
        return None
    rank, size, rank_var, size_var = mpi
    if MPI_HOSTS_VARIABLE in environ:
        addresses = _mpi_hosts(environ[MPI_HOSTS_VARIABLE], size, port_base)
    else:
        # NOTE: without a host list all ranks are taken to share this machine.
        addresses = _with_ports(["127.0.0.1"] * size, port_base, "MPI")
    return _assign(_layout(jobs, size, size_var), addresses, rank, "MPI", rank_var)


# -- the resolver ---------------------------------------------------------------------


def _named_task(found: _Found, flags: _Flags) -> tuple[str, int, str, str, str]:
    """(job, index, where the job came from, where the index came from, source)."""
    job, index = found.job, found.index
    job_from, index_from, source = found.job_from, found.index_from, found.source
    if flags.job_name is not None or flags.task_index is not None:
        if flags.hosts is None:
            source += " (task from flags)"
        if flags.job_name is not None:
            job, job_from = flags.job_name, "--job_name"
            # NOTE: the TF tutorial's --task_index defaults to 0; another source's index
            # belongs to its own job, not necessarily to this one.
            index, index_from = 0, "--task_index (default 0)"
        if flags.task_index is not None:
            index, index_from = flags.task_index, "--task_index"
    if job is None:
        fix = ("pass --job_name (and --task_index)" if flags.hosts is not None else
               "give TF_CONFIG a 'task', or pass --job_name and --task_index")
        raise ClusterError(
            f"the cluster from {found.source} (jobs {found.cluster.jobs}) does not say "
            f"which task this process is: {fix}")
    assert index is not None
    return job, index, job_from, index_from, source


def resolve(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None, *,
            jobs: Mapping[str, int | None] | None = None,
            port_base: int = DEFAULT_PORT_BASE) -> ClusterInfo:
    """Find the cluster and this process's task in it (see the module's docstring).

    ``argv`` defaults to ``sys.argv[1:]`` and ``environ`` to ``os.environ``; nothing else
    is read. ``jobs`` lays Slurm/MPI ranks out over jobs in order (default: one ``ps``,
    the rest ``worker``; one task alone is a ``worker``); one job may have count None to
    take the rest. ``port_base`` is the first port on each node for Slurm/MPI tasks.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    environ = os.environ if environ is None else environ
    if isinstance(port_base, bool) or not isinstance(port_base, int) \
            or not 1 <= port_base <= 65535:
        raise ClusterError(f"port_base={port_base!r} is not a port (1..65535)")
    jobs = _check_jobs(jobs)
    flags = _read_flags(argv)
    found = None
    if flags.hosts is not None:
        found = _Found(ClusterSpec(flags.hosts), None, None, "flags")
    found = (found or _from_tf_config(environ) or _from_slurm(environ, jobs, port_base)
             or _from_mpi(environ, jobs, port_base))
    if found is None:
        hint = ""
        if flags.job_name is not None or flags.task_index is not None:
            hint = ("\n(--job_name/--task_index name a task, but no source gave the hosts; "
                    "add --ps_hosts/--worker_hosts)")
        raise ClusterError(_NOTHING_FOUND + hint)
    job, index, job_from, index_from, source = _named_task(found, flags)
    cluster = found.cluster
    if job not in cluster.jobs:
        # NOTE: TF's evaluator runs beside the cluster; TF_CONFIG leaves it out of it.
        if job != "evaluator":
            raise ClusterError(
                f"{job_from}={job!r} is not a job of the cluster from {found.source}; it "
                f"has jobs {cluster.jobs}")
    elif index not in cluster.task_indices(job):
        raise ClusterError(
            f"{index_from}={index} is out of range: job {job!r} of the cluster from "
            f"{found.source} has task indices {cluster.task_indices(job)}")
    return ClusterInfo(cluster, job, index, source)
