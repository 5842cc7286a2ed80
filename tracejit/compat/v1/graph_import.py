"""``tf.import_graph_def``: a GraphDef (TensorFlow's, or one tracejit wrote) becomes
operations of the default graph.

Every node becomes one Operation with the node's name (under the ``name`` prefix), its
TensorFlow op type, its data inputs and its control inputs (``^node``); a computing node
records the tracejit function graph_def_ops.py's table names, the others are made as
graph_def_nodes.py says. Nodes are imported in an order where each comes after its
inputs (a GraphDef need not list them so). The import is checked first (every op type
known, every input present, no cycle) and undone if a node fails, so a graph is never
left half imported.
"""

from __future__ import annotations

import contextlib
import re

from tensorboard.compat.proto import graph_pb2

from ...ir.errors import ParamError, TracejitError
from ...ir.source import user_location
from .graph import Graph, Operation, Tensor, get_default_graph
from .graph_def_calls import CALL_ATTR, decode_call
from .graph_def_nodes import NODE_MAKERS, OPAQUE_ATTR, NodeContext, opaque_node
from .graph_def_ops import COMPUTE_ROWS, Attrs
from .ops import graph_arg


class GraphDefError(ParamError):
    """A GraphDef that cannot be imported, or an argument of the import that does not fit
    it (a ValueError, as TensorFlow raises; it names the user's line)."""

    def __init__(self, message: str, *, op=None, location=None):
        super().__init__(message, op=op, location=location or user_location())


_TENSOR_NAME = re.compile(r"(\^?)(.+?)(?::(\d+))?")


def importable_types() -> set[str]:
    """The TensorFlow op types import_graph_def can read."""
    return set(COMPUTE_ROWS) | set(NODE_MAKERS)


def parse_input(text: str) -> tuple[str, int, bool]:
    """(node name, output index, is a control input) of a NodeDef input string:
    ``name``, ``name:1``, ``^name``."""
    match = _TENSOR_NAME.fullmatch(text)
    if not match:
        raise ValueError(f"malformed NodeDef input {text!r}")
    control, name, index = match.groups()
    return name, int(index or 0), bool(control)


def _canonical(text: str) -> str:
    name, index, control = parse_input(text)
    return f"^{name}" if control else f"{name}:{index}"


def _topological(nodes: dict) -> list:
    """The nodes ordered so that every node comes after the nodes it reads."""
    order, state = [], {}          # state: 1 visiting, 2 done
    for start in nodes:
        if state.get(start) == 2:
            continue
        stack = [(start, iter(nodes[start].input))]
        state[start] = 1
        while stack:
            name, pending = stack[-1]
            for text in pending:
                source = parse_input(text)[0]
                if source not in nodes:
                    raise GraphDefError(f"import_graph_def: node {name!r} has an input "
                                     f"{text!r} that is not a node of graph_def")
                if state.get(source) == 1:
                    raise GraphDefError(f"import_graph_def: the graph has a cycle through node "
                                     f"{source!r} ({nodes[source].op}); loops written as "
                                     "TF1 control-flow nodes cannot be imported")
                if state.get(source) is None:
                    state[source] = 1
                    stack.append((source, iter(nodes[source].input)))
                    break
            else:
                stack.pop()
                state[name] = 2
                order.append(nodes[name])
    return order


@contextlib.contextmanager
def exact_name(graph: Graph, full_name: str):
    """Make ops so that one named ``leaf`` (yielded) gets the name ``full_name``."""
    scope, _, leaf = full_name.rpartition("/")
    with graph.name_scope(scope + "/" if scope else None):
        yield leaf


def _mapped_inputs(input_map) -> dict[str, object]:
    mapped = {}
    for key, value in (input_map or {}).items():
        if not isinstance(key, str):
            raise TypeError(f"input_map keys must be tensor names (strings), got {key!r}")
        value = graph_arg(value)
        canonical = _canonical(key)
        if canonical.startswith("^"):
            if not isinstance(value, Operation):
                raise TypeError(f"input_map maps the control input {key!r} to {value!r}, "
                                "not an Operation")
        elif not isinstance(value, Tensor):
            raise TypeError(f"input_map maps {key!r} to {value!r}, not a tf.Tensor")
        mapped[canonical] = value
    return mapped


def import_graph_def(graph_def, input_map=None, return_elements=None, name=None,
                     op_dict=None, producer_op_list=None):
    """``tf.import_graph_def``: add ``graph_def``'s nodes to the default graph under the
    name scope ``name`` (``"import"`` when None; ``""`` for none). ``input_map`` maps
    tensor names of ``graph_def`` (``"x:0"``) to tensors of this graph that replace
    them; ``return_elements`` names the operations (``"y"``) and tensors (``"y:0"``) to
    return, in that order (None: return None)."""
    _, created = import_nodes(graph_def, input_map, "import" if name is None else name,
                              return_elements)
    if return_elements is None:
        return None
    results = []
    for element in return_elements:
        source, index, _ = parse_input(element)
        op = created[source]
        if ":" not in element:
            results.append(op)
        elif index >= len(op.outputs):
            raise GraphDefError(f"Requested return_element {element!r}: node {source!r} has "
                             f"{len(op.outputs)} outputs")
        else:
            results.append(op.outputs[index])
    return results


def import_nodes(graph_def, input_map, scope: str, return_elements=None,
                 unknown_runs_as_error: bool = False) -> tuple[str, dict[str, Operation]]:
    """Check and import ``graph_def`` (see import_graph_def); returns the scope its
    nodes got (``scope`` made unique, with ``/``; ``""`` for none) and the operation of
    each node by its name in ``graph_def``. ``unknown_runs_as_error``: a node of an op
    type tracejit does not implement, or reading one, becomes an op whose running is the
    error (import_meta_graph: a training graph's gradient and update nodes), instead of
    failing the import."""
    if isinstance(graph_def, (bytes, bytearray)):
        graph_def = graph_pb2.GraphDef.FromString(bytes(graph_def))
    if not isinstance(graph_def, graph_pb2.GraphDef):
        raise TypeError(f"import_graph_def takes a GraphDef, got {type(graph_def).__name__}")
    nodes = {}
    for node in graph_def.node:
        if node.name in nodes:
            raise GraphDefError(f"import_graph_def: graph_def has two nodes named {node.name!r}")
        nodes[node.name] = node
    known = importable_types()
    for node in graph_def.node:
        if node.op not in known and CALL_ATTR not in node.attr and \
                OPAQUE_ATTR not in node.attr and not unknown_runs_as_error:
            raise GraphDefError(f"import_graph_def: node {node.name!r} has op type {node.op!r}, "
                             "which tracejit does not implement")
    mapped = _mapped_inputs(input_map)
    missing = sorted(k for k in mapped if parse_input(k)[0] not in nodes)
    if missing:
        raise GraphDefError(f"Attempted to map inputs that were not found in graph_def: "
                         f"{missing}")
    for element in return_elements or []:
        if not isinstance(element, str) or parse_input(element)[0] not in nodes:
            raise GraphDefError(f"Requested return_element {element!r} not found in graph_def.")
    unknown = _unknown_and_readers(graph_def, nodes, known) if unknown_runs_as_error \
        else {}
    return _import_nodes(_topological(nodes), mapped, scope, unknown)


def _unknown_and_readers(graph_def, nodes: dict, known: set) -> dict[str, int]:
    """The nodes of op types tracejit lacks and the nodes reading them (through data
    inputs), each with how many outputs the graph reads of it."""
    outputs: dict[str, int] = {}
    for node in graph_def.node:
        for text in node.input:
            source, index, control = parse_input(text)
            if not control:
                outputs[source] = max(outputs.get(source, 0), index + 1)
    found: dict[str, int] = {}
    for node in _topological(nodes):
        lacking = node.op not in known and CALL_ATTR not in node.attr and \
            OPAQUE_ATTR not in node.attr
        reads = any(parse_input(t)[0] in found for t in node.input if not t.startswith("^"))
        if lacking or reads:
            shapes = len(node.attr["_output_shapes"].list.shape) \
                if "_output_shapes" in node.attr else 0
            found[node.name] = max(outputs.get(node.name, 0), shapes)
    return found


def _import_nodes(order, mapped: dict, scope: str, unknown: dict[str, int]
                  ) -> tuple[str, dict[str, Operation]]:
    graph = get_default_graph()
    before = set(map(id, graph.get_operations()))
    created: dict[str, Operation] = {}
    try:
        with graph.name_scope(scope or None) as prefix:
            for node in order:
                created[node.name] = _import_node(graph, node, prefix, created, mapped,
                                                  unknown.get(node.name))
    except BaseException:
        graph.discard([op for op in graph.get_operations() if id(op) not in before])
        raise
    return prefix, created


def _import_node(graph: Graph, node, prefix: str, created: dict, mapped: dict,
                 unknown_outputs: int | None) -> Operation:
    full_name = prefix + node.name
    where = f"node {full_name!r} ({node.op})"
    data, controls = [], []
    for text in node.input:
        key = _canonical(text)
        source, index, control = parse_input(text)
        if control:
            controls.append(mapped.get(key, created[source]))
        elif key in mapped:
            data.append(mapped[key])
        else:
            outputs = created[source].outputs
            if index >= len(outputs):
                raise GraphDefError(f"import_graph_def: {where} reads {text!r}, but "
                                 f"{source!r} has {len(outputs)} outputs")
            data.append(outputs[index])
    with contextlib.suppress(KeyError):
        graph.get_operation_by_name(full_name)
        raise GraphDefError(f"import_graph_def: an operation named {full_name!r} already "
                         "exists in the graph (import under another name=)")
    attrs = Attrs(node, where)
    device = graph.device(node.device) if node.device else contextlib.nullcontext()
    try:
        with graph.control_dependencies(controls), device:
            if controls and (node.op not in NODE_MAKERS or CALL_ATTR in node.attr):
                data = [_read_after_controls(graph, t) for t in data]
            with exact_name(graph, full_name) as leaf:
                context = NodeContext(graph, leaf, full_name, node.op, data, attrs)
                if unknown_outputs is not None:
                    opaque_node(context, unknown_outputs)
                elif CALL_ATTR in node.attr:
                    fn, args, kwargs = decode_call(attrs.get(CALL_ATTR), data, where)
                    graph.create_op(node.op, fn, args, kwargs, name=leaf)
                elif OPAQUE_ATTR in node.attr:
                    opaque_node(context)
                elif node.op in NODE_MAKERS:
                    NODE_MAKERS[node.op](context)
                else:
                    row = COMPUTE_ROWS[node.op]
                    made = graph.create_op(node.op, lambda *xs: row.compute(list(xs), attrs),
                                           tuple(data), name=leaf)
                    # NOTE: its attributes, for writing it out again (graph_export.py)
                    made.node_attrs = node.attr
    except TracejitError as err:
        raise type(err)(_naming(where, err.bare_message), location=user_location()) from None
    except (TypeError, ValueError, KeyError) as err:
        raise type(err)(_naming(where, str(err))) from None
    try:
        return graph.get_operation_by_name(full_name)
    except KeyError:
        raise GraphDefError(f"import_graph_def: {where} could not be made under its own name "
                         "(the name is taken)") from None


def _read_after_controls(graph: Graph, tensor: Tensor) -> Tensor:
    """A TF1 reference variable read by a node with control inputs is read when that
    node runs (after them), so it sees what they assigned: a new read op, made in the
    control scope, as ``tf.identity(v)`` inside ``control_dependencies`` makes one."""
    variable = getattr(tensor.op, "reads", None)
    if variable is None or tensor.op is not variable.op:
        return tensor
    with graph.name_scope(None):
        return variable.new_read(f"{variable.op.name}/read")


def _naming(where: str, message: str) -> str:
    return f"import_graph_def: {message}" if where in message else \
        f"import_graph_def: {where}: {message}"
