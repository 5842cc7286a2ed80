"""Synchronous training's state on a parameter server: gradient accumulators and token
queues, as TensorFlow's ``SyncReplicasOptimizer`` keeps them.

* An **accumulator** collects one gradient set per replica for the current global
  step. A set computed at an older step is *stale* and dropped (the reply says so), as
  TF's ``ConditionalAccumulator`` drops it; a replica that sends again for the same
  step (it retried a failed step) replaces its set rather than counting twice, so
  ``count`` sets are always ``count`` replicas. TAKE waits until ``count`` sets are there,
  answers their mean and starts the next step. The sets are summed in replica order,
  not arrival order, so a synchronous step gives the same bits however the workers'
  messages race.
* A **token queue** holds the tokens the chief pushes after applying a step (each one
  the new global step); a worker waits for one before computing its next gradient.

Waiting requests are kept with their deadline and answered by :meth:`SyncState.ready`:
with the answer once it exists, or an error naming what they waited for once the
deadline passes (a dead worker never makes a step hang).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .wire import Kind, Message, WireError, expect

__all__ = ["SyncState"]

MAX_WAIT_MS = 24 * 3600 * 1000


@dataclass
class _Accumulator:
    step: int = 0
    sets: dict = field(default_factory=dict)        # replica -> {key: array}
    keys: tuple | None = None                       # (key, shape, dtype) of the first set

    def mean(self) -> list[tuple[str, np.ndarray]]:
        ordered = [self.sets[r] for r in sorted(self.sets)]
        result = []
        for key, _, _ in self.keys:
            total = np.array(ordered[0][key], copy=True)
            for tensors in ordered[1:]:
                total += tensors[key]
            # NOTE: in place: a fresh quotient of a 13 MB set cost the ps ~10 ms a step
            np.divide(total, np.asarray(len(ordered), total.dtype), out=total)
            result.append((key, total))
        return result


@dataclass
class _Waiter:
    who: object
    request: Message
    deadline: float


class SyncState:
    def __init__(self, task: str = ""):
        self.task = task            # the task's name, for the messages
        self.accumulators: dict[str, _Accumulator] = {}
        self.tokens: dict[str, list[int]] = {}
        self.waiting: list[_Waiter] = []

    def handle(self, request: Message, who) -> Message | None:
        name = expect(request.text, "name", str, request.kind.name)
        if request.kind is Kind.ACCUMULATE:
            return self._accumulate(name, request)
        if request.kind is Kind.PUSH:
            count = expect(request.text, "count", int, "PUSH")
            step = expect(request.text, "step", int, "PUSH")
            if not 0 <= count <= 1 << 16:
                raise WireError(f"PUSH of {count} tokens")
            self.tokens.setdefault(name, []).extend([step] * count)
            return Message(Kind.OK, {}, [], request.step, request.request)
        if request.kind is Kind.TAKE:
            count = expect(request.text, "count", int, "TAKE")
            if count < 1:
                raise WireError(f"TAKE of {count} gradient sets")
            expect(request.text, "step", int, "TAKE")
        timeout = expect(request.text, "timeout_ms", int, request.kind.name)
        if not 0 <= timeout <= MAX_WAIT_MS:
            raise WireError(f"{request.kind.name}: timeout_ms {timeout} out of range")
        waiter = _Waiter(who, request, time.monotonic() + timeout / 1000)
        reply = self._answer(waiter)
        if reply is None:
            self.waiting.append(waiter)
        return reply

    def _accumulate(self, name: str, request: Message) -> Message:
        replica = expect(request.text, "replica", int, "ACCUMULATE")
        step = expect(request.text, "step", int, "ACCUMULATE")
        if not request.tensors:
            raise WireError("ACCUMULATE without gradients")
        acc = self.accumulators.get(name, _Accumulator())
        keys = tuple((k, a.shape, a.dtype) for k, a in request.tensors)
        if len({k for k, _, _ in keys}) != len(keys):
            raise WireError("ACCUMULATE: two gradients under one key")
        if acc.keys is not None and keys != acc.keys:
            raise WireError(f"ACCUMULATE into {name!r}: gradients "
                            f"{[(k, list(s), str(d)) for k, s, d in keys]} do not match the "
                            f"accumulator's {[(k, list(s), str(d)) for k, s, d in acc.keys]}")
        if any(a.dtype.kind != "f" for _, a in request.tensors):
            raise WireError("ACCUMULATE: gradients must be floating point")
        # NOTE: kept only now that the request is checked: a refused one changes nothing
        self.accumulators[name] = acc
        accepted = step >= acc.step
        if accepted:
            acc.keys = keys
            # NOTE: no copy: a received tensor is a view of its own message's frame,
            # which stays alive (and unshared) as long as the view does
            acc.sets[replica] = dict(request.tensors)
        return Message(Kind.OK, {"accepted": accepted, "step": acc.step}, [],
                       request.step, request.request)

    def _answer(self, waiter: _Waiter) -> Message | None:
        request = waiter.request
        name = request.text["name"]
        if request.kind is Kind.TAKE:
            acc = self.accumulators.get(name)
            if acc is None or len(acc.sets) < request.text["count"]:
                return None
            mean = acc.mean()
            acc.sets.clear()
            acc.step = max(acc.step, request.text["step"])
            return Message(Kind.RESULT, {"count": len(mean)}, mean, request.step,
                           request.request)
        queue = self.tokens.get(name)
        if not queue:
            return None
        return Message(Kind.OK, {"step": queue.pop(0)}, [], request.step, request.request)

    def ready(self, now: float | None = None) -> list:
        """(who, reply) of the waiters answered now: their answer exists, or their
        deadline passed."""
        now = time.monotonic() if now is None else now
        done, still = [], []
        for waiter in self.waiting:
            reply = self._answer(waiter)
            if reply is None and now >= waiter.deadline:
                request = waiter.request
                what = ("gradient sets" if request.kind is Kind.TAKE else "a token")
                reply = Message(Kind.ERROR, {
                    "error": f"{self.task}: {request.kind.name} of {request.text['name']!r}: "
                             f"deadline exceeded waiting for {what} "
                             f"({request.text['timeout_ms']} ms)",
                    "type": "DeadlineExceeded"}, [], request.step, request.request)
            if reply is None:
                still.append(waiter)
            else:
                done.append((waiter.who, reply))
        self.waiting = still
        return done

    def next_deadline(self) -> float | None:
        return min((w.deadline for w in self.waiting), default=None)
