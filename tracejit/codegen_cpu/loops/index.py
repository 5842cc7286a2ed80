"""Index algebra for loop nests: where each element a kernel touches lives in memory.

A kernel iterates over a :class:`Domain`, an ordered list of loop dimensions (size > 1;
size-1 axes need no loop). The position of any value at the current iteration point is
a tuple of per-axis index expressions (:class:`Expr`) over the loop variables. Almost
all of them are *affine*, ``sum(c_k * v_k) + c0``: then the element offset is affine too,
LLVM sees a strided access, and an innermost stride of 1 or 0 vectorizes.

Index maps transform positions from a value's shape to its operand's shape:
broadcasting (implicit or ``broadcast_to``) drops or zeroes axes; ``transpose``,
``slice`` and ``reverse`` are affine; ``reshape`` (and ``expand_dims``/``squeeze``) is
``unravel(ravel(i))``, ``tile`` is ``i mod n``: floor division and remainder.

``a // d`` and ``a % d`` simplify back to affine forms when the terms of ``a`` whose
coefficients are not multiples of ``d`` provably stay in ``[0, d)``. When they do not
but a loop dimension could be split so that they would (``v`` of size 6 under ``// 3``
becomes ``3*v1 + v2``), the planner raises :class:`Refine` in refinement mode; the
kernel planner then splits that dimension of the domain and plans again. What is left
(e.g. a reshape of ``[2, 3]`` to ``[3, 2]``) is emitted as real divisions.

After planning, :func:`coalesce` merges adjacent loop dimensions that every access
walks contiguously (the NumPy iterator's rule), so a broadcast-free kernel is one flat
loop again.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Dim", "Domain", "Expr", "Affine", "Node", "Refine", "affine_var", "constant",
           "add", "scale", "floordiv", "mod", "ravel", "unravel", "reshape_index",
           "broadcast_index", "coalesce", "expr_dims"]

_IDS = itertools.count(1)


@dataclass(frozen=True)
class Dim:
    """One loop dimension: a unique id, its trip count, and a role (``"k"`` kept or
    ``"r"`` reduced; elementwise kernels keep everything)."""

    id: int
    size: int
    role: str = "k"


class Refine(Exception):  # noqa: N818 (a control-flow signal, not an error)
    """Split loop dimension ``dim`` into ``sizes`` (row-major) and plan again."""

    def __init__(self, dim: int, sizes: tuple[int, ...]):
        super().__init__(dim, sizes)
        self.dim, self.sizes = dim, sizes


class Domain:
    """The loop dimensions of a kernel, outermost first."""

    def __init__(self, dims: Sequence[Dim]):
        self.dims = tuple(dims)
        self.by_id = {d.id: d for d in self.dims}

    @classmethod
    def of_shape(cls, shape: Sequence[int], roles: Sequence[str] | None = None) -> Domain:
        roles = roles or ["k"] * len(shape)
        return cls([Dim(next(_IDS), n, r) for n, r in zip(shape, roles, strict=True)
                    if n != 1])

    def split(self, dim_id: int, sizes: Sequence[int]) -> Domain:
        out = []
        for d in self.dims:
            if d.id == dim_id:
                out.extend(Dim(next(_IDS), n, d.role) for n in sizes if n != 1)
            else:
                out.append(d)
        return Domain(out)

    def select(self, role: str | None) -> list[Dim]:
        return [d for d in self.dims if role is None or d.role == role]

    @property
    def size(self) -> int:
        return math.prod(d.size for d in self.dims)

    def __repr__(self) -> str:
        return "Domain(" + ", ".join(f"{d.role}{d.id}:{d.size}" for d in self.dims) + ")"


# ---- expressions ----------------------------------------------------------------------


class Expr:
    __slots__ = ()


@dataclass(frozen=True)
class Affine(Expr):
    """``sum(c * v_dim for dim, c in terms) + const``; terms sorted by dim id, c != 0."""

    terms: tuple[tuple[int, int], ...]
    const: int = 0


@dataclass(frozen=True)
class Node(Expr):
    """A non-affine index: ``op`` in ``div``, ``mod`` (by the int ``arg``) or ``add``."""

    op: str
    a: Expr
    arg: Expr | int


def constant(c: int) -> Affine:
    return Affine((), int(c))


ZERO = constant(0)


def affine_var(dim_id: int, coeff: int = 1) -> Affine:
    return Affine(((dim_id, coeff),), 0) if coeff else ZERO


def _affine(terms: dict[int, int], const: int) -> Affine:
    return Affine(tuple(sorted((k, c) for k, c in terms.items() if c)), const)


def add(a: Expr, b: Expr) -> Expr:
    if isinstance(a, Affine) and isinstance(b, Affine):
        terms = dict(a.terms)
        for k, c in b.terms:
            terms[k] = terms.get(k, 0) + c
        return _affine(terms, a.const + b.const)
    if b == ZERO:
        return a
    if a == ZERO:
        return b
    return Node("add", a, b)


def scale(a: Expr, c: int) -> Expr:
    if isinstance(a, Affine):
        return _affine({k: v * c for k, v in a.terms}, a.const * c)
    if c == 1:
        return a
    return Node("mul", a, c)


def _range(a: Affine, domain: Domain) -> tuple[int, int]:
    lo = hi = a.const
    for k, c in a.terms:
        span = c * (domain.by_id[k].size - 1)
        lo, hi = lo + min(0, span), hi + max(0, span)
    return lo, hi


def _split_by(a: Affine, d: int) -> tuple[Affine, Affine]:
    """(terms of ``a`` that are multiples of d) / d, and the rest (const reduced mod d)."""
    q0, r0 = divmod(a.const, d)
    quot = {k: c // d for k, c in a.terms if c % d == 0}
    rest = {k: c for k, c in a.terms if c % d != 0}
    return _affine(quot, q0), _affine(rest, r0)


def _divide(a: Expr, d: int, domain: Domain, refine: bool) -> tuple[Expr, Expr] | None:
    """``(a // d, a % d)`` as affine forms when provable; else None (or Refine)."""
    if d == 1:
        return a, ZERO
    if not isinstance(a, Affine):
        return None
    quot, rest = _split_by(a, d)
    lo, hi = _range(rest, domain)
    if 0 <= lo and hi < d:
        return quot, rest
    if refine:
        for k, c in rest.terms:
            size = domain.by_id[k].size
            if 0 < c < d and d % c == 0:
                m = d // c
                if size > m and size % m == 0:
                    raise Refine(k, (size // m, m))
    return None


def floordiv(a: Expr, d: int, domain: Domain, refine: bool = False) -> Expr:
    found = _divide(a, d, domain, refine)
    return found[0] if found else Node("div", a, d)


def mod(a: Expr, d: int, domain: Domain, refine: bool = False) -> Expr:
    found = _divide(a, d, domain, refine)
    return found[1] if found else Node("mod", a, d)


# ---- positions ------------------------------------------------------------------------


def strides(shape: Sequence[int]) -> list[int]:
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= n
    return out[::-1]


def ravel(index: Sequence[Expr], shape: Sequence[int]) -> Expr:
    """The row-major flat offset of a position in ``shape``."""
    flat: Expr = ZERO
    for e, s, n in zip(index, strides(shape), shape, strict=True):
        if n != 1:
            flat = add(flat, scale(e, s))
    return flat


def unravel(flat: Expr, shape: Sequence[int], domain: Domain, refine: bool) -> tuple:
    out = []
    for s, n in zip(strides(shape), shape, strict=True):
        if n == 1:
            out.append(ZERO)
        else:
            out.append(mod(floordiv(flat, s, domain, refine), n, domain, refine))
    return tuple(out)


def reshape_index(index: Sequence[Expr], shape: Sequence[int], new_shape: Sequence[int],
                  domain: Domain, refine: bool) -> tuple:
    """A position in ``shape`` as a position in ``new_shape`` (same size, row-major)."""
    if tuple(shape) == tuple(new_shape):
        return tuple(index)
    return unravel(ravel(index, shape), new_shape, domain, refine)


def broadcast_index(index: Sequence[Expr], shape: Sequence[int],
                    operand_shape: Sequence[int]) -> tuple:
    """A position in a broadcast result as a position in the (smaller) operand."""
    lead = len(shape) - len(operand_shape)
    return tuple(ZERO if n == 1 else index[i + lead] for i, n in enumerate(operand_shape))


def domain_index(dims: Sequence[Dim], shape: Sequence[int], domain: Domain,
                 refine: bool) -> tuple:
    """The position in ``shape`` of the current point of loop dimensions ``dims``."""
    sizes = [d.size for d in dims]
    flat: Expr = ZERO
    for d, s in zip(dims, strides(sizes), strict=True):
        flat = add(flat, affine_var(d.id, s))
    if [n for n in shape if n != 1] == sizes:
        it = iter(dims)
        return tuple(ZERO if n == 1 else affine_var(next(it).id) for n in shape)
    return unravel(flat, shape, domain, refine)


def expr_dims(e: Expr) -> set[int]:
    if isinstance(e, Affine):
        return {k for k, _ in e.terms}
    out = expr_dims(e.a)
    if isinstance(e.arg, Expr):
        out |= expr_dims(e.arg)
    return out


# ---- coalescing -------------------------------------------------------------------------


def coalesce(domain: Domain, exprs: Sequence[Expr]) -> tuple[Domain, dict[int, tuple]]:
    """Merge adjacent same-role dimensions that every affine expression walks as one
    (``c_outer == c_inner * size_inner``) and that no non-affine expression uses.

    Returns the new domain and ``{old dim id: (new dim id, divisor, modulus)}``: the old
    variable is ``(new // divisor) % modulus`` (only ever used for affine expressions,
    where it collapses to a coefficient, see :func:`substitute`)."""
    blocked = set()
    affine = []
    for e in exprs:
        if isinstance(e, Affine):
            affine.append(dict(e.terms))
        else:
            blocked |= expr_dims(e)
    groups: list[list[Dim]] = []
    for d in domain.dims:
        if groups:
            prev = groups[-1][-1]
            ok = (prev.role == d.role and prev.id not in blocked and d.id not in blocked
                  and all(t.get(prev.id, 0) == t.get(d.id, 0) * d.size for t in affine))
            if ok:
                groups[-1].append(d)
                continue
        groups.append([d])
    mapping: dict[int, tuple] = {}
    dims = []
    for group in groups:
        if len(group) == 1:
            dims.append(group[0])
            continue
        new = Dim(next(_IDS), math.prod(d.size for d in group), group[0].role)
        dims.append(new)
        inner = 1
        for d in reversed(group):
            mapping[d.id] = (new.id, inner, d.size)
            inner *= d.size
    return Domain(dims), mapping


def substitute(e: Expr, mapping: dict[int, tuple]) -> Expr:
    """Rewrite ``e`` over a coalesced domain (see :func:`coalesce`)."""
    if not mapping:
        return e
    if isinstance(e, Affine):
        terms: dict[int, int] = {}
        for k, c in e.terms:
            if k in mapping:
                new, divisor, _ = mapping[k]
                # NOTE: coalesce checked c_outer == c_inner * size_inner, so the merged
                # variable's coefficient is the innermost member's: c / divisor.
                terms[new] = c // divisor if c % divisor == 0 else None
            else:
                terms[k] = c
        if None not in terms.values():
            # Every member of a merged group contributes the same term; keep one.
            return _affine(terms, e.const)
        raise AssertionError(f"cannot rewrite {e} over a coalesced domain")
    arg = substitute(e.arg, mapping) if isinstance(e.arg, Expr) else e.arg
    return Node(e.op, substitute(e.a, mapping), arg)
