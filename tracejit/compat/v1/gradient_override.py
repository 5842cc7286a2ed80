"""``tf.RegisterGradient``, ``tf.NotDifferentiable`` and ``Graph.gradient_override_map``:
TF1 code that replaces an op's gradient (guided backprop's ``{"Relu": "GuidedRelu"}``,
the straight-through estimator's ``{"Sign": "Identity"}`` or ``{"Round": "STE"}``).

An op made inside ``gradient_override_map({"Sign": "Name"})`` remembers the map. When
``tf.gradients`` is called, each such op among the ancestors of ``ys`` gets its gradient
function called, as TensorFlow calls it then: ``fn(op, grad)`` (``fn(op, *grads)`` for
several outputs) with ``op.inputs``/``op.outputs`` the op's tensors and ``grad`` a
tensor standing for the incoming gradient. The ops it creates form a region
(regions.py) that the step replays when autodiff reaches the op: the op is replayed as
tracejit's ``custom_gradient`` whose rule runs that region with the gradient's value.
So the gradient is the user's graph, computed in the same compiled step.

The names are TensorFlow's op types: ``Relu``, ``Sign``, ``Round``, ``Identity``, and
for ops whose recorded type differs, TensorFlow's (``MatMul`` for ``tf.matmul``,
``Sum`` for ``tf.reduce_sum``; graph_def_ops.TF_TYPE_OF_RECORDED). A map to one of a few
built-in gradient names (``Identity``, ``StopGradient``, ``Relu``, ``Sigmoid``,
``Tanh``, ``Square``, ``Exp``, ``Neg``) uses TensorFlow's gradient of that op type.
"""

from __future__ import annotations

from collections.abc import Callable

from ...ir.source import user_location
from ...trace import pytree
from ...trace.autodiff import custom_gradient
from .graph import Operation, Tensor
from .graph_def_ops import TF_TYPE_OF_RECORDED
from .ops import BEFORE_GRADIENTS, graph_arg, ops
from .regions import Region, record
from .replay import ancestor_ops

__all__ = ["RegisterGradient", "NotDifferentiable", "no_gradient", "prepare_overrides"]

# name -> fn(op, *grads) -> gradients (None: not differentiable)
_REGISTRY: dict[str, Callable | None] = {}
_WHERE: dict[str, str] = {}             # name -> where it was registered, for messages


class RegisterGradient:
    """Decorator: ``@tf.RegisterGradient("Name")`` registers ``fn(op, grad)`` as the
    gradient function ``Name`` (for ``gradient_override_map``)."""

    def __init__(self, op_type: str):
        if not isinstance(op_type, str):
            raise TypeError("op_type must be a string")
        self._op_type = op_type

    def __call__(self, fn: Callable) -> Callable:
        _register(self._op_type, fn)
        return fn


def NotDifferentiable(op_type: str) -> None:  # noqa: N802 - TensorFlow's name
    """Register ``op_type`` as having no gradient (every input gets None)."""
    _register(op_type, None)


no_gradient = NotDifferentiable


def _register(name: str, fn: Callable | None) -> None:
    if name in _REGISTRY:
        raise KeyError(f"Registering two gradient with name '{name}'! (Previous "
                       f"registration was in {_WHERE[name]})")
    _REGISTRY[name] = fn
    _WHERE[name] = str(user_location())


def _zeros_like_inputs(op, *grads):
    return [None] * len(op.inputs)


# TensorFlow's gradients of a few op types, for maps onto their names
_BUILT_IN: dict[str, Callable] = {
    "Identity": lambda op, grad: grad,
    "StopGradient": _zeros_like_inputs,
    "Relu": lambda op, grad: grad * ops["cast"](op.outputs[0] > 0, grad.dtype),
    "Sigmoid": lambda op, grad: grad * op.outputs[0] * (1.0 - op.outputs[0]),
    "Tanh": lambda op, grad: grad * (1.0 - op.outputs[0] * op.outputs[0]),
    "Square": lambda op, grad: grad * 2.0 * op.inputs[0],
    "Exp": lambda op, grad: grad * op.outputs[0],
    "Neg": lambda op, grad: -grad,
}


def _gradient_function(op: Operation) -> tuple[str, Callable] | None:
    """The overriding gradient function of ``op`` (name, fn), if its map names one."""
    overrides = op.gradient_overrides
    if not overrides:
        return None
    name = overrides.get(op.type) or overrides.get(TF_TYPE_OF_RECORDED.get(op.type, ""))
    if name is None:
        return None
    if name in _REGISTRY:
        return name, _REGISTRY[name] or _zeros_like_inputs
    if name in _BUILT_IN:
        return name, _BUILT_IN[name]
    raise LookupError(f"No gradient defined for operation '{op.name}' (op type: {op.type}): "
                      f"gradient_override_map names '{name}', which no "
                      "@tf.RegisterGradient registered")


def _record_gradient(op: Operation, name: str, fn: Callable) -> Region:
    """Call ``fn(op, *grads)`` with stand-ins for the gradients; its ops are a region."""
    stand_ins = [(t.shape, t.dtype, f"{op.name}_grad_{i}") for i, t in enumerate(op.outputs)]

    def call(grads):
        try:
            result = fn(op, *grads)
        except Exception as exc:
            raise type(exc)(f"the gradient function '{name}' of {op.name} ({op.type}) "
                            f"failed: {exc}") from exc
        result = list(result) if isinstance(result, (list, tuple)) else [result]
        if len(result) != len(op.inputs):
            raise ValueError(f"the gradient function '{name}' of {op.name} returned "
                             f"{len(result)} gradients for the op's {len(op.inputs)} "
                             "inputs")
        return [None if g is None else graph_arg(g) for g in result]

    return record(op.graph, f"the gradient function '{name}' of {op.name}", call, stand_ins)


def _rule(op: Operation, region: Region) -> Callable:
    """The replay of ``op`` with ``region`` as its gradient (Operation.gradient_rule):
    ``forward()`` computes the op's results, ``values`` holds the step's values."""
    def replay(forward, values):
        def with_gradient(*_):
            result = forward()
            several = isinstance(result, (list, tuple))

            def grad_fn(*cts):
                return pytree.unflatten(region.treedef, iter(region.run(values, cts)))
            return (tuple(result) if several else result), grad_fn

        out = custom_gradient(with_gradient)(*[values[id(t)] for t in op.inputs])
        return list(out) if isinstance(out, tuple) else out
    return replay


def prepare_overrides(ys) -> tuple[list[Tensor], list[Operation]]:
    """Before ``tf.gradients(ys, ...)``: record the overriding gradient of every op
    among the ancestors of ``ys`` made under a map that names one. Returns the outer
    tensors those gradients read and the host ops among them (the Gradients op needs
    both, so the step computes them and replays the host ops' rules)."""
    roots = [graph_arg(y).op for y in ys if y is not None]
    needed: list[Tensor] = []
    hosts: list[Operation] = []
    for op in sorted(ancestor_ops(roots, set()), key=lambda o: o.order):
        if op.gradient_overrides is None:
            continue
        region = getattr(op, "gradient_region", None)
        if region is None:
            found = _gradient_function(op)
            if found is None:
                continue
            # NOTE: recorded once; every later tf.gradients through the op reuses it
            region = op.gradient_region = _record_gradient(op, *found)
            op.gradient_rule = _rule(op, region)
        needed += region.externals + list(op.inputs)
        if getattr(op, "host_compute", None) is not None:
            hosts.append(op)
    return needed, hosts


BEFORE_GRADIENTS.append(prepare_overrides)
