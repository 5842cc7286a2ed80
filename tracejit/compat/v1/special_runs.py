"""The runs of a compat ``Session`` that need the host beside the compiled step: a
fetch the session drives itself (a synchronous optimizer's exchange), knows (which
variables it initialized) or encodes (a summary's protocol buffer), or a fed string.
Whether a run is one is known from the graph (``needs_host``), asked once per kind of
run."""

from __future__ import annotations

from ...trace import pytree
from .graph import Tensor
from .strings import string

__all__ = ["needs_host", "run_with_host"]


def run_with_host(session, run, run_step, feeds, treedef, targets, feed_dict):
    """A run of ``session`` whose fetches or feeds need the host beside the compiled
    step; ``run(fetches, feeds)``, ``run_step(treedef, targets, feeds, converted)`` and
    ``feeds(feed_dict) -> (fed tensors, arrays)`` are the session's own."""
    steps = [i for i, t in enumerate(targets) if getattr(t, "host_run", None) is not None]
    if steps:
        # NOTE: ops whose step the session drives from Python (a synchronous
        # optimizer's exchange with its replicas): the other fetches run first, in one
        # step, then each such op with the same feeds
        rest = [t for i, t in enumerate(targets) if i not in steps]
        others = iter(run(rest, feed_dict) if rest else [])
        for i in steps:
            targets[i].host_run(session, feed_dict or {})
        results = [None if i in steps else next(others) for i in range(len(targets))]
        return pytree.unflatten(treedef, iter(results))
    host = {i: t.op.host_value(session) for i, t in enumerate(targets)
            if isinstance(t, Tensor) and getattr(t.op, "host_value", None) is not None}
    if host:
        # NOTE: values only the session knows (which variables it initialized).
        rest = [t for i, t in enumerate(targets) if i not in host]
        others = iter(run(rest, feed_dict) if rest else [])
        results = [host[i] if i in host else next(others) for i in range(len(targets))]
        return pytree.unflatten(treedef, iter(results))
    encoded = {i: t for i, t in enumerate(targets)
               if isinstance(t, Tensor) and getattr(t.op, "host_encode", None) is not None}
    if encoded:
        # NOTE: values the host builds from numeric parts the step computes (a
        # summary's protocol buffer): the op's inputs are fetched with the other
        # fetches, in the same step, and its host_encode makes the value from them
        rest = [t for i, t in enumerate(targets) if i not in encoded]
        parts = [p for t in encoded.values() for p in t.op.inputs]
        values = iter(run(rest + parts, feed_dict))
        results = [None if i in encoded else next(values) for i in range(len(targets))]
        for i, t in encoded.items():
            results[i] = t.op.host_encode([next(values) for _ in t.op.inputs])
        return pytree.unflatten(treedef, iter(results))
    fed, arrays = feeds(feed_dict or {})
    if any(t.dtype is string for t in fed):
        # NOTE: strings never enter the compiled step (no op computes on them): a fed
        # one comes back as fed, for the host to use (a text summary of it)
        strings = {id(t): a for t, a in zip(fed, arrays, strict=True) if t.dtype is string}
        numeric = {k: v for (k, v), t in zip(feed_dict.items(), fed, strict=True)
                   if t.dtype is not string}
        rest = [t for t in targets if id(t) not in strings]
        others = iter(run(rest, numeric) if rest else [])
        results = [strings[id(t)] if id(t) in strings else next(others) for t in targets]
        return pytree.unflatten(treedef, iter(results))
    return run_step(treedef, targets, feed_dict, (fed, arrays))


def needs_host(targets, feed_dict) -> bool:
    """Whether a run of ``targets`` needs work on the host beside the compiled step (a
    fetch the session drives, knows or encodes; a fed string): known from the graph, so
    asked once per kind of run, not every step."""
    return any(getattr(t, "host_run", None) is not None
               or (isinstance(t, Tensor) and (getattr(t.op, "host_value", None) is not None
                                              or getattr(t.op, "host_encode", None) is not None))
               for t in targets) or any(t.dtype is string for t in (feed_dict or {}))
