"""Input data: datasets (and, later, queues and pipelines)."""

from .dataset import (  # noqa: F401
    AUTOTUNE,
    Dataset,
    DatasetIterator,
    TextLineDataset,
    TFRecordDataset,
)
from .structure import TensorSpec  # noqa: F401
