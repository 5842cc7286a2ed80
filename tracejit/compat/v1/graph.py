"""The TF1 graph: Operations and their output Tensors, recorded as Python calls.

A TF1 graph may have unknown dimensions (``placeholder(shape=[None, 784])``) while
tracejit's IR is fully static. So an Operation stores the tracejit function to call
and its arguments; ``Session.run`` replays the operations a fetch needs, with the
fed shapes, inside one trace, and compiles that. Static shapes with ``None`` are
found when the op is created, by tracing it abstractly with two different sizes for
the unknown dimensions: dimensions that differ are unknown (static_shapes.py).
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
from collections.abc import Callable
from typing import Any

from ...ir import dtypes as dt
from ...ir.errors import ParamError, TracejitError
from ...ir.source import user_location
from ...trace import pytree
from .default_session import get_default_session
from .device_scopes import DeviceScopes, apply_device_functions
from .replay import ancestor_ops, known_value, replay_ops  # noqa: F401
from .shapes import TensorShape
from .static_shapes import static_outputs


class Operation:
    """A node: a tracejit function applied to graph tensors and constants."""

    def __init__(self, graph: Graph, op_type: str, name: str, fn: Callable | None,
                 args_tree: Any, arg_tensors: list[Tensor], control_inputs: list[Operation],
                 device: str, effect: Callable | None = None):
        self.graph = graph
        self.type = op_type
        self.name = name
        self._fn = fn
        self._args_tree = args_tree          # (treedef, leaves) with graph tensors as leaves
        self.inputs = arg_tensors
        self.control_inputs = control_inputs
        self.device = device
        self.outputs: list[Tensor] = []
        # What the function returned: None (a single tensor) or, for list results, which
        # positions held a tensor (False marks a None, e.g. an unconnected gradient).
        self.output_layout: list[bool] | None = None
        self.location = user_location()
        self.order = next(graph._counter)    # creation order = a topological order
        self.effect = effect                 # for ops with no outputs (group, no_op)
        # The control-flow region (compat/v1/regions.py) it was created in: a branch or
        # loop body replays it, the outer graph never does. None: the graph itself.
        self.region = graph._regions[-1] if graph._regions else None
        # the gradient_override_map in force when it was made (None: none), and the rule
        # that replays it with the overriding gradient (gradient_override.py)
        self.gradient_overrides: dict[str, str] | None = graph.gradient_overrides()
        self.gradient_rule: Callable | None = None

    def structured_outputs(self):
        """The op's outputs shaped like its function's result (a tensor or a list)."""
        if self.output_layout is None:
            return self.outputs[0] if self.outputs else self
        found = iter(self.outputs)
        return [next(found) if present else None for present in self.output_layout]

    def replay(self, values: dict[int, Any]):
        """Call the op's function with traced values substituted for graph tensors."""
        if self._fn is None:
            return []
        treedef, leaves = self._args_tree
        args = [values[id(leaf)] if isinstance(leaf, Tensor) else leaf for leaf in leaves]
        call_args, call_kwargs = pytree.unflatten(treedef, iter(args))
        if self.gradient_rule is not None:
            return self.gradient_rule(lambda: self._fn(*call_args, **call_kwargs), values)
        return self._fn(*call_args, **call_kwargs)

    def recorded_call(self):
        """``(function, args, kwargs)`` as recorded, graph tensors among the arguments;
        None for an op that calls no function (a placeholder, a no-op)."""
        if self._fn is None:
            return None
        treedef, leaves = self._args_tree
        args, kwargs = pytree.unflatten(treedef, iter(leaves))
        return self._fn, args, kwargs

    def run(self, feed_dict=None, session=None):
        (session or get_default_session()).run(self, feed_dict)

    def __repr__(self) -> str:
        return f"<tf.Operation '{self.name}' type={self.type}>"


class Tensor:
    """One output of an Operation (``tf.Tensor`` in a TF1 graph)."""

    __array_priority__ = 1000

    def __init__(self, op: Operation, index: int, shape: TensorShape, dtype: dt.DType):
        self.op = op
        self.value_index = index
        self._shape = shape
        self.dtype = dtype
        # Its value while probing shapes with unknown dimensions standing at each size,
        # where that is known (a shape and what is computed from it).
        self.probe_known: dict[int, Any] = {}

    @property
    def name(self) -> str:
        return f"{self.op.name}:{self.value_index}"

    @property
    def graph(self) -> Graph:
        return self.op.graph

    @property
    def shape(self) -> TensorShape:
        return self._shape

    def get_shape(self) -> TensorShape:
        return self._shape

    def set_shape(self, shape) -> None:
        self._shape = self._shape.merge_with(TensorShape(shape))

    @property
    def device(self):
        return self.op.device

    def eval(self, feed_dict=None, session=None):
        return (session or get_default_session()).run(self, feed_dict)

    def __repr__(self) -> str:
        return f"<tf.Tensor '{self.name}' shape={self._shape} dtype={self.dtype.name}>"

    def __hash__(self) -> int:
        return id(self)

    def __bool__(self):
        raise TypeError(f"using a tf.Tensor ({self.name}) as a Python bool is not allowed in "
                        "a graph; use tf.cond-free formulations such as tf.where")

    def __iter__(self):
        raise TypeError(f"a tf.Tensor ({self.name}) is not iterable in a graph; use "
                        "tf.unstack")

    def __len__(self):
        raise TypeError(f"len() of a tf.Tensor ({self.name}); use tensor.shape[0]")


class Graph:
    """``tf.Graph``: a list of Operations, names, collections, and scopes."""

    def __init__(self):
        self._ops: list[Operation] = []
        self._names: dict[str, Operation] = {}
        self._name_counts: dict[str, int] = {}
        self._counter = itertools.count()
        self._scope_stack: list[str] = []
        self._control_stack: list[list[Operation]] = []
        self._devices = DeviceScopes()
        self.collections: dict[str, list] = {}
        self.seed: int | None = None
        self._random_ops = 0
        self.variable_store: dict[str, Any] = {}
        self.variable_scope_stack: list = []
        self.finalized = False
        self._regions: list = []            # the branch / loop bodies being recorded
        self._gradient_overrides: dict[str, str] = {}

    # ---- names and scopes -------------------------------------------------------------------

    def unique_name(self, name: str) -> str:
        base = "/".join(self._scope_stack + [name]) if self._scope_stack else name
        count = self._name_counts.get(base, 0)
        self._name_counts[base] = count + 1
        candidate = base if count == 0 else f"{base}_{count}"
        while candidate in self._names:
            count += 1
            self._name_counts[base] = count + 1
            candidate = f"{base}_{count}"
        return candidate

    @contextlib.contextmanager
    def name_scope(self, name: str | None):
        if not name:
            saved = self._scope_stack
            self._scope_stack = []
            try:
                yield ""
            finally:
                self._scope_stack = saved
            return
        if name.endswith("/"):     # an absolute scope, as returned by a previous name_scope
            scope = name.rstrip("/")
            saved = self._scope_stack
            self._scope_stack = scope.split("/") if scope else []
        else:
            scope = self.unique_name(name)
            saved = list(self._scope_stack)
            self._scope_stack = scope.split("/")
        try:
            yield scope + "/"
        finally:
            self._scope_stack = saved

    @contextlib.contextmanager
    def control_dependencies(self, control_inputs):
        if control_inputs is None:
            saved = self._control_stack
            self._control_stack = []
            try:
                yield
            finally:
                self._control_stack = saved
            return
        ops = [as_operation(c) for c in control_inputs]
        self._control_stack.append(ops)
        try:
            yield
        finally:
            self._control_stack.pop()

    def in_control_scope(self) -> bool:
        """Whether ops created now get control inputs (inside control_dependencies)."""
        return any(self._control_stack)

    def in_region(self) -> bool:
        """Whether a ``tf.cond`` branch or ``tf.while_loop`` body is being recorded now."""
        return bool(self._regions)

    @contextlib.contextmanager
    def outside_regions(self):
        """Create ops in the graph itself, outside any branch or loop body and any
        control dependencies (where TensorFlow creates variables: ``init_scope``)."""
        saved, self._regions = self._regions, []
        try:
            with self.control_dependencies(None):
                yield
        finally:
            self._regions = saved

    @contextlib.contextmanager
    def gradient_override_map(self, op_type_map: dict):
        """Ops of a type in ``op_type_map`` created inside use the gradient function
        registered (``tf.RegisterGradient``) under the name it maps to."""
        if not isinstance(op_type_map, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in op_type_map.items()):
            raise TypeError("op_type_map must be a dictionary mapping strings to strings")
        saved = dict(self._gradient_overrides)
        self._gradient_overrides.update(op_type_map)
        try:
            yield
        finally:
            self._gradient_overrides = saved

    def gradient_overrides(self) -> dict[str, str] | None:
        """The op type -> gradient name map in force now (None when there is none)."""
        return dict(self._gradient_overrides) if self._gradient_overrides else None

    def device(self, device_name_or_function):
        """``tf.device``: see device_scopes.py."""
        return self._devices.device(device_name_or_function)

    def colocate_with(self, op, ignore_existing=False):
        """``tf.colocate_with``: see device_scopes.py."""
        return self._devices.colocate_with(op)

    @contextlib.contextmanager
    def as_default(self):
        _THREAD.graphs.append(self)
        try:
            yield self
        finally:
            _THREAD.graphs.pop()

    # ---- ops --------------------------------------------------------------------------------

    def create_op(self, op_type: str, fn: Callable | None, args=(), kwargs=None, *,
                  name: str | None = None, effect: Callable | None = None,
                  extra_control: list[Operation] | None = None,
                  absolute: bool = False) -> Operation:
        """Record ``fn(*args, **kwargs)``; graph tensors among the arguments become inputs."""
        if self.finalized:
            raise RuntimeError("Graph is finalized and cannot be modified.")
        leaves: list = []
        treedef = pytree.flatten((tuple(args), dict(kwargs or {})), leaves)
        inputs = []
        for leaf in leaves:
            if isinstance(leaf, Tensor):
                if leaf.graph is not self:
                    raise ValueError(f"Tensor {leaf.name} must be from the same graph as the "
                                     f"operation {op_type} being created")
                inputs.append(leaf)
        controls = [op for scope in self._control_stack for op in scope]
        controls += list(extra_control or [])
        _check_regions(self, name or op_type, inputs, controls)
        # NOTE: "" for no device, as TensorFlow has it (not None).
        device, device_functions = self._devices.for_new_op()
        if absolute:
            if name in self._names:
                raise ValueError(f"an operation named {name!r} already exists")
            op_name = name
        else:
            op_name = self.unique_name(_clean(name or op_type))
        op = Operation(self, op_type, op_name, fn,
                       (treedef, leaves), inputs, controls, device, effect)
        self._ops.append(op)
        self._names[op.name] = op
        if op.region is not None:
            op.region.ops.append(op)
        if fn is not None:
            try:
                specs = static_outputs(op)
            except TracejitError:
                self.discard([op])
                raise
            op.outputs = []
            for i, spec in enumerate(specs):
                tensor = Tensor(op, i, TensorShape(spec.dims), spec.dtype)
                tensor.probe_known.update(spec.known)
                op.outputs.append(tensor)
        # NOTE: after the outputs are known: a device function may weigh them (a
        # parameter-server strategy balancing variables by their bytes)
        apply_device_functions(op, device_functions)
        return op

    # ---- lookup -----------------------------------------------------------------------------

    def discard(self, ops) -> None:
        """Take ``ops`` (just created, used by nothing) out of the graph again."""
        for op in ops:
            self._ops.remove(op)
            self._names.pop(op.name, None)
            if op.region is not None and op in op.region.ops:
                op.region.ops.remove(op)

    def get_operations(self) -> list[Operation]:
        return list(self._ops)

    def get_operation_by_name(self, name: str) -> Operation:
        try:
            return self._names[name]
        except KeyError:
            raise KeyError(f"The name {name!r} refers to an Operation not in the graph.") \
                from None

    def get_tensor_by_name(self, name: str) -> Tensor:
        match = re.fullmatch(r"(.+):(\d+)", name)
        if not match:
            raise ValueError(f"The name {name!r} looks like an Operation name, not a Tensor "
                             "name (tensor names look like 'op_name:0')")
        op = self.get_operation_by_name(match.group(1))
        index = int(match.group(2))
        if index >= len(op.outputs):
            raise KeyError(f"The name {name!r} refers to a Tensor which does not exist: "
                           f"operation {op.name!r} has {len(op.outputs)} outputs")
        return op.outputs[index]

    def as_graph_element(self, obj):
        if isinstance(obj, (Tensor, Operation)):
            return obj
        if hasattr(obj, "_graph_element"):
            return obj._graph_element()
        if isinstance(obj, str):
            return self.get_tensor_by_name(obj) if ":" in obj else \
                self.get_operation_by_name(obj)
        raise TypeError(f"Can not convert a {type(obj).__name__} into a Tensor or Operation.")

    def add_to_collection(self, name: str, value) -> None:
        self.collections.setdefault(name, []).append(value)

    def get_collection(self, name: str, scope: str | None = None) -> list:
        items = list(self.collections.get(name, []))
        if scope is None:
            return items
        pattern = re.compile(scope)
        return [i for i in items if pattern.match(getattr(i, "name", ""))]

    def finalize(self) -> None:
        self.finalized = True

    def next_random_seed(self) -> int:
        self._random_ops += 1
        return self._random_ops


def _check_regions(graph: Graph, name: str, inputs, controls) -> None:
    """An op may use what its own region (or one enclosing it) computes, never what a
    branch or loop body computes from outside it: such values exist only in there."""
    current = graph._regions[-1] if graph._regions else None
    for source in [t.op for t in inputs] + list(controls):
        region = source.region
        if region is None or region is current:
            continue
        enclosing = current
        while enclosing is not None and enclosing is not region:
            enclosing = enclosing.parent
        if enclosing is None:
            raise ParamError(
                f"Cannot use '{source.name}' as an input of '{name}': it was created inside "
                f"{region.what} (at {region.location}) and exists only there; return it "
                "from that function instead", location=user_location())


def _clean(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-/]", "_", name)


def as_operation(value) -> Operation:
    if isinstance(value, Operation):
        return value
    if isinstance(value, Tensor):
        return value.op
    if hasattr(value, "_graph_element"):
        return as_operation(value._graph_element())
    raise TypeError(f"{value!r} is not an Operation or Tensor")


class _PerThread(threading.local):
    # NOTE: as in TensorFlow, `with g.as_default()` is per thread; the global default
    # graph (what a new thread sees) is shared.
    def __init__(self):
        self.graphs: list[Graph] = []


_DEFAULT = [Graph()]
_THREAD = _PerThread()


def get_default_graph() -> Graph:
    stack = _THREAD.graphs
    return stack[-1] if stack else _DEFAULT[0]


def reset_default_graph() -> None:
    if _THREAD.graphs:
        raise AssertionError("Do not use tf.reset_default_graph() inside a graph's "
                             "as_default() block")
    _DEFAULT[0] = Graph()

