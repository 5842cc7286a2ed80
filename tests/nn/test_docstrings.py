"""The examples in the nn modules' docstrings run."""

import doctest
import importlib

import pytest

MODULES = ["tracejit.trace.nn_ops", "tracejit.nn.layers", "tracejit.compat.v1.layers",
           "tracejit.compat.v1.contrib"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted and not result.failed
