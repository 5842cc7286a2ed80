"""docs/ops.md is generated from the op table and must match it."""

from pathlib import Path

from tracejit.ir.opdocs import render

DOCS = Path(__file__).resolve().parents[2] / "docs" / "ops.md"


def test_ops_doc_is_current():
    assert DOCS.read_text() == render(), (
        "docs/ops.md is stale: run `python -m tracejit.ir.opdocs > docs/ops.md`")
