"""The ops a ``tf.cond`` branch or a ``tf.while_loop`` body created: a *region*.

TensorFlow 1 calls ``true_fn`` or ``body`` once, while the graph is built, and the ops
that call creates are the branch or the body. So does this package: :func:`record`
runs the user's function with the graph inside a :class:`Region` (every op created then
belongs to it, and the outer graph never replays it), then prunes the region to what
the function's results need, as ``Session.run`` prunes (so an ``assign`` that nothing
depends on does not run, as in TensorFlow), and finds what the region takes from
outside: the graph tensors it reads (they become inputs of the one control-flow
Operation, so the Session keeps their producers and feeds reach them), the operations
it has control dependencies on, and the variables it touches.

When the Session replays the control-flow Operation, tracejit's ``cond``/``while_loop``/
``scan`` trace functions that call :meth:`Region.run`: it replays the region's ops
inside the region being traced, with the outer tensors' replayed values (which the
trace captures) and the function's arguments (loop variables, elements).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ...ir import dtypes as dt
from ...ir.errors import DTypeError, ShapeError
from ...ir.source import user_location
from ...trace import pytree
from .graph import Graph, Operation, Tensor, replay_ops
from .ops import convert_to_tensor, graph_arg
from .shapes import TensorShape

__all__ = ["Region", "record", "all_ops", "check_leaves", "same_structure", "describe", "fail",
           "union"]


def fail(error: type, op: str, message: str):
    """Raise a user's mistake, naming the op and the user's line."""
    raise error(message, op=op, location=user_location())


class Region:
    """The ops one user function created, its argument tensors and its results."""

    def __init__(self, graph: Graph, what: str):
        self.graph = graph
        self.what = what                     # "the body of tf.while_loop", for messages
        self.parent = graph._regions[-1] if graph._regions else None
        self.location = user_location()
        self.ops: list[Operation] = []       # every op created inside, in creation order
        self.args: list[Tensor] = []         # what stands for the function's arguments
        self.treedef = None                  # the structure of its result
        self.leaves: list = []               # the result's leaves: Tensors or Operations
        self.needed: list[Operation] = []    # the ops the results need, in creation order
        self.externals: list[Tensor] = []    # outer tensors those ops read
        self.controls: list[Operation] = []  # outer ops they have control dependencies on
        self.reads: list = []                # the variables they read or assign

    def argument(self, shape: TensorShape, dtype: dt.DType, name: str) -> Tensor:
        """A tensor standing for an argument of the function (a loop variable, an
        element): no op computes it; the replay passes its value."""
        op = self.graph.create_op("Arg", None, name=name)
        op.argument = True
        op.outputs = [Tensor(op, 0, TensorShape(shape), dtype)]
        self.args.append(op.outputs[0])
        return op.outputs[0]

    @property
    def tensors(self) -> list[Tensor]:
        return [leaf for leaf in self.leaves if isinstance(leaf, Tensor)]

    def close(self) -> None:
        """Prune to what the results need and find what comes from outside."""
        stack = [leaf if isinstance(leaf, Operation) else leaf.op for leaf in self.leaves]
        found: dict[int, Operation] = {}
        while stack:
            op = stack.pop()
            if op.region is not self or id(op) in found:
                continue
            found[id(op)] = op
            stack.extend(t.op for t in op.inputs)
            stack.extend(op.control_inputs)
        self.needed = sorted(found.values(), key=lambda o: o.order)
        externals: dict[int, Tensor] = {}
        controls: dict[int, Operation] = {}
        reads: dict[int, object] = {}
        for op in self.needed:
            for tensor in op.inputs:
                if tensor.op.region is not self:
                    externals.setdefault(id(tensor), tensor)
            for control in op.control_inputs:
                if control.region is not self:
                    controls.setdefault(id(control), control)
            touched = [getattr(op, "reads", None), getattr(op, "initializes", None),
                       *getattr(op, "inner_reads", ())]
            for variable in touched:
                if variable is not None:
                    reads.setdefault(id(variable), variable)
        for tensor in self.tensors:
            if tensor.op.region is not self:
                externals.setdefault(id(tensor), tensor)
        self.externals = list(externals.values())
        self.controls = list(controls.values())
        self.reads = list(reads.values())

    def run(self, outer: dict[int, object], args: Sequence) -> list:
        """The results' values, replaying the region's ops in the trace active now.
        ``outer``: id(outer tensor) -> its value; ``args``: the arguments' values."""
        values = dict(outer)
        values.update(zip((id(t) for t in self.args), args, strict=True))
        replay_ops(self.needed, values)
        return [values[id(t)] for t in self.tensors]


def record(graph: Graph, what: str, call: Callable, args: Sequence[tuple] = (),
           allow_ops: bool = False) -> Region:
    """Run ``call(arg_tensors)`` with new ops going into a region. ``args``: one
    (shape, dtype, name) per argument. The result's leaves become graph tensors (Python
    numbers become constants of the region, variables are read there); an Operation
    stays one where ``allow_ops`` (a branch may return one), else it is an error."""
    region = Region(graph, what)
    graph._regions.append(region)
    try:
        with graph.control_dependencies(None):
            tensors = [region.argument(shape, dtype, name) for shape, dtype, name in args]
            result = call(tensors)
            leaves: list = []
            region.treedef = pytree.flatten(result, leaves)
            region.leaves = [_graph_leaf(leaf, what, allow_ops) for leaf in leaves]
    except BaseException:
        graph._regions.pop()
        graph.discard(all_ops(region))
        raise
    graph._regions.pop()
    region.close()
    return region


def all_ops(region: Region) -> list[Operation]:
    """The ops of ``region`` and of the regions of the control-flow ops in it."""
    return [inner for op in region.ops
            for inner in [op, *(o for r in getattr(op, "regions", ()) for o in all_ops(r))]]


def _graph_leaf(value, what: str, allow_ops: bool):
    value = graph_arg(value)
    if isinstance(value, Operation):
        if not allow_ops:
            raise DTypeError(f"{what} returned the Operation {value.name!r}; only tensors "
                             "can be returned here", location=user_location())
        return value
    if isinstance(value, Tensor):
        return value
    try:
        return convert_to_tensor(value)
    except (TypeError, ValueError) as exc:
        raise DTypeError(f"{what} returned {value!r}, which is not a tensor: {exc}",
                         location=user_location()) from None


# ---- comparing what functions return --------------------------------------------------------

def _canonical(treedef):
    """The structure with lists and tuples alike (TensorFlow's nest tells them apart only
    when checking types; a loop or branch works either way)."""
    if treedef is pytree.LEAF or treedef is None:
        return treedef
    kind = treedef[0]
    if kind is dict:
        return (dict, treedef[1], tuple(_canonical(c) for c in treedef[2]))
    return (tuple if kind is list else kind, tuple(_canonical(c) for c in treedef[1]))


def same_structure(a, b) -> bool:
    return _canonical(a) == _canonical(b)


def describe(treedef, leaves: Sequence) -> str:
    """A structure for a message: ``(float32 (2,), [int32 ()])``."""
    def show(leaf):
        if isinstance(leaf, Operation):
            return f"Operation {leaf.name}"
        if isinstance(leaf, Tensor):
            return f"{leaf.dtype.name} {leaf.shape}"
        return str(leaf)
    return str(pytree.unflatten(treedef, iter([_Shown(show(leaf)) for leaf in leaves])))


class _Shown(str):
    def __repr__(self) -> str:
        return str(self)


def check_leaves(op: str, first: Region, other: Region, names: tuple[str, str]) -> None:
    """Two functions whose results a branch merges: the same structure, kinds, dtypes
    and (as far as they are known) shapes."""
    a, b = names
    mismatch = (f"'{a}' and '{b}' must return the same number, type, and overall "
                f"structure of values: '{a}' returns {describe(first.treedef, first.leaves)}"
                f", '{b}' returns {describe(other.treedef, other.leaves)}")
    if not same_structure(first.treedef, other.treedef):
        fail(ShapeError, op, mismatch)
    for k, (x, y) in enumerate(zip(first.leaves, other.leaves, strict=True)):
        if isinstance(x, Operation) != isinstance(y, Operation):
            fail(ShapeError, op, mismatch)
        if isinstance(x, Operation):
            continue
        if x.dtype is not y.dtype:
            fail(DTypeError, op, f"Outputs of '{a}' and '{b}' must have the same type(s): "
                                 f"result {k} is {x.dtype.name} from '{a}' and "
                                 f"{y.dtype.name} from '{b}'")
        if not x.shape.is_compatible_with(y.shape):
            fail(ShapeError, op, f"result {k} has shape {x.shape} from '{a}' and {y.shape} "
                                 f"from '{b}': tracejit compiles every branch to one static "
                                 "shape, so branches must return the same shapes")


def union(lists: Sequence[Sequence]) -> list:
    """The items of ``lists``, each once (by identity), in order of first appearance."""
    seen: dict[int, object] = {}
    for items in lists:
        for item in items:
            seen.setdefault(id(item), item)
    return list(seen.values())
