"""``tj.quantize``: post-training int8 quantization of an inference function.

``quantize(f, calibration_data)`` traces ``f`` (a function or ``@jit`` function of
arrays), takes the values of the Variables it reads *now* as its weights, runs the
float32 program on the calibration batches to see each quantized product's input range,
and returns a ``@jit`` function computing ``f`` with int8 products (rewrite.py). Called
with new shapes (another batch size) it traces ``f`` again and applies the same
calibrated parameters -- the weights stay the snapshot taken here.

``quantize_session(sess, fetches, feeds, calibration_feeds)`` does the same for a TF1
graph: the function is the Session's step for those fetches and fed tensors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..ir.errors import TracejitError
from ..ir.regions import inline
from ..ir.source import user_location
from ..passes.pipeline import optimize
from ..runtime.registry import get_device
from ..trace import pytree
from ..trace.jit import JitFunction, jit
from ..trace.tracing import current_trace
from ..trace.values import Array, Tracer
from .numerics import AffineParams, RangeObserver
from .rewrite import Site, find_sites, quantized_graph, with_site_inputs

__all__ = ["quantize", "quantize_session", "QuantizationReport", "QuantizationError"]


class QuantizationError(TracejitError):
    """The function or its calibration data cannot be quantized as given."""


@dataclass(frozen=True)
class _Snapshot:
    """A Variable's value when quantize was called: what the frozen graph holds."""

    name: str
    value: np.ndarray

    def numpy(self) -> np.ndarray:
        return self.value


@dataclass(frozen=True)
class SiteReport:
    """What one quantized product got: its op and shapes, the activation's range and
    int8 parameters."""

    describe: str
    low: float
    high: float
    params: AffineParams


@dataclass(frozen=True)
class QuantizationReport:
    """The products ``quantize`` rewrote, in program order, and how many it left float."""

    sites: tuple[SiteReport, ...]
    skipped: int = 0

    def __str__(self) -> str:
        lines = [f"{len(self.sites)} product(s) in int8"
                 + (f", {self.skipped} left in float32" if self.skipped else "")]
        for s in self.sites:
            lines.append(f"  {s.describe}: input in [{s.low:.4g}, {s.high:.4g}] -> scale "
                         f"{s.params.scale:.4g}, zero point {s.params.zero_point}")
        return "\n".join(lines)


def _batches(calibration_data) -> list[tuple]:
    """Calibration data as a list of argument tuples: one array (one batch of a
    one-argument function), a tuple (one call's arguments), or a list of either."""
    if isinstance(calibration_data, np.ndarray) or np.isscalar(calibration_data):
        return [(calibration_data,)]
    if isinstance(calibration_data, tuple):
        return [calibration_data]
    if isinstance(calibration_data, dict):
        raise QuantizationError("calibration_data is a dict: pass the arguments' batches "
                                "(quantize_session takes feed dicts)", location=user_location())
    batches = [b if isinstance(b, tuple) else (b,) for b in calibration_data]
    if not batches:
        raise QuantizationError("calibration_data is empty: quantization needs at least "
                                "one batch to see the activations' ranges",
                                location=user_location())
    return batches


class _Quantizer:
    """Traces ``jitted`` per argument signature, freezes the snapshot of its weights and
    rewrites the sites with the calibrated parameters."""

    def __init__(self, jitted: JitFunction, name: str):
        self.jitted, self.name = jitted, name
        self.snapshot: dict[int, _Snapshot] = {}
        self.params: dict[int, AffineParams] = {}
        self.weight_shapes: list[tuple] | None = None

    def float_graph(self, args) -> tuple:
        """``(graph, out_tree, out_weak)``: f's optimized graph for ``args``, its
        Variables' snapshot values as constants."""
        from ..aot.freeze import FreezeError, freeze
        traced = self.jitted.trace(*args)
        for variable in traced.captured:
            if id(variable) not in self.snapshot:
                self.snapshot[id(variable)] = _Snapshot(
                    variable.name, np.array(variable.numpy(), copy=True))
        stand_in = [self.snapshot[id(v)] for v in traced.captured]
        by_id = {id(v): s for v, s in zip(traced.captured, stand_in, strict=True)}
        traced = dataclasses.replace(traced, captured=tuple(stand_in),
                                     updated=tuple(by_id[id(v)] for v in traced.updated))
        try:
            graph = freeze(traced, self.name)
        except FreezeError as exc:
            raise QuantizationError(str(exc), location=user_location()) from None
        return optimize(graph), traced.out_tree, traced.out_weak

    def sites(self, graph) -> list[Site]:
        sites = find_sites(graph)
        shapes = [s.weight.shape for s in sites]
        if self.weight_shapes is not None and shapes != self.weight_shapes:
            raise QuantizationError(
                f"{self.name} traced for these arguments has other products than when it "
                f"was calibrated ({shapes} against {self.weight_shapes})",
                location=user_location())
        return sites

    def calibrate(self, batches: Sequence[tuple], method: str, percentile: float,
                  device: str) -> QuantizationReport:
        observers: list[RangeObserver] | None = None
        programs: dict = {}
        for args in batches:
            leaves: list = []
            pytree.flatten(args, leaves)
            key = tuple((np.shape(x), np.asarray(x).dtype) for x in leaves)
            if key not in programs:
                graph, _, _ = self.float_graph(args)
                sites = self.sites(graph)
                if self.weight_shapes is None:
                    self.weight_shapes = [s.weight.shape for s in sites]
                    observers = [RangeObserver(method, percentile) for _ in sites]
                    first = (graph, sites)
                observed = with_site_inputs(graph, sites)
                dev = get_device(device)
                programs[key] = (dev.host_program(dev.compile(observed), observed),
                                 len(graph.outputs))
            program, n_outs = programs[key]
            values = program([np.asarray(x) for x in leaves])
            for observer, value in zip(observers, values[n_outs:], strict=True):
                observer.observe(np.asarray(value))
        graph, sites = first
        reports = []
        for site, observer in zip(sites, observers, strict=True):
            params = observer.params()
            self.params[site.index] = params
            reports.append(SiteReport(site.describe(), *observer.range(), params))
        return QuantizationReport(tuple(reports))

    def __call__(self, *args):
        """The quantized program inlined into the trace of the calling ``@jit``."""
        trace = current_trace()
        leaves: list = []
        treedef = pytree.flatten(args, leaves)
        # NOTE: f is traced for the arguments' types alone: stand-ins of their shapes
        # that hold no memory (a zero broadcast), keeping weak scalars weak
        stand_ins = [Array(np.broadcast_to(np.zeros((), t.dtype.np_dtype), t.shape), t.weak)
                     if isinstance(t, Tracer) else t for t in leaves]
        graph, out_tree, out_weak = self.float_graph(pytree.unflatten(treedef,
                                                                      iter(stand_ins)))
        int8 = quantized_graph(graph, self.sites(graph), self.params)
        outs = inline(trace.builder, int8, [trace.var_of(x) for x in leaves])
        return pytree.unflatten(out_tree, iter(
            Tracer(v, trace, weak) for v, weak in zip(outs, out_weak, strict=True)))


def quantize(f, calibration_data, *, method: str = "minmax", percentile: float = 99.99,
             device: str = "cpu") -> JitFunction:
    """``f`` with its convolutions and matrix products by weights in int8.

    ``f``: an inference function of arrays (or a ``@jit`` one) that reads its weights
    from Variables; ``calibration_data``: representative inputs -- one array (a batch
    for a one-argument ``f``), a tuple of ``f``'s arguments, or a list of either.
    Activations get one affine int8 range each, from the extremes seen (``minmax``) or
    the ``percentile`` and ``100 - percentile`` of their values (``percentile``); weights
    are int8 per output channel. Calibration runs the float32 program on ``device``.
    The result is a ``@jit`` function (``.quantization`` reports what was quantized):

    >>> import numpy as np, tracejit as tj
    >>> w = tj.Variable(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3))
    >>> f = lambda x: tj.nn.relu(x @ w)
    >>> x = np.random.default_rng(0).uniform(-1, 1, (64, 4)).astype(np.float32)
    >>> q = tj.quantize(f, x)
    >>> float(np.abs(np.asarray(q(x)) - np.asarray(f(x))).max()) < 0.02
    True
    """
    jitted = f if isinstance(f, JitFunction) else JitFunction(f)
    name = getattr(f, "__name__", "f")
    quantizer = _Quantizer(jitted, name)
    report = quantizer.calibrate(_batches(calibration_data), method, percentile, device)

    def body(*args):
        return quantizer(*args)
    body.__name__ = body.__qualname__ = f"{name}_int8"
    quantized = jit(body)
    quantized.quantization = report
    return quantized


def quantize_session(sess, fetches, feeds: Sequence, calibration_feeds: Iterable[dict], *,
                     method: str = "minmax", percentile: float = 99.99) -> JitFunction:
    """A TF1 graph's ``fetches`` computed with int8 products: the Session's step for
    ``fetches`` with the tensors ``feeds`` fed, quantized on ``calibration_feeds`` (feed
    dicts). Call the result with the fed values in the order of ``feeds``; it returns
    the fetches' values as a list.

    >>> import numpy as np, tracejit as tj, tracejit.compat.v1 as tf
    >>> g = tf.Graph()
    >>> with g.as_default():
    ...     x = tf.placeholder(tf.float32, [None, 4])
    ...     w = tf.Variable(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3))
    ...     y = tf.nn.relu(tf.matmul(x, w))
    ...     sess = tf.Session()
    ...     sess.run(tf.global_variables_initializer())
    >>> data = np.random.default_rng(0).uniform(-1, 1, (64, 4)).astype(np.float32)
    >>> q = tj.quantize_session(sess, [y], [x], [{x: data}])
    >>> got, = q(data)
    >>> float(np.abs(np.asarray(got) - sess.run(y, {x: data})).max()) < 0.02
    True
    """
    step, fed = sess.step_function(list(fetches), list(feeds))
    batches = []
    for feed_dict in calibration_feeds:
        # NOTE: keyed by the fed Tensors or their names, as Session.run's feed_dict
        by_key = {(k if isinstance(k, str) else id(k)): v for k, v in feed_dict.items()}
        missing = [t.name for t in fed if id(t) not in by_key and t.name not in by_key]
        if missing:
            raise QuantizationError(f"a calibration feed dict does not feed "
                                    f"{', '.join(missing)}", location=user_location())
        batches.append(tuple(np.asarray(by_key.get(id(t), by_key.get(t.name)),
                                        dtype=t.dtype.np_dtype) for t in fed))
    return quantize(step, batches, method=method, percentile=percentile)
