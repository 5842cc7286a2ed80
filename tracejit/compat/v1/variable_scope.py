"""TF1 ``variable_scope`` and ``get_variable``: scoped variable names, reuse, scope
defaults (initializer, regularizer, partitioner, dtype, custom getters).

``get_variable`` makes a variables.Variable under the current scope's name or, where
the scope reuses, returns the one already made (AUTO_REUSE: either).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import numpy as np

from ...ir import dtypes as dt
from .graph import Tensor, get_default_graph
from .partitioned import partitioned_variable
from .variables import GraphKeys, Variable

AUTO_REUSE = "auto_reuse"


@dataclass
class VariableScope:
    """What ``get_variable`` inside the scope defaults to: its ``initializer``,
    ``regularizer`` (applied to each variable it creates), ``partitioner``, ``dtype``,
    and a ``custom_getter`` that every ``get_variable`` goes through."""

    name: str
    reuse: object = None
    initializer: object = None
    dtype: object = dt.float32
    regularizer: object = None
    partitioner: object = None
    custom_getter: object = None

    @property
    def original_name_scope(self) -> str:
        return self.name + "/" if self.name else ""

    def reuse_variables(self) -> None:
        self.reuse = True

    def set_initializer(self, initializer) -> None:
        self.initializer = initializer

    def set_regularizer(self, regularizer) -> None:
        self.regularizer = regularizer

    def set_partitioner(self, partitioner) -> None:
        self.partitioner = partitioner

    def set_custom_getter(self, custom_getter) -> None:
        self.custom_getter = custom_getter

    def set_dtype(self, dtype) -> None:
        self.dtype = dtype


def get_variable_scope() -> VariableScope:
    stack = get_default_graph().variable_scope_stack
    return stack[-1] if stack else VariableScope("")


def unique_scope_name(default_name: str, reuse=None) -> str:
    """A fresh scope name for ``default_name`` inside the current scope: ``Conv``, then
    ``Conv_1``, ... (counted per enclosing scope, skipping names whose variables exist),
    as TensorFlow numbers scopes and layers opened without a name."""
    graph = get_default_graph()
    counts = graph.__dict__.setdefault("_layer_scope_counts", {})
    parent = get_variable_scope().name
    prefix = f"{parent}/" if parent else ""
    while True:
        n = counts.get(prefix + default_name, 0)
        counts[prefix + default_name] = n + 1
        scope = default_name if n == 0 else f"{default_name}_{n}"
        taken = any(k.startswith(f"{prefix}{scope}/") for k in graph.variable_store)
        if not taken or reuse:
            return scope


def _chain_getters(custom_getter, outer_getter):
    """A scope's custom getter inside another's: the inner one is called first, with a
    getter that goes through the outer one (TensorFlow's order)."""
    if outer_getter is None or custom_getter is None:
        return custom_getter or outer_getter

    def chained(getter, *args, **kwargs):
        return custom_getter(functools.partial(outer_getter, getter), *args, **kwargs)
    return chained


@contextlib.contextmanager
def variable_scope(name_or_scope, default_name=None, values=None, initializer=None,
                   regularizer=None, caching_device=None, partitioner=None,
                   custom_getter=None, reuse=None, dtype=None, **unused):
    graph = get_default_graph()
    parent = get_variable_scope()
    if name_or_scope is None and default_name is None:
        raise ValueError("variable_scope needs a name_or_scope or a default_name")
    if custom_getter is not None and not callable(custom_getter):
        raise ValueError(f"custom_getter must be callable, got {custom_getter!r}")
    if isinstance(name_or_scope, VariableScope):
        base = name_or_scope          # reopened: its own defaults, not the parent's
        name = base.name
        reuse = base.reuse if reuse is None else reuse
    else:
        base = parent
        local = name_or_scope if name_or_scope is not None else \
            unique_scope_name(default_name, reuse)
        name = f"{parent.name}/{local}" if parent.name and local else (local or parent.name)
    inherited = parent.reuse if reuse is None else reuse
    if parent.reuse is True and reuse is None:
        inherited = True
    scope = VariableScope(
        name, inherited, initializer or base.initializer, dtype or base.dtype,
        regularizer or base.regularizer, partitioner or base.partitioner,
        _chain_getters(custom_getter, base.custom_getter))
    graph.variable_scope_stack.append(scope)
    try:
        with graph.name_scope(name.split("/")[-1] if name else None):
            yield scope
    finally:
        graph.variable_scope_stack.pop()


def _is_value(initializer) -> bool:
    """A tensor, variable, array or Python value (not an initializer to call)."""
    return isinstance(initializer, (Tensor, Variable, np.ndarray, np.generic, int, float,
                                    bool, list, tuple))


def _make_initializer(initializer, shape, dtype):
    from ... import initializers as init
    if initializer is None:
        initializer = init.glorot_uniform() if dtype.is_float else init.zeros()
    if isinstance(initializer, (Tensor, Variable)):
        if shape is not None and not initializer.shape.is_compatible_with(shape):
            raise ValueError(f"the initializer's shape {initializer.shape} does not fit the "
                             f"variable's shape {list(shape)}")
        return initializer
    if callable(initializer):
        return np.asarray(initializer(shape, dtype))
    value = np.asarray(initializer, dtype=dtype.np_dtype)
    return value.copy() if shape is None else np.broadcast_to(value, shape).copy()


def get_variable(name, shape=None, dtype=None, initializer=None, regularizer=None,
                 trainable=True, collections=None, caching_device=None, partitioner=None,
                 validate_shape=True, use_resource=None, custom_getter=None, **unused):
    """The variable ``<scope>/<name>``: made new, or the existing one when the scope
    reuses. Arguments left None take the scope's defaults; a custom getter (the
    argument's, else the scope's) is called as ``custom_getter(getter, name, ...)``."""
    scope = get_variable_scope()
    full = f"{scope.name}/{name}" if scope.name else name
    initializer = scope.initializer if initializer is None else initializer
    if dtype is None and isinstance(initializer, (Tensor, Variable)):
        dtype = initializer.dtype          # as TensorFlow: the initial value decides
    elif dtype is None and isinstance(initializer, (np.ndarray, np.generic)):
        dtype = dt.as_dtype(initializer.dtype)
    arguments = {
        "shape": shape, "dtype": dt.as_dtype(dtype or scope.dtype or dt.float32),
        "initializer": initializer,
        "regularizer": scope.regularizer if regularizer is None else regularizer,
        "reuse": scope.reuse, "trainable": trainable, "collections": collections,
        "caching_device": caching_device,
        "partitioner": scope.partitioner if partitioner is None else partitioner,
        "validate_shape": validate_shape, "use_resource": use_resource}
    custom_getter = scope.custom_getter if custom_getter is None else custom_getter
    if custom_getter is not None:
        return custom_getter(getter=make_variable, name=full, **arguments)
    return make_variable(full, **arguments)


def make_variable(name, shape=None, dtype=None, initializer=None, regularizer=None,
                  reuse=None, trainable=None, collections=None, partitioner=None, **unused):
    """``get_variable`` past the scope's defaults and custom getters (the ``getter`` a
    custom getter receives): ``name`` is the full name."""
    graph = get_default_graph()
    trainable = True if trainable is None else trainable
    dtype = dt.as_dtype(dtype or dt.float32)
    existing = graph.variable_store.get(name)
    if reuse is True or (reuse == AUTO_REUSE and existing is not None):
        if existing is None:
            raise ValueError(f"Variable {name} does not exist, or was not created with "
                             "tf.get_variable(). Did you mean to set reuse=tf.AUTO_REUSE in "
                             "VarScope?")
        if shape is not None and not existing.shape.is_compatible_with(shape):
            raise ValueError(f"Trying to share variable {name}, but specified shape "
                             f"{list(shape)} and found shape {existing.shape.as_list()}.")
        return existing
    if existing is not None:
        raise ValueError(f"Variable {name} already exists, disallowed. Did you mean to set "
                         "reuse=True or reuse=tf.AUTO_REUSE in VarScope?")
    if shape is None and not _is_value(initializer):
        raise ValueError(f"Shape of a new variable ({name}) must be fully defined, but "
                         "instead was None.")
    shape = tuple(int(d) for d in shape) if shape is not None else None
    initial = _make_initializer(initializer, shape, dtype)
    with graph.name_scope(None):
        if partitioner is not None:
            def make_part(value, part_name):
                return Variable(value, trainable=trainable, name=part_name, dtype=dtype,
                                collections=collections)
            variable = partitioned_variable(name, initial, dtype, partitioner, make_part)
        else:
            variable = Variable(initial, trainable=trainable, name=name, dtype=dtype,
                                collections=collections)
    graph.variable_store[name] = variable
    if regularizer is not None:
        with graph.name_scope(f"{name}/Regularizer/"):
            loss = regularizer(variable)
        if loss is not None:
            graph.add_to_collection(GraphKeys.REGULARIZATION_LOSSES, loss)
    return variable
