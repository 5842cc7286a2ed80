"""``host_callback``: a Python function called, for its effect, from inside a compiled
program (what ``tf.Print`` needs: print values as the step computes them, also in a
loop body).

``host_callback[callback](x, *args) = x``: the result is ``x`` unchanged; when it is
computed, the function registered under ``callback`` is called with the values of
``x`` and ``args`` as NumPy arrays (read-only views; its return value is ignored). It is
an effect (STATEFUL): never folded, merged or removed, and it runs where the program
reaches it, once per time (every iteration of a loop). Its gradient goes to ``x``
unchanged, none to ``args``. Backends call the function through
:func:`call_host_callback`; an exception it raises is reported on stderr and does not
stop the program (an effect has no result to spoil).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Sequence

import numpy as np

from .opdef import ParamSpec, Tag, declare, int_param

__all__ = ["HOST_CALLBACK", "HOST_CALLBACKS", "register_host_callback", "call_host_callback"]

# callback id -> fn(*arrays) (process-local, as custom_vjp's rules are)
HOST_CALLBACKS: dict[int, Callable] = {}


def register_host_callback(fn: Callable) -> int:
    key = len(HOST_CALLBACKS) + 1
    HOST_CALLBACKS[key] = fn
    return key


def call_host_callback(callback: int, arrays: Sequence[np.ndarray]) -> None:
    """Call the function registered under ``callback`` on read-only ``arrays``."""
    fn = HOST_CALLBACKS.get(callback)
    views = []
    for a in arrays:
        view = np.asarray(a).view()
        view.flags.writeable = False
        views.append(view)
    try:
        if fn is None:
            raise KeyError(f"no host callback registered under {callback}")
        fn(*views)
    except Exception:       # noqa: BLE001 - an effect's failure is reported, not raised
        print(f"host_callback {callback} failed:", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)


def _infer(types, params):
    return (types[0],)


def _impl(*arrays, callback):
    call_host_callback(callback, arrays)
    return arrays[0].copy()


def _vjp(g, ins, outs, cts, params):
    return [cts[0]] + [None] * (len(ins) - 1)


HOST_CALLBACK = declare("host_callback", arity=None, infer=_infer, impl=_impl, vjp=_vjp,
                        params={"callback": ParamSpec(int_param)}, tags={Tag.STATEFUL},
                        doc="host_callback[callback](x, *args) = x, after calling the "
                            "registered Python function on (x, *args) (an effect)")
