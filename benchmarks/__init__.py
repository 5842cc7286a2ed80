"""tracejit's benchmark suite: the workloads W1-W9 of ../shared/BENCHMARKS.md run with
tracejit and, in separate processes of the same run, with every installed peer.

Layout (one module per concern, one per peer):

- ``workloads``: the nine workloads, their sizes (full and ``--quick``) and inputs.
- ``harness``: what a peer hands back per workload (``Case``/``Compile``), the timing
  loop, and the child side of the JSON-over-stdout protocol.
- ``child``: ``python -m benchmarks.child --peer NAME ...`` runs one peer's workloads.
- ``peer_*``: one module per peer (tracejit, numpy, numba, jax, torch, tensorflow),
  each exposing ``VARIANTS = {workload: {variant: builder}}``.
- ``cnn_numpy``: the hand-written CNN forward/backward that NumPy and numba share.
- ``runner``: the parent: waits for a quiet machine, starts one process per peer,
  collects results and computes the ratio peer / tracejit.
- ``report``: the text table, the JSON file and the PNG chart.

Run it with ``tracejit bench`` (see docs/benchmarks.md).

The distributed benchmark (issue 16: W4/W5 data-parallel over 1-4 worker processes,
ps async/sync and ring all-reduce, TensorFlow's ``tf.train.Server`` as the peer) is
separate, as it starts whole clusters: ``python -m benchmarks.distributed``
(``distributed``: the driver and its figures; ``dist_launch``: the processes of one
configuration; ``dist_task``: one ps/worker process; ``dist_graphs``: W4/W5 as TF1 graph
code for either framework; ``dist_wire``: bytes per socket and the ps's busy time;
``dist_model``: the fitted cost model and the markdown report).
"""
