"""Mixed precision while tracing: which dtype each op computes in under a policy.

A policy (``mixed_bfloat16``, ``mixed_float16``) names a 16-bit *compute* dtype. While
it is in force (``tj.mixed_precision.set_global_policy`` or the ``autocast`` scope),
:func:`tracing.bind` asks :func:`autocast_dtype` before it records an op, and casts
the op's float arguments to the answer, as ``torch.autocast`` does:

* the products -- LINALG ops (``matmul``) and the convolutions with their gradients --
  take float32 operands in the compute dtype: they run on 16-bit data and accumulate in
  float32 (the backends compute halves in float32 and round the result once), so
  their results are 16-bit;
* REDUCE and TRANSCENDENTAL ops (sums, means, softmax's ``exp``, the loss's ``log``)
  take 16-bit operands in float32: the numerically delicate parts stay wide;
* everything else computes in the dtype promotion gives (a 16-bit product plus a
  float32 bias is float32).

Variables keep their dtype (float32 *master weights*): their gradients arrive through
the casts' gradients in float32, and the optimizer updates them in float32. Only code
traced while a policy is in force is affected: set it before the first call of a
``@jit`` function (a compiled function keeps its program).
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass

from ..ir import dtypes as dt
from ..ir import ops
from ..ir.opdef import OpDef, Tag

__all__ = ["Policy", "set_global_policy", "global_policy", "autocast", "autocast_dtype",
           "POLICY_NAMES"]

POLICY_NAMES = {"float32": None, "mixed_bfloat16": dt.bfloat16,
                "mixed_float16": dt.float16}
_PRODUCTS = frozenset({ops.CONV2D, ops.CONV2D_BACKPROP_INPUT, ops.CONV2D_BACKPROP_FILTER})


@dataclass(frozen=True)
class Policy:
    """A mixed-precision policy, as Keras names them: ``"mixed_bfloat16"`` and
    ``"mixed_float16"`` compute products in 16 bits with float32 variables;
    ``"float32"`` computes everything as written."""

    name: str

    def __post_init__(self):
        if self.name not in POLICY_NAMES:
            raise ValueError(f"unknown mixed-precision policy {self.name!r}; expected one "
                             f"of {', '.join(POLICY_NAMES)}")

    @property
    def compute_dtype(self) -> dt.DType:
        return POLICY_NAMES[self.name] or dt.float32

    @property
    def variable_dtype(self) -> dt.DType:
        return dt.float32

    def __repr__(self) -> str:
        return f'<Policy "{self.name}">'


_GLOBAL = [Policy("float32")]
_SCOPE: contextvars.ContextVar[Policy | None] = contextvars.ContextVar(
    "tracejit_autocast", default=None)


def _as_policy(policy) -> Policy:
    if isinstance(policy, Policy):
        return policy
    if policy in ("bfloat16", dt.bfloat16):
        return Policy("mixed_bfloat16")
    if policy in ("float16", dt.float16):
        return Policy("mixed_float16")
    return Policy(str(policy))


def set_global_policy(policy) -> None:
    """Make ``policy`` (a Policy or its name) the one code is traced under."""
    _GLOBAL[0] = _as_policy(policy)


def global_policy() -> Policy:
    return _GLOBAL[0]


@contextlib.contextmanager
def autocast(policy="mixed_bfloat16"):
    """Trace the block under ``policy`` (a Policy, its name, or ``"bfloat16"`` /
    ``"float16"``), whatever the global one is."""
    token = _SCOPE.set(_as_policy(policy))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def current_policy() -> Policy:
    return _SCOPE.get() or _GLOBAL[0]


def autocast_dtype(op: OpDef) -> tuple[dt.DType, tuple[dt.DType, ...]] | None:
    """``(target, sources)``: cast ``op``'s float arguments of a dtype in ``sources`` to
    ``target`` under the policy in force; None: record it as it is."""
    policy = _SCOPE.get() or _GLOBAL[0]
    if policy.name == "float32":        # NOTE: every op recorded asks: the cheap test first
        return None
    compute = policy.compute_dtype
    if op.has(Tag.LINALG) or op in _PRODUCTS:
        return compute, (dt.float32,)
    if op.has(Tag.REDUCE) or op.has(Tag.TRANSCENDENTAL):
        return dt.float32, (dt.bfloat16, dt.float16)
    return None
