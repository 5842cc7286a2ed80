"""Fixtures shared by the TF1 front end's tests."""

from __future__ import annotations

import pytest

from tracejit.compat.v1 import host_ops, session


@pytest.fixture
def batched_runs(monkeypatch) -> list[int]:
    """The ``limit`` of every batched run a queue runner makes (Session.run_batched)."""
    limits: list[int] = []

    def counted(sess, plan, limit):
        limits.append(limit)
        return host_ops.run_batch_plan(sess, plan, limit)
    monkeypatch.setattr(session, "run_batch_plan", counted)
    return limits
