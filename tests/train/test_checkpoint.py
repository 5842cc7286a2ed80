"""tj.train.Checkpoint and CheckpointManager: @jit users' save and restore."""

from __future__ import annotations

import os

import ml_dtypes
import numpy as np
import pytest

import tracejit as tj
from tracejit import train


def _adam_model():
    w = tj.Variable(np.array([[1.0, -2.0], [0.5, 3.0]], np.float32), name="w")
    opt = train.AdamOptimizer(0.1)

    @tj.jit
    def step(x):
        def loss():
            return tj.reduce_sum((x @ w) ** 2)
        return opt.minimize(loss, var_list=[w])
    return w, opt, step


def test_save_numbers_and_restore(tmp_path):
    w = tj.Variable(np.ones(3, np.float32), name="w")
    counts = tj.Variable(np.array([1, 2], np.int64), name="counts")
    brain = tj.Variable(np.array([1.5, -2.0], ml_dtypes.bfloat16), name="brain")
    ckpt = train.Checkpoint(w=w, extra=[counts, brain])
    first = ckpt.save(str(tmp_path / "ckpt"))
    w.assign_add(np.ones(3, np.float32))
    second = ckpt.save(str(tmp_path / "ckpt"))
    assert (first, second) == (str(tmp_path / "ckpt-1"), str(tmp_path / "ckpt-2"))
    assert train.latest_checkpoint(str(tmp_path)) == second
    assert dict(train.list_variables(second)) == {
        "w": [3], "extra/counts": [2], "extra/brain": [2], "save_counter": []}
    w.load(np.zeros(3, np.float32))
    counts.load(np.zeros(2, np.int64))
    ckpt.restore(first)
    np.testing.assert_array_equal(w.numpy(), np.ones(3))
    np.testing.assert_array_equal(counts.numpy(), [1, 2])
    assert brain.numpy().dtype == ml_dtypes.bfloat16
    assert ckpt.save_counter == 1                     # restored with the checkpoint
    ckpt.restore(str(tmp_path))                      # a directory: its latest
    np.testing.assert_array_equal(w.numpy(), np.full(3, 2.0))


def test_restore_mismatch_changes_nothing(tmp_path):
    a = tj.Variable(np.ones(2, np.float32), name="a")
    b = tj.Variable(np.ones((2, 2), np.float32), name="b")
    path = train.Checkpoint(a=a, b=b).write(str(tmp_path / "m"))
    a2 = tj.Variable(np.full(2, 5.0, np.float32), name="a")
    b2 = tj.Variable(np.full(3, 5.0, np.float32), name="b")
    with pytest.raises(train.CheckpointError, match=r"b: the checkpoint's shape \[2, 2\] "
                                                    r"does not match the variable's shape \[3\]"):
        train.Checkpoint(a=a2, b=b2).restore(path)
    np.testing.assert_array_equal(a2.numpy(), [5.0, 5.0])
    with pytest.raises(train.CheckpointError, match="Key c not found") as caught:
        train.Checkpoint(c=a2).restore(path)
    assert caught.value.location.file == __file__ and isinstance(caught.value, ValueError)
    with pytest.raises(train.CheckpointError, match="dtype"):
        train.Checkpoint(a=tj.Variable(np.ones(2, np.float64))).restore(path)


def test_optimizer_slots_restore_before_the_first_step(tmp_path):
    x = np.array([[0.3, -0.7]], np.float32)
    w, opt, step = _adam_model()
    for _ in range(3):
        step(x)
    path = train.Checkpoint(model=[w], opt=opt).write(str(tmp_path / "adam"))
    names = {n for n, _ in train.list_variables(path)}
    assert {"model/w", "opt/w/Adam", "opt/w/Adam_1", "opt/beta1_power"} <= names
    step(x)
    continued = w.numpy()

    w2, opt2, step2 = _adam_model()
    train.Checkpoint(model=[w2], opt=opt2).restore(path)     # slots do not exist yet
    step2(x)
    np.testing.assert_allclose(w2.numpy(), continued, rtol=1e-6)


def test_manager_keeps_the_last_few(tmp_path):
    v = tj.Variable(np.zeros(2, np.float32), name="v")
    manager = train.CheckpointManager(train.Checkpoint(v=v), str(tmp_path), max_to_keep=2)
    assert manager.restore_or_initialize() is None
    for _ in range(4):
        v.assign_add(np.ones(2, np.float32))
        manager.save()
    assert manager.checkpoints == [str(tmp_path / "ckpt-3"), str(tmp_path / "ckpt-4")]
    assert not os.path.exists(tmp_path / "ckpt-1.index")
    assert manager.save(checkpoint_number=100).endswith("ckpt-100")

    v2 = tj.Variable(np.zeros(2, np.float32), name="v")
    again = train.CheckpointManager(train.Checkpoint(v=v2), str(tmp_path), max_to_keep=2)
    assert again.restore_or_initialize() == str(tmp_path / "ckpt-100")
    np.testing.assert_array_equal(v2.numpy(), [4.0, 4.0])
    assert again.checkpoints == [str(tmp_path / "ckpt-4"), str(tmp_path / "ckpt-100")]


def test_checkpoint_refuses_what_it_cannot_track():
    with pytest.raises(TypeError, match="Checkpoint\\(x=...\\)"):
        train.Checkpoint(x=np.zeros(2))
    with pytest.raises(ValueError, match="at least one"):
        train.Checkpoint()
