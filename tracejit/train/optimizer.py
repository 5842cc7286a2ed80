"""``Optimizer``: TensorFlow 1.x's optimizer API over tracejit Variables and ops.

All state lives in Variables (the trained variables, per-variable *slots* such as Adam's
``m`` and ``v``, and non-slot variables such as Adam's ``beta1_power``) and all math is
tracejit ops, so one optimizer works three ways with the same code:

* inside ``@tracejit.jit``: ``minimize`` adds the gradient and update ops to the traced
  graph; the new variable values are written back when the compiled call returns;
* in a TF1 graph (``tracejit.compat.v1``), which replays its graph as a trace;
* eagerly: ``apply_gradients`` with concrete gradients updates at once, and
  ``minimize(loss_fn)`` with a callable traces ``loss_fn``, its gradients and the update
  into one program and runs it.

>>> import numpy as np, tracejit as tj
>>> from tracejit import train
>>> w = tj.Variable(np.array([1.0, -2.0], np.float32), name="w")
>>> opt = train.GradientDescentOptimizer(0.5)
>>> @tj.jit
... def step(x):
...     loss = w * w * x           # a non-scalar loss is summed, as in TensorFlow
...     opt.minimize(loss)
...     return loss
>>> _ = step(np.float32(1.0))
>>> w.numpy().tolist()             # w - 0.5 * 2w
[0.0, 0.0]
"""

from __future__ import annotations

import numpy as np

from ..ir import dtypes as dt
from ..ir.errors import DTypeError, ShapeError, TracejitError
from ..ir.source import user_location
from ..trace.autodiff import gradients
from ..trace.indexed_slices import IndexedSlices, dense_shape_of, dense_shape_tensor, summed_rows
from ..trace.jit import JitFunction
from ..trace.math_ops import cast, where
from ..trace.tracing import current_trace, to_tensor
from ..trace.values import Array, Tensor, Tracer
from ..trace.variables import Variable


class Optimizer:
    """Base class. Subclasses define ``_create_slots(var_list)``, ``_apply_dense(grad,
    var)`` (returning the variable's new value) and optionally ``_finish(updates)``;
    ``_apply_sparse`` where their row-sparse rule is not the dense rule on the touched
    rows (Adam), ``_apply_sparse_duplicate_indices`` where repeated rows need no summing
    first (gradient descent)."""

    # NOTE: TF 1.x's gating constants; one traced graph has no intra-step races, so every
    # value behaves like GATE_GRAPH. Kept so TF1 code that passes them runs unchanged.
    GATE_NONE = 0
    GATE_OP = 1
    GATE_GRAPH = 2

    def __init__(self, use_locking: bool, name: str):
        if not name:
            raise ValueError("Must specify the optimizer name")
        self._use_locking = use_locking
        self._name = name
        self._hyper: dict[str, object] = {}        # as given: floats, tensors, callables
        self._resolved: dict[str, object] = {}     # callables called, per apply
        self._hyper_tensors: dict[tuple, Tensor] = {}
        # {slot name: {id(var): (var, slot variable)}}; the var is kept so ids stay unique.
        self._slots: dict[str, dict[int, tuple[Variable, Variable]]] = {}
        self._slot_counts: dict[int, int] = {}
        self._non_slot: dict[str, Variable] = {}
        # values a checkpoint holds for variables this optimizer has not made yet (slots
        # are made on the first step): each takes its value when it is made
        self._deferred_restore: dict[str, np.ndarray] = {}

    def get_name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r}>"

    # ---- hyperparameters ------------------------------------------------------------------------

    def _set_hyper(self, name: str, value) -> None:
        self._hyper[name] = value

    def _prepare(self) -> None:
        """Resolve callable hyperparameters once per apply (TF's ``_call_if_callable``)."""
        self._resolved = {k: (v() if callable(v) and not isinstance(v, Tensor) else v)
                          for k, v in self._hyper.items()}
        self._hyper_tensors = {}

    def _static_hyper(self, name: str) -> float | None:
        """The hyperparameter as a Python float when known while tracing, else None."""
        value = self._resolved.get(name, self._hyper[name])
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, np.ndarray) and value.shape == ():
            return float(value)
        return None

    def _get_hyper(self, name: str, dtype: dt.DType) -> Tensor:
        """The hyperparameter as a scalar tensor of ``dtype``.

        NOTE: Python numbers are converted straight to ``dtype`` (TF 1.x goes through
        float32 first), so float64 training sees 0.1 and not float32(0.1)."""
        key = (name, dtype)
        if key in self._hyper_tensors:
            return self._hyper_tensors[key]
        value = self._resolved.get(name, self._hyper[name])
        static = self._static_hyper(name)
        if static is not None:
            tensor = Array(np.asarray(static, dtype.np_dtype))
        else:
            tensor = cast(to_tensor(value), dtype)
        if tensor.shape != ():
            raise ShapeError(f"hyperparameter {name!r} of {self._name} must be a scalar, got "
                             f"shape {list(tensor.shape)}", op=self._name,
                             location=user_location())
        self._hyper_tensors[key] = tensor
        return tensor

    # ---- slots ----------------------------------------------------------------------------------

    def _get_or_make_slot(self, var: Variable, fill_value: float, slot_name: str) -> Variable:
        """The slot ``slot_name`` of ``var``, created filled with ``fill_value`` if new.

        NOTE: the initial value is a NumPy array, never a tracejit op, so slots can be made
        lazily in the middle of a trace: the new Variable is concrete and the trace then
        reads it as captured state like any other variable."""
        per_var = self._slots.setdefault(slot_name, {})
        entry = per_var.get(id(var))
        if entry is not None:
            return entry[1]
        count = self._slot_counts.get(id(var), 0)
        self._slot_counts[id(var)] = count + 1
        # TF 1.x naming: "w/Adam", "w/Adam_1", ... in creation order.
        name = f"{var.name}/{self._name}" + (f"_{count}" if count else "")
        initial = self._deferred_restore.pop(name, None)
        if initial is None or initial.shape != tuple(var.shape):
            initial = np.full(var.shape, fill_value, var.dtype.np_dtype)
        slot = Variable(initial.astype(var.dtype.np_dtype), name=name, trainable=False)
        per_var[id(var)] = (var, slot)
        return slot

    def _zeros_slot(self, var: Variable, slot_name: str) -> Variable:
        return self._get_or_make_slot(var, 0.0, slot_name)

    def get_slot(self, var: Variable, name: str) -> Variable | None:
        """The slot variable ``name`` of ``var``, or None (TF's get_slot)."""
        entry = self._slots.get(name, {}).get(id(var))
        return None if entry is None else entry[1]

    def get_slot_names(self) -> list[str]:
        """The names of the slots this optimizer has created, sorted."""
        return sorted(self._slots)

    def _create_non_slot_variable(self, initial_value, name: str, dtype: dt.DType) -> Variable:
        existing = self._non_slot.get(name)
        if existing is None:
            if callable(initial_value) and not isinstance(initial_value, Tensor):
                initial_value = initial_value()
            try:
                value = np.asarray(initial_value, dtype.np_dtype)
            except (TypeError, TracejitError):
                raise DTypeError(f"the initial value of {self._name}'s {name!r} must be known "
                                 "when it is created (a number, not a traced value)",
                                 op=self._name, location=user_location()) from None
            restored = self._deferred_restore.pop(name, None)
            if restored is not None and restored.shape == value.shape:
                value = restored.astype(value.dtype)
            existing = Variable(value, name=name, trainable=False)
            self._non_slot[name] = existing
        return existing

    def _get_non_slot_variable(self, name: str) -> Variable | None:
        return self._non_slot.get(name)

    def restore_when_created(self, values: dict) -> None:
        """``{variable name: array}`` for slots and other variables this optimizer makes
        later (a checkpoint restored before the first step): each starts from its value."""
        self._deferred_restore.update({name: np.asarray(v) for name, v in values.items()})

    def variables(self) -> list[Variable]:
        """The optimizer's own variables: slots and non-slot variables, sorted by name."""
        found = [slot for per_var in self._slots.values() for _, slot in per_var.values()]
        found += list(self._non_slot.values())
        return sorted(found, key=lambda v: v.name)

    # ---- gradients ------------------------------------------------------------------------------

    def compute_gradients(self, loss, var_list=None, gate_gradients=GATE_OP,
                          aggregation_method=None, colocate_gradients_with_ops=False,
                          grad_loss=None) -> list[tuple[Tensor | None, Variable]]:
        """``[(gradient or None, variable), ...]`` of ``loss`` for each variable.

        ``loss`` is a traced value (inside ``@jit`` or a TF1 graph), or a callable
        returning it; eagerly, only a callable works: it is traced with its gradients and
        run. ``var_list`` defaults to the trainable float variables the trace has read."""
        if callable(loss) and not isinstance(loss, Tensor):
            if current_trace() is None:
                return self._eager_gradients(loss, var_list, grad_loss)
            loss = loss()
        return self._traced_gradients(loss, var_list, grad_loss)

    def _traced_gradients(self, loss, var_list, grad_loss):
        loss = to_tensor(loss)
        trace = loss.trace if isinstance(loss, Tracer) else current_trace()
        if trace is None or trace.closed:
            raise TracejitError(
                f"{self._name}: in eager mode pass the loss as a callable (e.g. "
                "opt.minimize(lambda: loss_fn(x), var_list=[w])); a concrete loss value "
                "does not record how it was computed", op="compute_gradients",
                location=user_location())
        if not loss.dtype.is_float:
            raise DTypeError(f"the loss must be a float tensor, got {loss.type}",
                             op="compute_gradients", location=user_location())
        var_list = self._variables_to_train(trace, var_list)
        # NOTE: differentiate with respect to the value each variable has in this trace
        # now, which is the value the loss read (Trace.read_variable returns it).
        xs = [trace.read_variable(v) for v in var_list]
        grads = gradients(loss, xs, grad_ys=grad_loss)
        return list(zip(grads, var_list, strict=True))

    def _variables_to_train(self, trace, var_list) -> list[Variable]:
        if var_list is None:
            # Non-float variables cannot have gradients; leaving them out lets integer
            # counters that a step reads coexist with the default var_list.
            var_list = [v for v, _ in trace.variable_inputs.values()
                        if isinstance(v, Variable) and v.trainable and v.dtype.is_float]
        else:
            var_list = list(var_list)
            for v in var_list:
                if not isinstance(v, Variable):
                    raise TypeError(f"var_list must hold tracejit.Variable objects, got "
                                    f"{type(v).__name__}")
                if not v.dtype.is_float:
                    raise DTypeError(f"cannot train variable {v.name!r} of type {v.type}: "
                                     "only float variables have gradients",
                                     op="compute_gradients", location=user_location())
        if not var_list:
            raise ValueError("No variables to optimize.")
        return var_list

    def _eager_gradients(self, loss_fn, var_list, grad_loss):
        """Trace ``loss_fn`` and its gradients into one program and run it.

        NOTE: traced afresh on each call: ``loss_fn`` may close over data that changes from
        step to step, which a cached trace would silently freeze."""
        layout: list[tuple[bool, Variable]] = []

        def loss_and_gradients():
            pairs = self._traced_gradients(loss_fn(), var_list, grad_loss)
            layout[:] = [(g is not None, v) for g, v in pairs]
            return [g for g, _ in pairs if g is not None]

        found = iter(JitFunction(loss_and_gradients)())
        return [(next(found) if connected else None, v) for connected, v in layout]

    # ---- updates --------------------------------------------------------------------------------

    def apply_gradients(self, grads_and_vars, global_step=None, name=None) -> list[Tensor]:
        """Update each variable from its gradient (None gradients are skipped), then add 1
        to ``global_step`` if given. Returns the variables' new values, in order."""
        pairs = list(grads_and_vars)
        if not pairs:
            raise ValueError("No variables provided.")
        _check_global_step(global_step)
        seen: set[int] = set()
        to_apply = []
        for grad, var in pairs:
            if not isinstance(var, Variable):
                raise TypeError(f"apply_gradients needs (gradient, tracejit.Variable) pairs, "
                                f"got a {type(var).__name__} as the variable")
            if id(var) in seen:
                raise ValueError(f"variable {var.name!r} appears twice in grads_and_vars")
            seen.add(id(var))
            if grad is not None:
                to_apply.append((_checked_gradient(grad, var), var))
        if not to_apply:
            raise ValueError("No gradients provided for any variable: "
                             f"{[v.name for _, v in pairs]}; check that the loss depends on "
                             "them through differentiable ops")
        self._create_slots([v for _, v in to_apply])
        self._prepare()
        updates = [self._apply_sparse_duplicate_indices(grad, var)
                   if isinstance(grad, IndexedSlices) else self._apply_dense(grad, var)
                   for grad, var in to_apply]
        self._finish(updates)
        if global_step is not None:
            global_step.assign_add(1)
        return updates

    def minimize(self, loss, global_step=None, var_list=None, gate_gradients=GATE_OP,
                 aggregation_method=None, colocate_gradients_with_ops=False, name=None,
                 grad_loss=None) -> list[Tensor]:
        """``compute_gradients`` then ``apply_gradients``. Note TF 1.x's argument order:
        ``global_step`` comes before ``var_list``; pass both by keyword to be safe."""
        _check_global_step(global_step)
        if callable(loss) and not isinstance(loss, Tensor) and current_trace() is None:
            # Eager: the loss, its gradients and the update become one traced program.
            return JitFunction(lambda: self.minimize(loss, global_step, var_list,
                                                     grad_loss=grad_loss))()
        grads_and_vars = self.compute_gradients(loss, var_list=var_list, grad_loss=grad_loss)
        if all(g is None for g, _ in grads_and_vars):
            raise ValueError("No gradients provided for any variable: "
                             f"{[v.name for _, v in grads_and_vars]}; check that the loss "
                             "depends on them through differentiable ops")
        return self.apply_gradients(grads_and_vars, global_step=global_step, name=name)

    # ---- subclass hooks -------------------------------------------------------------------------

    def _create_slots(self, var_list: list[Variable]) -> None:
        """Make the slots ``_apply_dense`` needs (lazily: existing ones are kept)."""

    def _apply_dense(self, grad: Tensor, var: Variable) -> Tensor:
        raise NotImplementedError

    def _finish(self, updates: list[Tensor]) -> None:
        """Runs after every variable is updated (Adam advances its beta powers here)."""

    def _apply_sparse_duplicate_indices(self, grad: IndexedSlices, var: Variable) -> Tensor:
        """A row-sparse gradient: the rows of repeated indices are summed first (TF 1.x's
        rule: summing squares instead of squaring the sum would be wrong), then
        ``_apply_sparse``."""
        summed, touched = summed_rows(grad)
        return self._apply_sparse(summed, touched, var)

    def _apply_sparse(self, summed: Tensor, touched: Tensor, var: Variable) -> Tensor:
        """The dense rule on the rows ``touched`` marks; every other row of the variable
        and of its slots keeps its value. That is what TF 1.x's sparse training kernels
        do (momentum is not applied and accumulators do not decay on rows the gradient
        does not name). ``summed`` is the dense gradient, zero off those rows."""
        state = [var] + [slot for per_var in self._slots.values()
                         for owner, slot in per_var.values() if owner is var]
        before = [v.read_value() for v in state]
        self._apply_dense(summed, var)
        for variable, old in zip(state, before, strict=True):
            variable.assign(where(touched, variable.read_value(), old))
        return var.read_value()


def _check_global_step(global_step) -> None:
    if global_step is None or isinstance(global_step, Variable):
        return
    hint = ""
    if isinstance(global_step, (list, tuple)):
        hint = " (TF 1.x's minimize takes global_step before var_list; pass var_list=...)"
    raise TypeError(f"global_step must be a tracejit.Variable, got "
                    f"{type(global_step).__name__}{hint}")


def _checked_gradient(grad, var: Variable) -> Tensor | IndexedSlices:
    """The gradient as a tensor of the variable's dtype and shape (or as rows of it)."""
    if isinstance(grad, IndexedSlices):
        return _checked_slices(grad, var)
    tensor = _in_dtype_of(var, to_tensor(grad), "gradient")
    if tensor.shape != var.shape:
        raise ShapeError(f"gradient of shape {list(tensor.shape)} for variable {var.name!r} "
                         f"of shape {list(var.shape)}", op="apply_gradients",
                         location=user_location())
    return tensor


def _checked_slices(grad: IndexedSlices, var: Variable) -> IndexedSlices:
    """A row gradient whose dense shape is the variable's (taken from it if absent)."""
    if grad.dense_shape is not None:
        shape = dense_shape_of(grad, "apply_gradients")
        if shape != tuple(var.shape):
            raise ShapeError(f"IndexedSlices gradient of dense shape {list(shape)} for "
                             f"variable {var.name!r} of shape {list(var.shape)}",
                             op="apply_gradients", location=user_location())
    values = _in_dtype_of(var, to_tensor(grad.values), "gradient rows")
    return IndexedSlices(values, to_tensor(grad.indices), dense_shape_tensor(var.shape))


def _in_dtype_of(var: Variable, tensor: Tensor, what: str) -> Tensor:
    """``tensor`` in the variable's dtype: a Python number converts, a typed tensor of
    another dtype is a DTypeError."""
    if tensor.dtype is var.dtype:
        return tensor
    if not tensor.weak:
        raise DTypeError(f"{what} of type {tensor.type} for variable {var.name!r} of "
                         f"type {var.type}", op="apply_gradients", location=user_location())
    return cast(tensor, var.dtype)
