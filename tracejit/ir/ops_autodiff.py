"""``custom_vjp``: the op that carries a user's gradient rule (``custom_gradient``).

Its inputs are the differentiable inputs ``xs`` followed by the forward results
``ys``; its outputs equal ``ys``. Autodiff asks the rule registered under the
``rule`` parameter for the inputs' cotangents and sends none into ``ys``' own
computation, so the user's rule replaces the traced one. Passes treat it as the
identity on ``ys`` once gradients are built.
"""

from __future__ import annotations

from collections.abc import Callable

from .core import TensorType
from .errors import ParamError
from .opdef import ParamSpec, declare, int_param

__all__ = ["CUSTOM_VJP", "CUSTOM_VJP_RULES", "register_custom_vjp"]

# rule id -> fn(g: SymBuilder, xs: list[Sym], cts: list[Sym]) -> list[Sym | None]
CUSTOM_VJP_RULES: dict[int, Callable] = {}


def register_custom_vjp(rule: Callable) -> int:
    key = len(CUSTOM_VJP_RULES) + 1
    CUSTOM_VJP_RULES[key] = rule
    return key


def _infer(types, params):
    count = params["num_outputs"]
    if not 0 < count <= len(types):
        raise ParamError(f"num_outputs={count} for {len(types)} inputs", op="custom_vjp")
    return tuple(TensorType(t.shape, t.dtype) for t in types[-count:])


def _impl(*arrays, num_outputs, rule):
    return tuple(a.copy() for a in arrays[-num_outputs:])


def _vjp(g, ins, outs, cts, params):
    rule = CUSTOM_VJP_RULES.get(params["rule"])
    if rule is None:
        raise ParamError(f"no gradient rule registered under {params['rule']}",
                         op="custom_vjp")
    count = params["num_outputs"]
    xs = ins[:-count]
    grads = list(rule(g, xs, cts))
    if len(grads) != len(xs):
        raise ParamError(f"the custom gradient returned {len(grads)} values for "
                         f"{len(xs)} inputs", op="custom_vjp")
    return grads + [None] * count


CUSTOM_VJP = declare("custom_vjp", arity=None, infer=_infer, impl=_impl, vjp=_vjp,
                     params={"num_outputs": ParamSpec(int_param),
                             "rule": ParamSpec(int_param)},
                     doc="custom_vjp[num_outputs, rule](*xs, *ys) = ys, differentiated by "
                         "a registered rule")
