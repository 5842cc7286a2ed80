"""``@jit``: trace a Python function once per abstract signature, compile, cache, call.

The cache key is the argument structure plus each leaf's (shape, dtype, weak) and the
static arguments' values. A hit costs a flatten, a dict lookup and the program call.

**Native fast path.** Most calls do not run the Python below at all: the executor's
native dispatcher becomes the function's ``__call__`` (fast_path.py).

**Variables are updated in place.** A captured variable the function assigns is a
*donated* argument of its program: the new value is written over the old array, which
stays the variable's. Before a call, a variable whose array something else refers to
(``np.asarray(v)``, an ``Array`` from ``v.read_value()``) gets a private copy first, so
what the caller holds never changes under it.
Every compile records why it happened; ``TRACEJIT_LOG=compiles`` prints the reasons
and ``tracejit.config.forbid_recompiles()`` turns an unexpected recompile into an error.
"""

from __future__ import annotations

import functools
import inspect
import sys
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import config
from ..ir import dtypes as dt
from ..ir.core import Graph, TensorType
from ..ir.errors import DTypeError, RecompileError, TracejitError
from ..ir.source import user_location
from ..passes.place import is_pinned
from ..runtime.device import Resident
from ..runtime.devices import DeviceError
from ..runtime.partitions import PartitionedProgram, partitioned_program
from ..runtime.registry import default_device_name, get_device
from . import fast_path
from .arguments import leaf_key, native_dtype, raw_value
from .device_scope import committed_device, no_device_scope
from .pytree import flatten, leaf_paths, unflatten
from .signature import Signature, describe_change
from .tracing import Trace, to_tensor, tracing
from .values import Array, DeviceArray, Tracer
from .variables import update_locks


@dataclass
class CompileRecord:
    """Why and when one compile of a jitted function happened."""

    reason: str
    seconds: float
    graph: Graph


@dataclass
class Traced:
    """The result of tracing: the graph, and how arguments and results map onto it.

    The graph's inputs are the argument leaves, then the ``captured`` variables; its
    outputs are the result leaves, then the new values of the ``updated`` variables."""

    graph: Graph
    out_tree: Any
    out_weak: tuple[bool, ...]
    captured: tuple = ()
    updated: tuple = ()


@dataclass
class _Entry:
    traced: Traced
    program: Any
    signature: Signature = field(repr=False)
    fast: Any = field(default=fast_path.UNSET, repr=False)     # the native dispatcher, or None
    donated: frozenset = frozenset()        # positions in traced.captured updated in place
    donated_leaves: tuple = ()              # argument leaves the caller gave up
    locks: tuple = ()                       # of the captured variables, in global order


class JitFunction:
    """A function compiled per abstract signature. Call it like the original."""

    def __init__(self, fun, static_argnums=(), static_argnames=(), executor: str | None = None,
                 donate_argnums=(), donate_argnames=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.executor_name = executor
        self._signature = inspect.signature(fun)
        params = self._signature.parameters
        self._positional_names = [n for n, p in params.items()
                                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        self.static_argnames = self._parameter_names("static", static_argnums,
                                                     static_argnames)
        self.donate_argnames = self._parameter_names("donate", donate_argnums,
                                                     donate_argnames)
        self._cache: dict = {}
        self.compile_log: list[CompileRecord] = []
        self._last_signature: Signature | None = None
        self._bound: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._fast_entry: _Entry | None = None

    def __reduce__(self):
        """Pickled by reference, as functions are: a module-level ``@jit`` function by
        its name, ``jit(f)`` of a picklable ``f`` by ``f`` and the jit options. Compiled
        programs are never pickled; the unpickled function compiles on first use."""
        fun = self.fun
        module = sys.modules.get(getattr(fun, "__module__", None) or "")
        found = module
        for part in getattr(fun, "__qualname__", "").split("."):
            found = getattr(found, part, None)
        if module is not None and found is self:
            return fun.__qualname__
        if isinstance(fun, functools.partial) or "<" in getattr(fun, "__qualname__", "<"):
            raise TypeError(f"cannot pickle the jitted function {self.__name__}: it wraps "
                            "a lambda, a local function or a bound method; jit a "
                            "module-level function to pickle it")
        return (_rebuild, (fun, tuple(sorted(self.static_argnames)), self.executor_name,
                           tuple(sorted(self.donate_argnames))))

    def _parameter_names(self, what: str, nums, names_) -> frozenset[str]:
        """``{what}_argnums`` and ``{what}_argnames`` as one set of parameter names."""
        fun = self.fun
        nums = (nums,) if isinstance(nums, int) else tuple(nums)
        out = set((names_,) if isinstance(names_, str) else names_)
        for num in nums:
            if not -len(self._positional_names) <= num < len(self._positional_names):
                raise ValueError(f"{what}_argnums {num} is out of range for "
                                 f"{fun.__name__}{self._signature}")
            out.add(self._positional_names[num])
        unknown = out - set(self._signature.parameters)
        if unknown:
            raise ValueError(f"{what}_argnames {sorted(unknown)} are not parameters of "
                             f"{fun.__name__}{self._signature}")
        return frozenset(out)

    # ---- calling ------------------------------------------------------------------------------

    def __get__(self, instance, owner=None):
        """A jitted method: the instance is static (by identity), its arrays are traced in
        as constants. Each instance gets its own cache."""
        if instance is None:
            return self
        try:
            return self._bound[instance]
        except KeyError:
            pass
        except TypeError:       # unhashable or not weakly referenceable instances
            return JitFunction(functools.partial(self.fun, instance), executor=self.executor_name)
        bound = JitFunction(functools.partial(self.fun, instance), executor=self.executor_name)
        self._bound[instance] = bound
        return bound

    def _call(self, *args, **kwargs):
        if kwargs or self.static_argnames:
            names, dynamic, static = self._split(args, kwargs)
        else:
            names, dynamic, static = None, args, None
        leaves: list = []
        treedef = flatten(dynamic, leaves)
        try:
            leaf_keys = tuple(leaf_key(leaf) for leaf in leaves)
        except TypeError:
            if any(isinstance(leaf, Tracer) for leaf in leaves):
                return self.fun(*args, **kwargs)    # jit inside jit: trace inline
            raise self._bad_argument(names, treedef, leaves) from None
        committed = committed_device(leaves) if DeviceArray.made else None
        executor = self.executor_name or committed or default_device_name()
        if committed is not None and committed != executor:
            raise DeviceError(f"{self.__name__} runs on {executor!r} (executor=), but an "
                              f"argument is committed to {committed!r} (device_put)",
                              location=user_location())
        key = (executor, names, treedef, leaf_keys,
               None if static is None else tuple(sorted(static.items())))
        entry = self._cache.get(key)
        if entry is None:
            entry = self._compile(executor, names, treedef, leaves, leaf_keys, static or {})
            self._cache[key] = entry
        # NOTE: a call with committed arguments never installs the native fast path: that
        # path cannot see commitment, and would run uncommitted calls on their device
        if committed is None and entry is not self._fast_entry:
            fast_path.use(self, executor, entry, names, treedef, leaf_keys)
        traced = entry.traced
        raw = [raw_value(leaf, k) for leaf, k in zip(leaves, leaf_keys, strict=True)]
        for i in entry.donated_leaves:
            if any(other is raw[i] for j, other in enumerate(raw) if j != i):
                raw[i] = raw[i].copy()      # passed twice: the other use must stay intact
        if traced.captured:
            outs = self._run_with_variables(entry, raw)
        else:
            outs = entry.program(raw)
        if committed is not None:
            wrapped = [DeviceArray(v, w, committed)
                       for v, w in zip(outs, traced.out_weak, strict=True)]
        else:
            wrapped = [Array(v, w) for v, w in zip(outs, traced.out_weak, strict=True)]
        return unflatten(traced.out_tree, iter(wrapped))

    __call__ = _call

    @staticmethod
    def _run_with_variables(entry: _Entry, raw: list) -> list:
        """Run a program that reads or writes variables as one atomic step: their locks
        are held from reading their values to writing the new ones back, so concurrent
        calls (or eager updates) never lose an update or see half of one."""
        traced = entry.traced
        locks = entry.locks
        # NOTE: plain acquire/release, not a context manager: a step's dispatch costs a
        # few microseconds, and a generator-based one added a quarter of that.
        for lock in locks:
            lock.acquire()
        try:
            raw += [_own_value(v) if i in entry.donated else v._value
                    for i, v in enumerate(traced.captured)]
            if isinstance(entry.program, PartitionedProgram):
                # variables living on another task keep their new values there
                count = len(traced.out_weak)
                outs = entry.program(raw, {count + j: v._value
                                           for j, v in enumerate(traced.updated)
                                           if isinstance(v._value, Resident)})
            else:
                outs = entry.program(raw)
            if traced.updated:
                count = len(traced.out_weak)
                for variable, value in zip(traced.updated, outs[count:], strict=True):
                    variable._value = value
                outs = outs[:count]
        finally:
            for lock in reversed(locks):
                lock.release()
        return outs

    def _split(self, args, kwargs) -> tuple[tuple[str, ...], tuple, dict]:
        """Bind arguments to parameters: (dynamic names, dynamic values, static values)."""
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.__name__}(): {exc}") from None
        bound.apply_defaults()
        names, values, static = [], [], {}
        for name, value in bound.arguments.items():
            if name in self.static_argnames:
                try:
                    hash(value)
                except TypeError:
                    raise TypeError(f"static argument {name!r} of {self.__name__} must be "
                                    f"hashable, got {type(value).__name__}") from None
                static[name] = value
            else:
                names.append(name)
                values.append(value)
        return tuple(names), tuple(values), static

    def _paths(self, names, treedef) -> list[str]:
        """Leaf paths named after the function's parameters, e.g. ``params['w']``."""
        if names is None:
            names = self._positional_names
        out = []
        for i, child in enumerate(treedef[1]):
            out += leaf_paths(child, f"`{names[i]}`" if i < len(names) else f"`args[{i}]`")
        return out

    def _bad_argument(self, names, treedef, leaves):
        for path, leaf in zip(self._paths(names, treedef), leaves, strict=True):
            try:
                leaf_key(leaf)
            except TypeError:
                if type(leaf) is int:
                    return DTypeError(f"argument {path} of {self.__name__} is the Python int "
                                      f"{leaf}, outside the int64 range tracejit computes "
                                      "integers in; pass float(...) for a floating-point "
                                      "value, or make it a static argument",
                                      location=user_location())
                return DTypeError(f"argument {path} of {self.__name__} is a "
                                  f"{type(leaf).__name__}, not an array or a number; pass it "
                                  f"as a static argument (static_argnums/static_argnames)",
                                  location=user_location())
        return DTypeError("unsupported argument", location=user_location())

    def _call_with(self, names, values, static):
        if names is None:
            return self.fun(*values)
        arguments = dict(zip(names, values, strict=True))
        arguments.update(static)
        ordered = {n: arguments[n] for n in self._signature.parameters if n in arguments}
        bound = inspect.BoundArguments(self._signature, ordered)
        return self.fun(*bound.args, **bound.kwargs)

    # ---- tracing and compiling ----------------------------------------------------------------

    def trace(self, *args, **kwargs) -> Traced:
        """Trace without compiling or running; ``.graph`` is the traced IR."""
        names, dynamic, static = self._split(args, kwargs)
        leaves: list = []
        treedef = flatten(dynamic, leaves)
        try:
            leaf_keys = [leaf_key(leaf) for leaf in leaves]
        except TypeError:
            raise self._bad_argument(names, treedef, leaves) from None
        return self._trace(names, treedef, leaf_keys, static)

    def _trace(self, names, treedef, leaf_keys, static) -> Traced:
        trace = Trace(name=getattr(self.fun, "__name__", "main"))
        inputs = []
        for (shape, npdtype, weak), path in zip(leaf_keys, self._paths(names, treedef),
                                                strict=True):
            try:
                dtype = dt.as_dtype(native_dtype(npdtype))
            except TypeError:
                raise DTypeError(f"argument {path} has dtype {npdtype}, which tracejit does "
                                 "not support", location=user_location()) from None
            inputs.append(trace.new_input(TensorType(shape, dtype), weak=weak,
                                          name=path.replace("`", "")))
        # NOTE: a function's placement is what its body says: a scope around the call
        # must not re-place code compiled once (device_scope.py)
        with no_device_scope(), tracing(trace):
            result = self._call_with(names, unflatten(treedef, iter(inputs)), static)
            out_leaves: list = []
            out_tree = flatten(result, out_leaves)
            outs = []
            for i, leaf in enumerate(out_leaves):
                try:
                    outs.append(to_tensor(leaf))
                except TracejitError:
                    raise DTypeError(f"{self.__name__} returned a {type(leaf).__name__} as "
                                     f"output {i}; jitted functions return tensors, numbers and "
                                     "containers of them", location=user_location()) from None
            outs = [_default_weak(t) for t in outs]
            out_vars = [trace.var_of(t) for t in outs]
        updates = list(trace.variable_updates.values())
        graph = trace.builder.build(out_vars + [var for _, var in updates])
        return Traced(graph, out_tree, tuple(t.weak for t in outs),
                      captured=tuple(v for v, _ in trace.variable_inputs.values()),
                      updated=tuple(v for v, _ in updates))

    def _compile(self, executor_name, names, treedef, leaves, leaf_keys, static) -> _Entry:
        signature = Signature(treedef, leaf_keys, static, self._paths(names, treedef))
        reason = describe_change(self._last_signature, signature)
        if self.compile_log and config.recompile_is_error:
            raise RecompileError(f"{self.__name__} would recompile: {reason}",
                                 location=user_location())
        started = time.perf_counter()
        traced = self._trace(names, treedef, leaf_keys, static)
        updated = {id(v) for v in traced.updated}
        donated = frozenset(i for i, v in enumerate(traced.captured) if id(v) in updated)
        given_up = self._donated_leaves(names, treedef)
        device = get_device(executor_name)
        if is_pinned(traced.graph):     # placed over devices: stages, no donation
            program = partitioned_program(traced.graph, device)
        else:
            compiled = device.compile(
                traced.graph, donated=[*given_up, *sorted(len(leaf_keys) + i for i in donated)])
            written = device.overwritten_arguments(compiled)
            if written is not None:
                # a variable the program only reads (its new value is a fresh result)
                # needs no private copy before each call
                donated = frozenset(i for i in donated if len(leaf_keys) + i in written)
            program = device.host_program(compiled, traced.graph)
        seconds = time.perf_counter() - started
        fallback = getattr(program, "fallback_reason", None)
        if fallback:
            reason = f"{reason} ({fallback})"
        self.compile_log.append(CompileRecord(reason, seconds, traced.graph))
        self._last_signature = signature
        if config.log_compiles:
            print(f"tracejit: compiled {self.__name__} in {seconds * 1e3:.1f} ms: {reason}",
                  file=sys.stderr)
        return _Entry(traced, program, signature, donated=donated, donated_leaves=given_up,
                      locks=update_locks(traced.captured))

    def _donated_leaves(self, names, treedef) -> tuple[int, ...]:
        """The leaf positions of the arguments named by donate_argnums/argnames."""
        if not self.donate_argnames:
            return ()
        names = names or self._positional_names
        out, at = [], 0
        for i, child in enumerate(treedef[1]):
            count = len(leaf_paths(child, ""))
            if i < len(names) and names[i] in self.donate_argnames:
                out += range(at, at + count)
            at += count
        return tuple(out)

    def clear_cache(self) -> None:
        fast_path.drop(self)
        self._cache.clear()

    @property
    def cache_size(self) -> int:
        return len(self._cache)


# NOTE: references to a variable's array while _own_value looks: the variable's slot,
# the local name and getrefcount's argument.
_ONLY_THE_VARIABLE = 3


def _own_value(variable) -> np.ndarray:
    """The variable's array, made private first if anything else refers to it (the
    program overwrites it with the new value)."""
    value = variable._value
    if isinstance(value, Resident):
        return value                # lives on another task: updated there
    if sys.getrefcount(value) > _ONLY_THE_VARIABLE:
        value = variable._value = value.copy()
    return value


def _default_weak(tensor):
    """A weak float64/int64 result (from Python-number arguments) becomes float32/int32."""
    if tensor.weak and tensor.dtype in (dt.float64, dt.int64):
        from .math_ops import cast
        out = cast(tensor, dt.float32 if tensor.dtype.is_float else dt.int32)
        out.weak = True
        return out
    return tensor


def jit(fun=None, *, static_argnums=(), static_argnames=(), executor: str | None = None,
        donate_argnums=(), donate_argnames=(), device: str | None = None):
    """Compile ``fun`` for each abstract signature of its arguments.

    ``device`` (a device string, ``"/gpu:0"``, ``"/cpu:1"``) or ``executor`` (a
    registry name, ``"gpu"``, ``"interpreter"``) picks where it runs; they are one
    setting, so give at most one.

    ``donate_argnums``/``donate_argnames`` name arguments the caller gives up: their
    arrays may be overwritten and returned as results (an optimizer step updating its
    parameters in place). Do not use a donated array after the call.

    >>> import numpy as np, tracejit
    >>> @tracejit.jit
    ... def f(x, y):
    ...     return tracejit.tanh(x @ y) * 2.0
    >>> f(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)).shape
    (2, 4)
    """
    if device is not None and executor is not None and device != executor:
        raise ValueError(f"jit(device={device!r}, executor={executor!r}): give one of them")
    executor = executor if executor is not None else device

    def wrap(f):
        return JitFunction(f, static_argnums, static_argnames, executor, donate_argnums,
                           donate_argnames)
    return wrap if fun is None else wrap(fun)


def _rebuild(fun, static_argnames, executor, donate_argnames) -> JitFunction:
    """Unpickling ``jit(fun, ...)`` (see ``JitFunction.__reduce__``)."""
    return JitFunction(fun, static_argnames=static_argnames, executor=executor,
                       donate_argnames=donate_argnames)


def make_ir(fun, *, static_argnums=(), static_argnames=()):
    """``make_ir(f)(*args)`` returns the traced Graph of ``f`` for those arguments."""
    jitted = fun if isinstance(fun, JitFunction) else JitFunction(fun, static_argnums,
                                                                    static_argnames)

    def traced_graph(*args, **kwargs) -> Graph:
        return jitted.trace(*args, **kwargs).graph
    return traced_graph
