"""@jit's native fast path: the device's dispatcher as a jitted function's ``__call__``.

When the signature a function last compiled or hit takes only arrays, positionally,
captures no variables and returns one tensor or a flat tuple or list of them, and the
device declares the ``native-dispatch`` capability (the CPU does), its dispatcher becomes
the function's ``__call__``: it checks the arguments, runs the program and wraps the
results in C, about 0.1 us. Whatever it does not accept (another signature, keyword
arguments, a weak Array) it hands to the Python path (``JitFunction._call``), which
may compile and then points the fast path at the entry it used.

Python looks ``__call__`` up on the type, so a function with a fast path gets a class
of its own, a subclass named like its class. Changing the executor (device) setting drops
every fast path (a dispatcher runs the program of the device it was made for).
"""

from __future__ import annotations

import weakref

from ..config import on_change
from ..runtime.device import NATIVE_DISPATCH
from ..runtime.registry import get_device
from .pytree import LEAF
from .values import Array

__all__ = ["UNSET", "use", "drop"]

UNSET = object()                # an entry whose dispatcher was not asked for yet
_WITH_FAST_PATH: weakref.WeakSet = weakref.WeakSet()


def use(function, executor_name: str, entry, names, treedef, leaf_keys) -> None:
    """Make ``entry``'s dispatcher ``function``'s ``__call__``, if it can have one."""
    if entry.fast is UNSET:
        entry.fast = _dispatcher(function, executor_name, entry, names, treedef, leaf_keys)
    if entry.fast is None:
        return
    cls = type(function)
    if not cls.__dict__.get("_own_class", False):
        # NOTE: same name, so reprs and error messages read as before.
        cls = type(cls.__name__, (cls,), {"_own_class": True, "__module__": cls.__module__})
        function.__class__ = cls
    cls.__call__ = entry.fast
    function._fast_entry = entry
    _WITH_FAST_PATH.add(function)


def drop(function) -> None:
    """Back to the Python ``__call__``."""
    if function._fast_entry is not None:
        function._fast_entry = None
        del type(function).__call__


def _dispatcher(function, executor_name: str, entry, names, treedef, leaf_keys):
    traced = entry.traced
    flat_arrays = (names is None and treedef == (tuple, (LEAF,) * len(leaf_keys))
                   and not any(weak for _, _, weak in leaf_keys))
    # NOTE: donated arguments stay on the Python path, which copies one passed twice.
    if not flat_arrays or traced.captured or traced.updated or entry.donated_leaves:
        return None
    out = traced.out_tree
    if out is LEAF:
        returns = "one"
    elif (isinstance(out, tuple) and out[0] in (tuple, list)
          and out[1] == (LEAF,) * len(traced.out_weak)):
        returns = "tuple" if out[0] is tuple else "list"
    else:
        return None
    device = get_device(executor_name)
    if NATIVE_DISPATCH not in device.capabilities:
        return None
    return device.dispatcher(entry.program, function._call, (Array, "value", "weak"), returns,
                traced.out_weak)


def _on_settings_change(names) -> None:
    if "executor" in names:
        for function in list(_WITH_FAST_PATH):
            drop(function)


on_change(_on_settings_change)
