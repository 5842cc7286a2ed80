"""The default Session of each thread (``with sess.as_default():``), below both graph.py
(``Tensor.eval()``, ``Operation.run()`` use it) and session.py (which installs it)."""

from __future__ import annotations

import contextlib
import threading

__all__ = ["default_session", "get_default_session"]


class _PerThread(threading.local):
    # NOTE: the default session is per thread, as in TensorFlow.
    def __init__(self):
        self.sessions: list = []


_THREAD = _PerThread()


def get_default_session():
    if not _THREAD.sessions:
        raise ValueError("Cannot evaluate tensor using `eval()`: No default session is "
                         "registered. Use `with sess.as_default()` or pass session=sess")
    return _THREAD.sessions[-1]


@contextlib.contextmanager
def default_session(session):
    """Make ``session`` the default for this thread within the block."""
    _THREAD.sessions.append(session)
    try:
        yield session
    finally:
        _THREAD.sessions.remove(session)
