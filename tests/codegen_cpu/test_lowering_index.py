"""The index algebra of the loop nests: affine positions, splitting loop dimensions
where a reshape or tile needs it, and coalescing dimensions back into flat loops."""

from __future__ import annotations

from tracejit.codegen_cpu.kernels.table import supports, unsupported_reason
from tracejit.codegen_cpu.loops import index as ix
from tracejit.codegen_cpu.loops.pointwise import plan_domain
from tracejit.ir import GraphBuilder
from tracejit.ir.core import TensorType
from tracejit.ir.opdef import OpDef


def test_reshape_that_splits_a_loop_dimension_refines_the_domain():
    def plan(dom, refine):
        at = ix.domain_index(dom.dims, (6,), dom, refine)
        return list(ix.reshape_index(at, (6,), (2, 3), dom, refine))

    domain, exprs = plan_domain(ix.Domain.of_shape((6,)), plan)
    assert [d.size for d in domain.dims] == [2, 3]
    assert all(isinstance(e, ix.Affine) for e in exprs)


def test_reshape_without_common_refinement_divides():
    def plan(dom, refine):
        at = ix.domain_index(dom.dims, (2, 3), dom, refine)
        return list(ix.reshape_index(at, (2, 3), (3, 2), dom, refine))

    domain, exprs = plan_domain(ix.Domain.of_shape((2, 3)), plan)
    assert any(isinstance(e, ix.Node) for e in exprs)


def test_tile_splits_the_repeated_axis():
    def plan(dom, refine):
        (e,) = ix.domain_index(dom.dims, (12,), dom, refine)
        return [ix.mod(e, 4, dom, refine)]

    domain, exprs = plan_domain(ix.Domain.of_shape((12,)), plan)
    assert [d.size for d in domain.dims] == [3, 4]
    assert exprs == [ix.affine_var(domain.dims[1].id)]


def test_coalesce_merges_contiguous_and_keeps_broadcast_axes():
    dom = ix.Domain.of_shape((4, 5, 6))
    a, b, c = (d.id for d in dom.dims)
    flat = ix.Affine(((a, 30), (b, 6), (c, 1)))
    row_bias = ix.Affine(((c, 1),))                  # broadcast over the first two axes
    merged, mapping = ix.coalesce(dom, [flat, row_bias])
    assert [d.size for d in merged.dims] == [20, 6]
    assert sorted(c for _, c in ix.substitute(flat, mapping).terms) == [1, 6]
    merged, _ = ix.coalesce(dom, [flat])
    assert [d.size for d in merged.dims] == [120]


def test_simplification_of_division():
    dom = ix.Domain.of_shape((4, 3))
    a, b = (d.id for d in dom.dims)
    e = ix.Affine(((a, 3), (b, 1)))
    assert ix.floordiv(e, 3, dom) == ix.affine_var(a)
    assert ix.mod(e, 3, dom) == ix.affine_var(b)
    assert ix.mod(e, 12, dom) == e


def test_supports_reports_unknown_ops():
    fake = OpDef("mystery", infer=lambda types, params: (types[0],), impl=lambda x: x,
                 arity=1)
    b = GraphBuilder()
    x = b.add_input(TensorType((3,), __import__("tracejit").ir.dtypes.float32))
    b.emit(fake, [x])
    (eqn,) = b.eqns
    assert not supports(eqn)
    assert "mystery" in unsupported_reason(eqn)


def test_interface_docstring_example_runs():
    import doctest

    from tracejit.codegen_cpu.kernels import table as lower_kernels
    result = doctest.testmod(lower_kernels)
    assert result.attempted and not result.failed
