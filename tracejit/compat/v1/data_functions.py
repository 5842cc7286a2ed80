"""The pieces ``tf.data`` in a TF1 graph is made of: element specs in TF terms, the
graph pipeline's base, and the functions given to ``map``/``filter``/``interleave``.

A TF1 ``map`` function receives graph tensors. ``GraphFunction`` calls it once, on
placeholders standing for an element's components (created in the user's graph, outside
any control-flow body or control dependencies), and keeps the tensors it returns. At run
time each element is one ``Session.run`` of those tensors with the element fed to the
placeholders: the Session compiles that step once per element signature (tracejit's
jit, as every step), and host ops inside the function (parsers, string ops) run on the
host as anywhere. Placeholders of the graph the function uses (a fed scale) are captured:
their values are taken when the iterator is initialized, as TensorFlow captures them.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from ...data import structure as st
from ...data.functions import call_with_element
from ...ir import dtypes as dt
from .graph import Tensor, get_default_graph
from .ops import convert_to_tensor, graph_arg, placeholder
from .shapes import TensorShape
from .strings import string

__all__ = ["GraphSpec", "Pipeline", "GraphFunction", "tf_dtype", "np_dtype", "tensor_spec"]


@dataclass(frozen=True)
class GraphSpec:
    """One component of a graph dataset's element: a TF dtype and a static shape."""

    dtype: object
    shape: TensorShape

    def core(self) -> st.TensorSpec:
        return st.TensorSpec(self.shape.dims, np_dtype(self.dtype))


def tf_dtype(value):
    """A TF dtype from a TF dtype, a NumPy dtype, or a name; object/str means tf.string."""
    if value is string or getattr(value, "name", None) == "string" or value in (str, bytes):
        return string
    if isinstance(value, np.dtype) and value == st.STRING:
        return string
    return dt.as_dtype(value)


def np_dtype(dtype) -> np.dtype:
    return st.STRING if dtype is string else np.dtype(dtype.np_dtype)


def tensor_spec(tensor: Tensor) -> GraphSpec:
    return GraphSpec(tensor.dtype, tensor.shape)


class OutputStructure:
    """TF1's ``output_types`` / ``output_shapes`` / ``output_classes`` of whatever holds a
    ``structure`` of GraphSpecs (datasets and iterators)."""

    @property
    def output_types(self):
        return st.map_structure(lambda s: s.dtype, self.structure)

    @property
    def output_shapes(self):
        return st.map_structure(lambda s: s.shape, self.structure)

    @property
    def output_classes(self):
        return st.map_structure(lambda s: Tensor, self.structure)


class Pipeline:
    """What every graph dataset is: ``structure`` (its element's GraphSpecs), the graph
    tensors it needs (``captured``, evaluated when an iterator is initialized), and
    ``build(values, session)``, which makes the ``tracejit.data.Dataset`` that runs it
    from those tensors' values (``values``: id(tensor) -> value)."""

    def __init__(self, structure, captured, build):
        self.structure = structure
        self.captured = _unique(captured)
        self.build = build


def _unique(tensors) -> list:
    seen, out = set(), []
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            out.append(t)
    return out


class GraphFunction:
    """``fn`` recorded once on placeholders of ``structure``; see the module's text.

    ``returns``: "tensors" (map), "predicate" (filter, a scalar bool) or "dataset"
    (interleave/flat_map: ``fn`` returns a graph dataset)."""

    def __init__(self, fn, structure, what: str, returns: str = "tensors"):
        if not callable(fn):
            raise TypeError(f"{what} expects a function, got {type(fn).__name__}")
        self.what = what
        self.name = getattr(fn, "__name__", type(fn).__name__)
        graph = get_default_graph()
        treedef, specs = st.flatten(structure)
        with graph.outside_regions(), graph.name_scope(f"{what}_fn"):
            self.placeholders = [placeholder(s.dtype, s.shape, name=f"args_{i}")
                                 for i, s in enumerate(specs)]
            start = self.placeholders[0].op.order if self.placeholders else None
            result = call_with_element(fn, st.unflatten(treedef, self.placeholders))
            self.dataset = None
            if returns == "dataset":
                if not isinstance(result, Pipeline):
                    raise TypeError(f"{what}: the function {self.name} must return a "
                                    f"tf.data.Dataset, got {type(result).__name__}")
                self.dataset = result
                self.outputs = list(result.captured)
                self.out_tree = None
            else:
                if isinstance(result, list):
                    result = tuple(result)      # as tf.data has it: a list is a tuple
                self.out_tree, leaves = st.flatten(result)
                self.outputs = [self._as_tensor(leaf, i) for i, leaf in enumerate(leaves)]
        if returns == "predicate":
            out = self.outputs[0] if len(self.outputs) == 1 else None
            if out is None or out.dtype is not dt.bool_ or out.shape.dims != ():
                got = [str(tensor_spec(t)) for t in self.outputs]
                raise ValueError(f"{what}: the predicate {self.name} must return a scalar "
                                 f"tf.bool tensor, got {got}")
        self.captured = self._captured(start)

    def _as_tensor(self, leaf, index: int) -> Tensor:
        leaf = graph_arg(leaf)
        if isinstance(leaf, Tensor):
            return leaf
        try:
            return convert_to_tensor(leaf)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{self.what}: the function {self.name} returned a "
                            f"{type(leaf).__name__} as output {index}, which is not a "
                            f"tensor and cannot become one ({exc})") from None

    @property
    def structure(self):
        """The GraphSpecs of the function's result (of the dataset it makes)."""
        if self.dataset is not None:
            return self.dataset.structure
        return st.unflatten(self.out_tree, [tensor_spec(t) for t in self.outputs])

    def _captured(self, start) -> list:
        """The graph's placeholders (not the function's own) the outputs depend on."""
        own = {id(p) for p in self.placeholders}
        found, seen = [], set()
        stack = [t.op for t in self.outputs if id(t) not in own]
        while stack:
            op = stack.pop()
            if id(op) in seen:
                continue
            seen.add(id(op))
            if op.type == "Placeholder":
                if not any(id(t) in own for t in op.outputs):
                    found.extend(op.outputs)
                continue
            stack.extend(t.op for t in op.inputs)
            stack.extend(op.control_inputs)
        return found

    def bind(self, values: dict, session):
        """The function as the core dataset calls it (element -> result), running in
        ``session`` with the captured placeholders at ``values``."""
        base = {t: values[id(t)] for t in self.captured}
        placeholders, outputs = self.placeholders, self.outputs
        # NOTE: weakly: a pipeline's threads must not keep a session nobody closed alive
        # (dropping the session ends the pipeline and its threads)
        session_ref = weakref.ref(session)

        def run(element):
            feed = dict(base)
            feed.update(zip(placeholders, st.flatten(element)[1], strict=True))
            running = session_ref()
            if running is None:
                raise RuntimeError("the session this dataset ran in is gone")
            return running.run(outputs, feed) if outputs else []

        if self.dataset is not None:
            inner = self.dataset

            def make(element):
                found = dict(zip((id(t) for t in outputs), run(element), strict=True))
                return iter(inner.build(found, session_ref()))
            return make

        out_tree = self.out_tree

        def call(element):
            return st.unflatten(out_tree, run(element))
        return call
