"""``tracejit.train``: TensorFlow 1.x's optimizers and the global step.

Every optimizer has TF 1.x's constructor, defaults, slot names and update formula (see
docs/optimizers.md) and works inside ``@tracejit.jit``, in TF1 graphs, and eagerly.

>>> import numpy as np, tracejit as tj
>>> from tracejit import train
>>> v = tj.Variable(np.array([1.0, 2.0]), name="v")
>>> opt = train.MomentumOptimizer(0.1, momentum=0.9)
>>> _ = opt.apply_gradients([(np.array([1.0, 1.0]), v)])
>>> v.numpy().tolist(), opt.get_slot_names()
([0.9, 1.9], ['momentum'])
"""

from .adadelta import AdadeltaOptimizer
from .adagrad import AdagradDAOptimizer, AdagradOptimizer
from .adam import AdamOptimizer
from .checkpoint import Checkpoint, CheckpointManager
from .checkpoint_files import (
    CheckpointError,
    checkpoint_exists,
    get_checkpoint_state,
    latest_checkpoint,
    list_variables,
    load_checkpoint,
    load_variable,
)
from .ftrl import FtrlOptimizer
from .global_step import (
    create_global_step,
    get_global_step,
    get_or_create_global_step,
    global_step,
    reset_global_step,
)
from .gradient_descent import GradientDescentOptimizer, MomentumOptimizer
from .loss_scale import LossScaleOptimizer
from .optimizer import Optimizer
from .rmsprop import RMSPropOptimizer

__all__ = [
    "Optimizer", "GradientDescentOptimizer", "MomentumOptimizer", "AdagradOptimizer",
    "AdagradDAOptimizer", "AdadeltaOptimizer", "AdamOptimizer", "RMSPropOptimizer",
    "FtrlOptimizer", "LossScaleOptimizer", "create_global_step", "get_global_step",
    "get_or_create_global_step",
    "global_step", "reset_global_step", "Checkpoint", "CheckpointManager", "CheckpointError",
    "checkpoint_exists", "get_checkpoint_state", "latest_checkpoint", "list_variables",
    "load_checkpoint", "load_variable",
]


def __getattr__(name: str):
    # NOTE: tj.train.ClusterSpec / tj.train.Server, as tf.train's; loaded on first use
    # (the cluster runtime imports ZeroMQ)
    if name in ("ClusterSpec", "Server"):
        from .. import cluster
        return getattr(cluster, name)
    raise AttributeError(f"module 'tracejit.train' has no attribute {name!r}")
