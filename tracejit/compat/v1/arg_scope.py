"""``arg_scope``: default keyword arguments for the functions it lists
(``tf.contrib.framework.arg_scope``, also ``tf.contrib.layers.arg_scope`` and
``slim.arg_scope``).

A function takes part when it is decorated with ``add_arg_scope``. Inside
``arg_scope([f, g], k=v)`` a call of ``f`` without ``k`` gets ``k=v``; an argument the
call gives wins; nested scopes add to (and override) the outer ones; the dict an
``arg_scope`` yields can be entered again later with ``arg_scope(saved)``.

>>> import tracejit.compat.v1 as tf
>>> @tf.contrib.framework.add_arg_scope
... def scaled(x, factor=1):
...     return x * factor
>>> with tf.contrib.framework.arg_scope([scaled], factor=10):
...     scaled(2), scaled(2, factor=3)
(20, 6)
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading

__all__ = ["add_arg_scope", "arg_scope", "arg_scoped_arguments", "current_arg_scope",
           "has_arg_scope"]

_DECORATED: dict[str, object] = {}      # key -> the function decorated under it


class _Stack(threading.local):
    def __init__(self):
        self.scopes: list[dict] = []


_STACK = _Stack()


def _key(func) -> str:
    """The name an arg_scope knows a function by (its module and qualified name)."""
    return getattr(func, "_key_op", None) or \
        f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', repr(func))}"


def _new_key(func) -> str:
    """A key for a function being decorated; functions made by one factory share a
    qualified name, so later ones are numbered."""
    key, n = _key(func), 1
    while _DECORATED.get(key, func) is not func:
        key, n = f"{_key(func)}_{n}", n + 1
    return key


def current_arg_scope() -> dict:
    """The defaults in force: {function key: {argument: value}}."""
    return _STACK.scopes[-1] if _STACK.scopes else {}


def add_arg_scope(func):
    """Make ``func`` take defaults from the enclosing ``arg_scope``s."""
    key = _new_key(func)

    @functools.wraps(func)
    def with_scope_defaults(*args, **kwargs):
        defaults = current_arg_scope().get(key)
        if defaults:
            kwargs = {**defaults, **kwargs}
        return func(*args, **kwargs)

    with_scope_defaults._key_op = key
    _DECORATED[key] = func
    return with_scope_defaults


def has_arg_scope(func) -> bool:
    return _key(func) in _DECORATED


def arg_scoped_arguments(func) -> list[str]:
    """The names of the arguments an arg_scope can set for ``func``."""
    target = inspect.unwrap(func)
    return [name for name, p in inspect.signature(target).parameters.items()
            if p.default is not inspect.Parameter.empty]


@contextlib.contextmanager
def arg_scope(list_ops_or_scope, **kwargs):
    """Give the functions in ``list_ops_or_scope`` the defaults ``kwargs``; or, given the
    dict a previous ``arg_scope`` yielded, make those defaults current again."""
    if isinstance(list_ops_or_scope, dict):
        if kwargs:
            raise ValueError("When attempting to re-use a scope by suppling a dictionary, "
                             "kwargs must be empty.")
        scope = dict(list_ops_or_scope)
    else:
        if not isinstance(list_ops_or_scope, (list, tuple)):
            raise TypeError("list_ops_or_scope must either be a list/tuple or reused scope "
                            f"(i.e. dict), got {type(list_ops_or_scope).__name__}")
        scope = dict(current_arg_scope())
        for op in list_ops_or_scope:
            if not has_arg_scope(op):
                name = getattr(op, "__name__", repr(op))
                raise ValueError(f"{name} is not decorated with @add_arg_scope, so "
                                 "arg_scope cannot give it defaults")
            key = _key(op)
            scope[key] = {**scope.get(key, {}), **kwargs}
    _STACK.scopes.append(scope)
    try:
        yield scope
    finally:
        _STACK.scopes.pop()
