"""Where the workers of a ring all-reduce listen (allreduce.py): each task of the job at
its own address in the cluster spec, with one port offset added for all of them.

One offset for every task, so that each worker derives the same ring from the one
cluster spec TF_CONFIG or Slurm gave it; an offset that lands on another task's
address is refused here, before anything binds.
"""

from __future__ import annotations

from .spec import ClusterError, ClusterSpec, parse_address

__all__ = ["ring_addresses", "listen_host", "connect_host"]


def ring_addresses(cluster: ClusterSpec, job: str, port_offset: int) -> list[str]:
    """Where each task of ``job`` listens for the ring: its address, port + offset.
    An address that is another task's is refused (the offset would collide)."""
    if isinstance(port_offset, bool) or not isinstance(port_offset, int):
        raise ClusterError(f"port_offset must be an integer, got {port_offset!r}")
    taken = {}
    for other_job, index, address in cluster.tasks():
        host, port = parse_address(address)
        taken[(connect_host(host), port)] = (other_job, index)
    out = []
    for index in cluster.task_indices(job):
        host, port = parse_address(cluster.task_address(job, index))
        if not 1 <= port + port_offset <= 65535:
            raise ClusterError(f"port_offset {port_offset} puts /job:{job}/task:{index}'s "
                               f"ring port at {port + port_offset}, outside 1..65535")
        other = taken.get((connect_host(host), port + port_offset))
        if other is not None and other != (job, index):
            raise ClusterError(
                f"/job:{job}/task:{index} would listen for the ring at "
                f"{host}:{port + port_offset}, which is /job:{other[0]}/task:{other[1]}'s "
                f"address: choose another port_offset (now {port_offset})")
        out.append(f"{host}:{port + port_offset}")
    return out


def listen_host(host: str) -> str:
    """What to bind for a task's host: loopback as 127.0.0.1, a numeric address as it
    is, a name on every interface (TensorFlow's 0.0.0.0)."""
    if host == "localhost" or host.startswith("127."):
        return "127.0.0.1"
    if host.replace(".", "").isdigit() or host.startswith("["):
        return host
    return "*"


def connect_host(host: str) -> str:
    return "127.0.0.1" if host == "localhost" else host
