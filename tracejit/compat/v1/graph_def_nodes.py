"""GraphDef nodes that are not computations: placeholders, constants, variables and their
assignments, no-ops. Each maker builds the node with the ``tf.*`` function a user would
call, inside ``graph_import.py``'s exact name scope (so the op gets the node's name); the
computing op types are graph_def_ops.py's table.

Variables: a TF1 reference variable is a ``VariableV2`` node that ``Assign`` nodes
write; a resource variable (TensorFlow 2's default, also under ``tf.compat.v1``) is a
``VarHandleOp`` that ``ReadVariableOp`` / ``AssignVariableOp`` nodes use. Both become
one tracejit ``tf.Variable`` whose op is the variable node; the handle a node passes is
resolved while importing, so an assignment or read uses the variable itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...ir.dtypes import DType, float32
from .errors import UnimplementedError
from .graph import Graph, Tensor
from .graph_def_ops import Attrs
from .host_ops import host_op
from .ops import (
    constant,
    gradients,
    no_op,
    placeholder,
    placeholder_with_default,
    random_normal,
    random_uniform,
    truncated_normal,
)
from .strings import string
from .variables import Variable, is_variable_initialized

#: A node tracejit wrote for an op it cannot describe (graph_export.py), and the
#: dtypes of its outputs.
OPAQUE_ATTR = "_tracejit_opaque"
OUTPUT_TYPES_ATTR = "_tracejit_output_types"
#: A ``tf.gradients`` op: how many of its inputs are ``ys``, ``xs`` and ``grad_ys``
#: (-1: grad_ys was None), in that order.
GRADIENT_COUNTS_ATTR = "_tracejit_gradient_counts"


@dataclass
class NodeContext:
    """What a maker needs: the graph, the op's name inside the current (exact) scope,
    the node's full name, its data inputs as graph tensors, its attributes."""
    graph: Graph
    leaf: str
    full_name: str
    op_type: str
    inputs: list[Tensor]
    attrs: Attrs


def variable_of(tensor: Tensor, ctx: NodeContext) -> Variable:
    """The variable a ref or handle input stands for."""
    found = getattr(tensor.op, "reads", None)
    if not isinstance(found, Variable):
        raise ValueError(f"{ctx.attrs.where}: its input {tensor.name} is not a variable "
                         f"(a {tensor.op.type}); {ctx.op_type} needs a VariableV2 or "
                         "VarHandleOp")
    return found


def _placeholder(ctx: NodeContext):
    return placeholder(ctx.attrs.get("dtype"), ctx.attrs.get("shape"), name=ctx.leaf)


def _placeholder_with_default(ctx: NodeContext):
    return placeholder_with_default(ctx.inputs[0], ctx.attrs.get("shape"), name=ctx.leaf)


def _const(ctx: NodeContext):
    value = ctx.attrs.get("value")
    dtype = ctx.attrs.get("dtype")
    if dtype is string:
        return constant(value, dtype=string, name=ctx.leaf)
    return constant(value.astype(dtype.np_dtype, copy=False), dtype=dtype, name=ctx.leaf)


def _variable(ctx: NodeContext):
    shape = ctx.attrs.get("shape")
    if shape is None or None in shape:
        raise ValueError(f"{ctx.attrs.where}: a variable needs a fully defined shape, got "
                         f"{shape}")
    return Variable.without_initializer(ctx.full_name, shape, ctx.attrs.get("dtype"),
                                        ctx.op_type)


def _assign(method: str):
    def make(ctx: NodeContext):
        variable = variable_of(ctx.inputs[0], ctx)
        return getattr(variable, method)(ctx.inputs[1], name=ctx.leaf)
    return make


def _read(ctx: NodeContext):
    return variable_of(ctx.inputs[0], ctx).new_read(ctx.full_name, absolute=True)


def _is_initialized(ctx: NodeContext):
    return is_variable_initialized(variable_of(ctx.inputs[0], ctx), name=ctx.leaf)


def _gradients(ctx: NodeContext):
    counts = ctx.attrs.get(GRADIENT_COUNTS_ATTR)
    if counts is None or len(counts) != 3 or \
            counts[0] + counts[1] + max(counts[2], 0) != len(ctx.inputs):
        raise ValueError(f"a Gradients node needs {GRADIENT_COUNTS_ATTR} (the numbers of "
                         "ys, xs and grad_ys among its inputs)")
    ys, xs = ctx.inputs[:counts[0]], ctx.inputs[counts[0]:counts[0] + counts[1]]
    grad_ys = None if counts[2] < 0 else ctx.inputs[counts[0] + counts[1]:]
    return gradients(ys, xs, grad_ys, name=ctx.leaf)


def _no_op(ctx: NodeContext):
    return no_op(name=ctx.leaf)


def opaque_node(ctx: NodeContext, outputs: int | None = None):
    """An op that keeps its place, inputs and outputs but whose running is an error
    naming it; the ops that do not need it run. Two kinds: an op tracejit wrote without
    saying how it computes (an optimizer's update, a random op, a branch or loop: its
    node has OPAQUE_ATTR), and, in a meta graph, an op type tracejit does not implement
    (``outputs``: how many the graph reads), or one reading such an op."""
    if OPAQUE_ATTR in ctx.attrs:
        reason = ("was imported from a graph tracejit wrote, which records what it "
                  "computes only for tf.* function calls, placeholders, constants and "
                  "variables")
        dtypes = ctx.attrs.get(OUTPUT_TYPES_ATTR) or []
    else:
        reason = (f"was imported from a meta graph, and tracejit does not implement op type "
                  f"{ctx.op_type!r} (or this op reads one that it does not implement)")
        dtype = next((ctx.attrs.get(key) for key in ("T", "dtype", "DstT", "out_type")
                      if key in ctx.attrs), float32)
        dtypes = [dtype if isinstance(dtype, DType) else float32] * (outputs or 0)
    shapes = ctx.attrs.get("_output_shapes") or []
    shapes = (list(shapes) + [None] * len(dtypes))[:len(dtypes)]

    def refuse(session, values):
        raise UnimplementedError(f"{ctx.full_name} ({ctx.op_type}) {reason}; build this op "
                                 "again in Python")
    return host_op(ctx.op_type, refuse, ctx.inputs, list(zip(dtypes, shapes, strict=True)),
                   name=ctx.leaf)


def _random(fn):
    def make(ctx: NodeContext):
        seed = ctx.attrs.get("seed2", 0) or ctx.attrs.get("seed", 0)
        return fn(ctx.inputs[0], dtype=ctx.attrs.get("dtype"), seed=seed or None,
                  name=ctx.leaf)
    return make


#: Makers by TensorFlow op type (the node is made with the graph's current control
#: dependencies, which are the node's ``^inputs``).
NODE_MAKERS: dict[str, Callable[[NodeContext], object]] = {
    "Placeholder": _placeholder,
    "PlaceholderV2": _placeholder,
    "PlaceholderWithDefault": _placeholder_with_default,
    "Const": _const,
    "VariableV2": _variable,
    "Variable": _variable,
    "VarHandleOp": _variable,
    "Assign": _assign("assign"),
    "AssignAdd": _assign("assign_add"),
    "AssignSub": _assign("assign_sub"),
    "AssignVariableOp": _assign("assign"),
    "AssignAddVariableOp": _assign("assign_add"),
    "AssignSubVariableOp": _assign("assign_sub"),
    "ReadVariableOp": _read,
    "VarIsInitializedOp": _is_initialized,
    "IsVariableInitialized": _is_initialized,
    "NoOp": _no_op,
    "Gradients": _gradients,
    # NOTE: tracejit's random numbers, not TensorFlow's: the same distributions
    "RandomUniform": _random(random_uniform),
    "RandomStandardNormal": _random(random_normal),
    "TruncatedNormal": _random(truncated_normal),
}
