"""TensorBoard summaries, shared by both front ends.

For ``@jit`` programs: ``create_file_writer(logdir)`` gives a writer with ``scalar``,
``histogram``, ``image``, ``audio``, ``text`` and ``add_graph``; a jitted step may
compute a histogram itself with ``histogram_stats(x)`` (tracejit ops, part of the
compiled program) and hand the result to ``writer.histogram``. TF1 graphs use
``tf.summary`` (tracejit/compat/v1/summary.py), built on the same pieces. See
docs/tensorboard.md.

>>> import tempfile, numpy as np, tracejit as tj
>>> @tj.jit
... def step(w):
...     w = w - 0.1 * w
...     return w, tj.summary.histogram_stats(w)
>>> w, stats = step(np.ones(4, np.float32))
>>> with tj.summary.create_file_writer(tempfile.mkdtemp()) as writer:
...     writer.histogram("w", stats, step=0)
"""

from .audio import audio_to_pcm16, encode_wav  # noqa: F401
from .file_writer import SummaryWriter, create_file_writer  # noqa: F401
from .graph_def import ir_graph_def  # noqa: F401
from .histogram import BUCKET_LIMITS, HistogramStats, histogram_proto, histogram_stats  # noqa: F401
from .image import image_to_uint8  # noqa: F401
from .png import encode_png  # noqa: F401
from .writer import EventWriter  # noqa: F401
