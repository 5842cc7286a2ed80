"""The examples in the passes' docstrings run."""

import doctest
import importlib

import pytest

MODULES = ["tracejit.ir.ops_kernel", "tracejit.passes.cse", "tracejit.passes.dce",
           "tracejit.passes.fold", "tracejit.passes.fuse", "tracejit.passes.memory",
           "tracejit.passes.pipeline", "tracejit.passes.simplify"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted and not result.failed
