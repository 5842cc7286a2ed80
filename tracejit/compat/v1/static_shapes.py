"""Static shapes of a recorded TF1 operation, found by tracing it abstractly.

A TF1 graph may have unknown dimensions (``placeholder(shape=[None, 784])``) while
tracejit's IR is fully static. When an op is created, it runs on stand-in tracers with
every unknown dimension at a probe size, twice with different sizes: dimensions of the
result that differ are unknown. What a probe learns of a result's value (``tf.shape``
of an unknown dimension) is kept per size, so that ops downstream can be sized by it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...ir import dtypes as dt
from ...ir.core import TensorType
from ...ir.errors import TracejitError
from ...trace.tracing import Trace, tracing
from ...trace.values import Tracer
from .replay import ancestor_ops, known_value, replay_ops

__all__ = ["PROBE_SIZES", "OutputSpec", "static_outputs"]

# Stand-ins for unknown dimensions during abstract tracing: primes, so that no
# reshape or broadcast happens to line up by accident.
PROBE_SIZES = (7, 11)


@dataclass
class OutputSpec:
    """One output of an op: its static dims (None for an unknown one, or for unknown
    rank: ``dims is None``), dtype, and known values by probe size."""

    dims: list | None
    dtype: dt.DType
    known: dict[int, Any] = field(default_factory=dict)


def static_outputs(op) -> list[OutputSpec]:
    """Run ``op`` on stand-in tracers to learn its outputs' static shapes and dtypes.

    Unknown dimensions stand at two sizes; dimensions of the result that differ are
    unknown. Where those sizes do not fit (``x: [None, 5]`` against a constant
    ``[6, 5]``), the sizes the other inputs have are tried, as TensorFlow's static
    shapes treat an unknown dimension as compatible with anything; the check then
    happens when the Session knows the fed shapes. Ops whose result depends on how
    their inputs were computed (gradients) are probed with their ancestors replayed,
    starting from stand-ins for the placeholders. Raises the op's error, at its
    location, where no size fits."""
    # NOTE: an input whose known value depends on the probe size (tf.shape of an
    # unknown dimension) makes the result depend on it too.
    unknown = any(t.shape.has_unknown or len(t.probe_known) > 1 for t in op.inputs)
    if op.type == "Gradients" and not unknown:
        # NOTE: the rows of a gathered table's gradient (IndexedSlices) are as many as
        # the ids, which an unknown dimension of a fed value far upstream may size
        unknown = any(t.shape.has_unknown for source in
                      ancestor_ops([t.op for t in op.inputs], set())
                      if source.type == "Placeholder" or getattr(source, "argument", False)
                      or getattr(source, "host_compute", None) is not None
                      for t in source.outputs)
    sizes = list(PROBE_SIZES if unknown else PROBE_SIZES[:1])
    try:
        results = [_probe(op, size) for size in sizes]
    except TracejitError as err:
        if any(t.shape.dims is None for t in op.inputs):
            # NOTE: an unknown-rank input stood in as a scalar and did not fit; the
            # op's shape stays unknown until the fed value decides it.
            return [OutputSpec(None, op.inputs[0].dtype)]
        sizes = sorted({d for t in op.inputs for d in (t.shape.dims or ())
                        if d is not None and d not in PROBE_SIZES} | {1}) \
            if unknown else []
        results = []
        for size in list(sizes):
            try:
                results.append(_probe(op, size))
            except TracejitError:
                sizes.remove(size)
        if not results:
            raise err.at(op.location) from None
    outputs = []
    for i, first in enumerate(results[0]):
        dims = list(first.shape)
        for other in results[1:]:
            dims = [a if a == b else None for a, b in zip(dims, other[i].shape, strict=True)]
        spec = OutputSpec(dims, first.dtype)
        for size, found in zip(sizes, results, strict=False):
            known = known_value(found[i])
            if known is not None:
                spec.known[size] = known
        outputs.append(spec)
    return outputs


def _probe(op, size: int) -> list[Tracer]:
    """The op's results traced with every unknown dimension of its inputs at ``size``."""
    trace = Trace(name="shape_probe")
    values = {}
    with tracing(trace):
        if op.type == "Gradients":
            ancestors = sorted(ancestor_ops([t.op for t in op.inputs], set()),
                               key=lambda o: o.order)
            for source in ancestors:
                if getattr(source, "host_compute", None) is not None:
                    # NOTE: a host op's outputs reach the step as fed values do (of
                    # unknown rank, a py_func's: a 0-d stand-in, as a placeholder's)
                    for t in source.outputs:
                        if t.dtype.name != "string":
                            values[id(t)] = trace.new_input(
                                TensorType(t.shape.probe(size), t.dtype))
                elif source.type == "Placeholder" or getattr(source, "argument", False):
                    t = source.outputs[0]
                    values[id(t)] = trace.new_input(TensorType(t.shape.probe(size),
                                                               t.dtype))
            replay_ops(ancestors, values)
        else:
            for tensor in op.inputs:
                stand_in = trace.new_input(TensorType(tensor.shape.probe(size),
                                                      tensor.dtype))
                # NOTE: a shape computed upstream (tf.shape(x)[0]) is known for this
                # probe size, so it can size this op's result.
                stand_in.known = tensor.probe_known.get(
                    size, tensor.probe_known.get(PROBE_SIZES[0]))
                values[id(tensor)] = stand_in
        out = op.replay(values)
    trace.closed = True
    if isinstance(out, (list, tuple)):
        op.output_layout = [o is not None for o in out]
    return _flatten_outputs(out)


def _flatten_outputs(out) -> list[Tracer]:
    if out is None:
        return []
    if isinstance(out, (list, tuple)):
        return [o for o in out if o is not None]
    return [out]
