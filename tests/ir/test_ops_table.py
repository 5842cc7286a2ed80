"""The op table as a whole: every op has examples, every example runs, tags are sane."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from tracejit.ir import OPS, Tag, ops
from tracejit.ir.errors import ParamError

from .op_examples import BY_NAME, OP_EXAMPLES, random_array, run_op

# The kernel op (another work item) may be absent; its example is added when present.
NOT_OURS = {"kernel"}

MODULE_TAG = {"ops_reduce": Tag.REDUCE, "ops_movement": Tag.MOVEMENT,
              "ops_linalg": Tag.LINALG, "ops_creation": Tag.CREATION,
              "ops_random": Tag.RANDOM}


def test_every_op_has_an_example():
    missing = sorted(set(OPS) - set(BY_NAME) - NOT_OURS)
    assert not missing, f"ops without an entry in OP_EXAMPLES: {missing}"


def test_examples_are_keyed_by_the_registered_op_objects():
    assert all(OPS.get(op.name) is op for op in OP_EXAMPLES)
    assert set(BY_NAME) == {op.name for op in OP_EXAMPLES}


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_examples_run_through_the_interpreter(name):
    """Each example builds, infers, and its reference returns the declared type."""
    rng = np.random.default_rng(0)
    for types, params in BY_NAME[name]:
        args = [random_array(rng, t.shape, t.dtype) for t in types]
        result = run_op(OPS[name], args, params)
        results = result if isinstance(result, tuple) else (result,)
        assert all(isinstance(r, np.ndarray) for r in results)


@pytest.mark.parametrize("module, tag", sorted(MODULE_TAG.items(), key=lambda kv: kv[0]))
def test_module_exports_its_ops_with_their_tag(module, tag):
    mod = importlib.import_module(f"tracejit.ir.{module}")
    assert mod.__all__, module
    for name in mod.__all__:
        op = getattr(mod, name)
        assert op is OPS[op.name] and name == op.name.upper()
        assert getattr(ops, name) is op            # ops.py re-exports it
        assert op.has(tag) and not op.has(Tag.STATEFUL)


def test_star_imports_export_only_ops():
    mods = ["ops_elementwise", *MODULE_TAG]
    for module in mods:
        mod = importlib.import_module(f"tracejit.ir.{module}")
        assert all(name.isupper() and getattr(mod, name).name in OPS for name in mod.__all__)
    assert ops.ANY is OPS["any"] and ops.ALL is OPS["all"]


def test_unknown_and_missing_params_raise():
    with pytest.raises(ParamError, match="sum.*unknown"):
        OPS["sum"].make_params({"axes": (0,), "axis": 0})
    with pytest.raises(ParamError, match="reshape.*missing"):
        OPS["reshape"].make_params({})
