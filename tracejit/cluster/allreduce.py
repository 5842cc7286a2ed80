"""Ring all-reduce between worker processes: synchronous data parallelism without
parameter servers, as PyTorch DDP and Horovod do it (docs/distributed.md).

The workers of one job form a ring in task-index order. Each binds a ZeroMQ PULL
socket and connects a PUSH socket to the next worker's: every message goes one way,
to the right, and is never answered. ``allreduce(arrays)`` cuts the arrays into
buckets (buckets.py: by dtype, reverse list order, at most ``bucket_bytes`` each) and
each bucket into ``n`` chunks, then runs around the ring

* a **reduce-scatter**: ``n - 1`` steps; at step ``s`` the worker at ring position
  ``p`` sends chunk ``p - s`` to the right and adds the chunk ``p - s - 1`` that came
  from the left to its own, so after the last step it holds chunk ``p + 1`` summed
  over every worker (divided by ``n`` there once, for a mean);
* an **all-gather**: ``n - 1`` more steps passing the finished chunks on.

Each worker sends ``2 (n - 1) / n`` times the payload, the minimum for an all-reduce.
Every chunk is summed in the same fixed order whatever the timing (buckets.py), so
every worker ends with the same bits.

**Pipelining.** Up to ``window`` buckets are in the ring at once (None: all). One
thread polls the PULL socket and handles whichever bucket's chunk arrives next: adds
it (NumPy, which releases the GIL) and sends the next one, while ZeroMQ's I/O thread
moves the other buckets' bytes in and out of the kernel. Sends never copy (the chunk
is a view of the flat buffer); before returning, the ring waits until ZeroMQ is done
with them, since the results it returns are views of that buffer.

**Where the ring listens.** At the job's task addresses in ``cluster`` with
``port_offset`` added to each port. A worker of a ps-free job serves nothing else, so
the default offset 0 uses its own address; a script that also starts a
``tf.train.Server`` there passes an offset. It is one offset for all tasks so that
every worker derives the same ring from the one cluster spec TF_CONFIG or Slurm gave
it; an offset that lands on another task's address is refused.

**Failures.** Every wait has a deadline (``timeout_ms``, default the
``operation_timeout`` in force, see remote.py); past it a StepTimeout names the worker
waited for, its address, and the bucket, ring step and chunk. The first collective
starts with a hello passed around the ring, so a worker that never started is named
as such. Each message carries the collective's step id: messages of an earlier,
failed step are dropped as late; one of a later step, another bucket or chunk than
expected, another shape, dtype or list of arrays is an AllReduceError.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import zmq

from ..runtime.partitions import StepTimeout
from .buckets import AllReduceError, BucketPlan, check_bucket_bytes, checked_arrays, chunk_bounds
from .remote import current_timeout_ms
from .ring_addresses import connect_host, listen_host, ring_addresses
from .security import Keys, is_loopback, secure_client, secure_server
from .spec import ClusterError, ClusterSpec, parse_address
from .wire import Kind, Message, WireError, decode, encode

__all__ = ["RingAllReduce", "AllReduceError", "DEFAULT_BUCKET_BYTES", "DEFAULT_WINDOW"]

DEFAULT_BUCKET_BYTES = 4 << 20
# Buckets in flight at once (None: all). NOTE: on the 2-core host it was measured on
# (docs/distributed.md) no window beat another beyond the noise, the CPUs being busy
# with the copies anyway; all of them lets the transfers overlap wherever a core is free.
DEFAULT_WINDOW: int | None = None


class RingAllReduce:
    """``RingAllReduce(cluster, job="worker", rank=None, *, bucket_bytes=4 MiB,
    port_offset=0, window=None, timeout_ms=None, keys=None)``: this process's place in
    the ring of ``job``'s tasks; ``rank`` is its task index.

    ``keys`` (``Keys.load(DIR, "server")`` on every worker) makes the ring use CURVE,
    required off loopback: a worker listens with the servers' key pair and admits
    clients on its allow-list or holding that same pair.
    """

    def __init__(self, cluster: ClusterSpec | dict, job: str = "worker",
                 rank: int | None = None, *, bucket_bytes: int = DEFAULT_BUCKET_BYTES,
                 port_offset: int = 0, window: int | None = DEFAULT_WINDOW,
                 timeout_ms: int | None = None, keys: Keys | None = None):
        self.cluster = ClusterSpec(cluster)
        if job not in self.cluster.jobs:
            raise ClusterError(f"job {job!r} is not a job of the cluster; it has "
                               f"{self.cluster.jobs}")
        self.job = job
        self.ranks = self.cluster.task_indices(job)
        if rank is None and len(self.ranks) == 1:
            rank = self.ranks[0]
        if isinstance(rank, bool) or not isinstance(rank, int) or rank not in self.ranks:
            raise ClusterError(f"rank {rank!r} is not a task of job {job!r}, which has tasks "
                               f"{self.ranks}: pass rank=<this process's task index>")
        self.rank = rank
        self.size = len(self.ranks)
        self.position = self.ranks.index(rank)
        self.bucket_bytes = check_bucket_bytes(bucket_bytes)
        if window is not None and (isinstance(window, bool) or not isinstance(window, int)
                                   or window < 1):
            raise ValueError(f"window must be a positive number of buckets or None (all), "
                             f"got {window!r}")
        self.window = window
        self.timeout_ms = timeout_ms
        self.addresses = ring_addresses(self.cluster, job, port_offset)
        self.bytes_sent = 0             # every frame's bytes, headers included
        self.bytes_received = 0
        self.messages_sent = 0
        self.late_messages = 0          # dropped: they belonged to an earlier, failed step
        self.late_bytes = 0             # their bytes (counted in bytes_received too)
        self._step = 1                  # step 0 is the hello
        self._joined = self.size == 1
        self._broken: str | None = None
        self._plans: dict[tuple, BucketPlan] = {}
        self._trackers: list[zmq.MessageTracker] = []
        self._pull = self._push = None
        if self.size > 1:
            self._open(keys)

    # ---- sockets -----------------------------------------------------------------------------

    def _open(self, keys: Keys | None) -> None:
        here = self.addresses[self.position]
        host, port = parse_address(here)
        if keys is None and not is_loopback(host):
            raise ClusterError(
                f"refusing to listen for the ring at {here} without CURVE keys: anyone who "
                "can reach the port could send gradients into the training. Pass "
                "keys=tracejit.cluster.Keys.load(DIR, 'server') or use 127.0.0.1")
        context = zmq.Context.instance()
        pull = context.socket(zmq.PULL)
        push = context.socket(zmq.PUSH)
        try:
            for sock in (pull, push):
                sock.setsockopt(zmq.LINGER, 0)
                # NOTE: the window bounds what is queued; a high-water mark could only
                # make a send block in the middle of a step
                sock.setsockopt(zmq.SNDHWM, 0)
                sock.setsockopt(zmq.RCVHWM, 0)
            if keys is not None:
                ring_keys = Keys(keys.public, keys.secret, keys.server_public,
                                 [*keys.allowed, keys.public])
                secure_server(pull, ring_keys, context)
                secure_client(push, Keys(keys.public, keys.secret,
                                         keys.server_public or keys.public))
            pull.bind(f"tcp://{listen_host(host)}:{port}")
            right_host, right_port = parse_address(self.addresses[self._right])
            push.connect(f"tcp://{connect_host(right_host)}:{right_port}")
        except zmq.ZMQError as exc:
            pull.close(0)
            push.close(0)
            raise ClusterError(f"{self.name(self.position)}: cannot listen for the ring at "
                               f"{here}: {exc} (is another process, or a tf.train.Server, "
                               "using that port? then pass port_offset=...)") from None
        self._pull, self._push = pull, push
        self._poller = zmq.Poller()
        self._poller.register(pull, zmq.POLLIN)

    def close(self) -> None:
        """Close the sockets (messages not yet sent are dropped)."""
        for sock in (self._pull, self._push):
            if sock is not None:
                sock.close(0)
        self._pull = self._push = None
        self._trackers.clear()
        self._broken = self._broken or "it was closed"

    def __enter__(self) -> RingAllReduce:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<RingAllReduce /job:{self.job}/task:{self.rank}, {self.size} workers, "
                f"{self.bucket_bytes} bytes a bucket>")

    @property
    def _left(self) -> int:
        return (self.position - 1) % self.size

    @property
    def _right(self) -> int:
        return (self.position + 1) % self.size

    def name(self, position: int) -> str:
        """The worker at ring ``position``: its task and ring address."""
        return f"/job:{self.job}/task:{self.ranks[position]} ({self.addresses[position]})"

    # ---- the collectives ---------------------------------------------------------------------

    def allreduce(self, arrays: Sequence[np.ndarray], average: bool = True) -> list[np.ndarray]:
        """The elementwise sum over the workers of each array (the mean, with
        ``average``), the same bits on every worker. Every worker passes arrays of the
        same shapes and dtypes, in the same order."""
        arrays = checked_arrays(arrays, average, "allreduce")
        if self.size == 1:
            return [a.copy() for a in arrays]
        timeout_ms, step = self._begin()
        plan = self._plan(arrays)
        # NOTE: no copy of the inputs first: every element of the result is written
        # once, from a received chunk plus this worker's own (read in place)
        buffers = plan.empty()
        self._reduce(plan, [a.reshape(-1) for a in arrays], buffers, average, step,
                     timeout_ms)
        self._drain(timeout_ms, "all-reduce")
        return plan.unpack(buffers)

    def broadcast(self, arrays: Sequence[np.ndarray], root: int = 0) -> list[np.ndarray]:
        """Worker ``root``'s arrays on every worker (the others pass arrays of the same
        shapes and dtypes, whose values are not used), passed along the ring bucket by
        bucket: each worker forwards a bucket while the next one arrives."""
        arrays = checked_arrays(arrays, False, "broadcast", allow_bool=True)
        if isinstance(root, bool) or root not in self.ranks:
            raise ClusterError(f"broadcast root {root!r} is not a task of job {self.job!r}, "
                               f"which has tasks {self.ranks}")
        if self.size == 1:
            return [a.copy() for a in arrays]
        timeout_ms, step = self._begin()
        plan = self._plan(arrays)
        origin = self.ranks.index(root)
        me = self.position
        buffers = plan.pack(arrays) if me == origin else plan.empty()
        forward = self._right != origin
        for bucket in plan.buckets:
            view = plan.bucket_view(buffers, bucket)
            if me != origin:
                message = self._receive(step, time.monotonic() + timeout_ms / 1000,
                                        lambda b=bucket: self._late_broadcast(
                                            b, origin, step, timeout_ms))
                self._check(message, plan, "bcast", b=bucket.index, s=0, c=0, root=origin)
                view[...] = self._chunk_of(message, bucket, view.size)
            if forward:
                self._send(step, "bcast", plan, bucket.index, 0, 0, view, root=origin)
        self._drain(timeout_ms, "broadcast")
        return plan.unpack(buffers)

    # ---- steps -------------------------------------------------------------------------------

    def _begin(self) -> tuple[int, int]:
        """The deadline and step id of a new collective (joining the ring first)."""
        if self._broken is not None:
            raise AllReduceError(f"{self.name(self.position)}: the ring cannot be used: "
                                 f"{self._broken}; make a new RingAllReduce")
        timeout_ms = int(self.timeout_ms or current_timeout_ms())
        if not self._joined:
            try:
                self._join(timeout_ms)
            except Exception as exc:
                self._broken = f"it failed to form: {exc}"
                raise
        step = self._step
        self._step += 1
        return timeout_ms, step

    def _plan(self, arrays: Sequence[np.ndarray]) -> BucketPlan:
        key = tuple((a.shape, a.dtype.str) for a in arrays)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) > 16:
                self._plans.clear()
            plan = self._plans[key] = BucketPlan.of(arrays, self.bucket_bytes)
        return plan

    def _join(self, timeout_ms: int) -> None:
        """Pass every worker's hello around the ring, all within one deadline. The
        hellos from ring positions p - 1, p - 2, ... arrive in that order, so the first
        one missing names the nearest worker behind this one that has not started."""
        deadline = time.monotonic() + timeout_ms / 1000
        hello = Message(Kind.RING_HELLO, {"origin": self.position, "size": self.size,
                                          "job": self.job, "bucket_bytes": self.bucket_bytes})
        arrived: list[int] = []
        for t in range(self.size - 1):
            self._post(encode(hello))
            origin = (self.position - 1 - t) % self.size

            def waiting(origin=origin) -> str:
                relayed = (f"; the hellos of {[self.ranks[p] for p in arrived]} arrived, "
                           f"relayed by {self.name(self._left)}") if arrived else ""
                return (f"{self.name(self.position)}: {self.name(origin)} has not joined "
                        f"the ring of {self.size} workers of job {self.job!r} within "
                        f"{timeout_ms} ms{relayed}: is it running?")

            hello = self._receive(0, deadline, waiting, Kind.RING_HELLO)
            text = hello.text
            for field, expected in (("origin", origin), ("size", self.size),
                                    ("job", self.job), ("bucket_bytes", self.bucket_bytes)):
                if text.get(field) != expected:
                    raise AllReduceError(
                        f"{self.name(self.position)}: the hello of {self.name(origin)} says "
                        f"{field}={text.get(field)!r}, this worker has {expected!r}: every "
                        "worker of the ring must be made with the same cluster, job and "
                        "bucket_bytes")
            arrived.append(origin)
        self._drain(timeout_ms, "hello")
        self._joined = True

    def _reduce(self, plan: BucketPlan, flat: list[np.ndarray], buffers: list[np.ndarray],
                average: bool, step: int, timeout_ms: int) -> None:
        """Reduce-scatter then all-gather every bucket of ``flat`` (the arrays, 1-d)
        into ``buffers``, up to ``window`` buckets at a time."""
        n, me = self.size, self.position
        last = 2 * (n - 1)
        count = len(plan.buckets)
        views = [plan.bucket_view(buffers, b) for b in plan.buckets]
        bounds = [chunk_bounds(b.size, n) for b in plan.buckets]
        pieces = plan.chunk_pieces(n)
        got = [0] * count               # ring steps received, per bucket

        def send(b: int, s: int) -> None:
            c = (me - s) % n if s < n - 1 else (me + 1 - (s - n + 1)) % n
            lo, hi = bounds[b][c]
            data = views[b][lo:hi]
            if s == 0:
                # our own chunk as it is: a view of the array when it lies in one,
                # else gathered into its place in the result (written again only by
                # the all-gather, after the right neighbour has used this)
                parts = pieces[b][c]
                if len(parts) == 1:
                    i, start, stop, _ = parts[0]
                    data = flat[i][start:stop]
                else:
                    for i, start, stop, at in parts:
                        data[at:at + stop - start] = flat[i][start:stop]
            self._send(step, "sum", plan, b, s, c, data)

        started = min(count, self.window or count)
        for b in range(started):
            send(b, 0)
        done = 0
        while done < count:
            message = self._receive(step, time.monotonic() + timeout_ms / 1000,
                                    lambda: self._late_chunk(plan, got, bounds, step,
                                                             timeout_ms))
            b = message.text.get("b")
            if not isinstance(b, int) or not 0 <= b < count or got[b] >= last:
                self._mismatch(message, f"bucket {b!r}", "a bucket of this step "
                               f"still in the ring (0..{count - 1})")
            s = got[b]
            c = (me - s - 1) % n if s < n - 1 else (me - (s - n + 1)) % n
            self._check(message, plan, "sum", b=b, s=s, c=c)
            lo, hi = bounds[b][c]
            chunk = views[b][lo:hi]
            data = self._chunk_of(message, plan.buckets[b], hi - lo)
            if s < n - 1:
                # NOTE: a + b == b + a exactly, so adding ours to the partial sum keeps
                # the chunk's order: ring order from its first worker (buckets.py)
                for i, start, stop, at in pieces[b][c]:
                    end = at + stop - start
                    np.add(data[at:end], flat[i][start:stop], out=chunk[at:end])
                if s == n - 2 and average:
                    np.divide(chunk, n, out=chunk)
            else:
                chunk[...] = data
            got[b] = s + 1
            if s + 1 < last:
                send(b, s + 1)
            else:
                done += 1
                if started < count:
                    send(started, 0)
                    started += 1

    # ---- messages ----------------------------------------------------------------------------

    def _send(self, step: int, op: str, plan: BucketPlan, b: int, s: int, c: int,
              data: np.ndarray, **extra) -> None:
        text = {"op": op, "from": self.position, "b": b, "s": s, "c": c,
                "sig": plan.signature, **extra}
        self._post(encode(Message(Kind.RING_DATA, text, [("chunk", data)], step=step)))

    def _post(self, frames: list) -> None:
        # NOTE: the data frame is a view of our buffer (zero-copy); the tracker of the
        # last frame says when ZeroMQ no longer reads it
        tracker = self._push.send_multipart(frames, copy=False, track=True)
        self._trackers.append(tracker)
        self.messages_sent += 1
        self.bytes_sent += sum(len(f) if isinstance(f, bytes) else f.nbytes for f in frames)

    def _drain(self, timeout_ms: int, what: str) -> None:
        """Wait until ZeroMQ has handed every message sent to the kernel."""
        deadline = time.monotonic() + timeout_ms / 1000
        trackers, self._trackers = self._trackers, []
        for tracker in trackers:
            try:
                tracker.wait(max(0.0, deadline - time.monotonic()))
            except zmq.NotDone:
                raise StepTimeout(
                    f"{self.name(self.position)}: {self.name(self._right)} did not take this "
                    f"worker's {what} messages within {timeout_ms} ms: is it running?"
                ) from None

    def _receive(self, step: int, deadline: float, waiting: Callable[[], str],
                 kind: Kind = Kind.RING_DATA) -> Message:
        """The next message of step ``step`` from the left; late ones are dropped."""
        while True:
            left = deadline - time.monotonic()
            frames = self._next_frames(max(0, math.ceil(left * 1000))) if left > 0 else None
            if frames is None:
                raise StepTimeout(waiting())
            size = sum(len(f.buffer) for f in frames)
            self.bytes_received += size
            try:
                message = decode(frames)
            except WireError as exc:
                raise AllReduceError(f"{self.name(self.position)}: a malformed message "
                                     f"from {self.name(self._left)}: {exc.bare_message}") \
                    from None
            if message.step < step:
                self.late_messages += 1
                self.late_bytes += size
                continue
            if message.step > step or message.kind is not kind:
                raise AllReduceError(
                    f"{self.name(self.position)}: {self.name(self._left)} sent a "
                    f"{message.kind.name} of step {message.step} while this worker is at "
                    f"step {step} ({kind.name}): the workers do not run the same "
                    "collectives in the same order")
            return message

    def _next_frames(self, timeout_ms: int) -> list | None:
        if not self._poller.poll(timeout_ms):
            return None
        return self._pull.recv_multipart(copy=False)

    def _check(self, message: Message, plan: BucketPlan, op: str, **expected) -> None:
        text = message.text
        if text.get("sig") != plan.signature:
            raise AllReduceError(
                f"{self.name(self.position)}: {self.name(self._left)} is reducing a "
                f"different list of arrays (signature {text.get('sig')!r}, here "
                f"{plan.signature!r}: count:crc32 of the shapes and dtypes)")
        for field, value in (("op", op), ("from", self._left), *expected.items()):
            if text.get(field) != value:
                self._mismatch(message, f"{field}={text.get(field)!r}", f"{field}={value!r}")

    def _mismatch(self, message: Message, got: str, expected: str) -> None:
        raise AllReduceError(f"{self.name(self.position)}: a message of step {message.step} "
                             f"from {self.name(self._left)} has {got}, expected {expected}")

    def _chunk_of(self, message: Message, bucket, size: int) -> np.ndarray:
        if len(message.tensors) != 1:
            raise AllReduceError(f"{self.name(self.position)}: a message from "
                                 f"{self.name(self._left)} has {len(message.tensors)} "
                                 "tensors, expected one chunk")
        data = message.tensors[0][1]
        if data.dtype != bucket.dtype or data.shape != (size,):
            raise AllReduceError(
                f"{self.name(self.position)}: bucket {bucket.index} chunk "
                f"{message.text.get('c')} from {self.name(self._left)} is {data.dtype}"
                f"{list(data.shape)}, expected {bucket.dtype}[{size}]")
        return data

    def _late_chunk(self, plan: BucketPlan, got: list[int], bounds, step: int,
                    timeout_ms: int) -> str:
        n, me = self.size, self.position
        b = next(i for i, g in enumerate(got) if g < 2 * (n - 1))
        s = got[b]
        phase, c = ("reduce-scatter", (me - s - 1) % n) if s < n - 1 else \
            ("all-gather", (me - (s - n + 1)) % n)
        lo, hi = bounds[b][c]
        bucket = plan.buckets[b]
        return (f"{self.name(me)}: {self.name(self._left)} did not send bucket {b} of "
                f"{len(got)} ({bucket.dtype}, {bucket.size} elements) chunk {c} "
                f"(elements {lo}..{hi}), {phase} step {s % (n - 1) + 1} of {n - 1}, of "
                f"all-reduce step {step} within {timeout_ms} ms (it relays its own left "
                "neighbour's data: a worker further back may be the one stuck)")

    def _late_broadcast(self, bucket, origin: int, step: int, timeout_ms: int) -> str:
        relay = "" if self._left == origin else f", relayed by {self.name(self._left)}"
        return (f"{self.name(self.position)}: bucket {bucket.index} ({bucket.dtype}, "
                f"{bucket.size} elements) of the broadcast of step {step} from "
                f"{self.name(origin)}{relay} did not arrive within {timeout_ms} ms")
