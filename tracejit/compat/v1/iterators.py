"""``tf.data.Iterator`` in a TF1 graph: ``get_next()`` is a host op (host_ops.py).

Each Session has its own state for an iterator (``Session.resource``): the running
``tracejit.data`` pipeline. The initializer op evaluates the dataset's captured tensors
(with the run's feeds) and starts a fresh pipeline, closing the previous one; a one-shot
iterator starts its pipeline at its first ``get_next``. ``get_next`` hands the next
element's components to the rest of the run as if they were fed, so the compiled step
takes them like any input. At the end it raises ``tf.errors.OutOfRangeError`` ("End of
sequence"), as TensorFlow does, and keeps raising it until re-initialized. Closing the
session closes the pipeline (its prefetch and map threads end).
"""

from __future__ import annotations

import itertools
import threading

import numpy as np

from ...data import structure as st
from ...io.records import RecordError
from ...ir.source import user_location
from .data_functions import GraphSpec, OutputStructure, Pipeline, tf_dtype
from .errors import (
    DataLossError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
)
from .host_ops import host_op, host_tensor
from .shapes import TensorShape

__all__ = ["Iterator"]


class _State:
    """One session's pass over an iterator's dataset."""

    def __init__(self):
        self.lock = threading.Lock()
        self.elements = None            # the running DatasetIterator, None before init
        self.ended = False

    def restart(self, dataset) -> None:
        with self.lock:
            self.close_pass()
            self.elements = iter(dataset)
            self.ended = False

    def close_pass(self) -> None:
        elements, self.elements = self.elements, None
        if elements is not None:
            elements.close()

    def close(self) -> None:
        with self.lock:
            self.close_pass()


def _tf_name(dtypes) -> str:
    treedef, leaves = st.flatten(dtypes)
    return str(st.unflatten(treedef, [_Named(f"tf.{d.name}") for d in leaves]))


class _Named:
    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


class Iterator(OutputStructure):
    """``tf.data.Iterator``: ``get_next()``, ``initializer`` (initializable iterators),
    ``make_initializer(dataset)`` (iterators made ``from_structure``)."""

    def __init__(self, structure, dataset=None, one_shot: bool = False):
        self.structure = structure
        self._handle = None             # the fed handle's tensor (from_string_handle)
        self._handle_bytes = _HANDLE_PREFIX + str(next(_HANDLE_NUMBERS)).encode()
        self._one_shot = dataset if one_shot else None
        self._initializer = None
        if dataset is not None and not one_shot:
            self._initializer = self.make_initializer(dataset)

    @staticmethod
    def one_shot(dataset) -> Iterator:
        return Iterator(dataset.structure, dataset, one_shot=True)

    @staticmethod
    def initializable(dataset) -> Iterator:
        return Iterator(dataset.structure, dataset)

    @staticmethod
    def from_structure(output_types, output_shapes=None, shared_name=None,
                       output_classes=None) -> Iterator:
        """An iterator of this element structure, for any dataset of it: run
        ``make_initializer(dataset)`` to switch it to one (training, then test data)."""
        treedef, types = st.flatten(output_types)
        shapes = [None] * len(types) if output_shapes is None else st.flatten_up_to(
            treedef, output_shapes, "Iterator.from_structure: output_shapes does not match "
            "output_types")
        return Iterator(st.unflatten(treedef, [
            GraphSpec(tf_dtype(t), TensorShape(st.as_shape(s)))
            for t, s in zip(types, shapes, strict=True)]))

    # ---- what it holds ----------------------------------------------------------------------

    @property
    def initializer(self):
        if self._initializer is None:
            raise ValueError("The iterator does not have an initializer. This means it was "
                             "likely created using `tf.data.Dataset.make_one_shot_iterator()`."
                             " For an initializable iterator, use "
                             "`tf.data.Dataset.make_initializable_iterator()` instead.")
        return self._initializer

    def _state(self, session) -> _State:
        return session.resource(("tf.data.Iterator", id(self)), _State,
                                on_close=lambda state: state.close())

    # ---- ops --------------------------------------------------------------------------------

    def make_initializer(self, dataset, name=None):
        """An op that (re)starts this iterator, in the session running it, on
        ``dataset``; its captured tensors (fed placeholders, arrays) are evaluated then."""
        if not isinstance(dataset, Pipeline):
            raise TypeError(f"make_initializer expects a tf.data.Dataset, got "
                            f"{type(dataset).__name__}")
        self._check_compatible(dataset)
        captured = list(dataset.captured)

        def initialize(session, values):
            core = dataset.build(dict(zip((id(t) for t in captured), values, strict=True)),
                                 session)
            self._state(session).restart(core)
            return []
        return host_op("MakeIterator", initialize, captured, (), name=name or "MakeIterator")

    def _check_compatible(self, dataset) -> None:
        mine, theirs = st.flatten(self.structure), st.flatten(dataset.structure)
        if mine[0] != theirs[0]:
            raise ValueError(f"The two structures don't have the same nested structure: the "
                             f"iterator's elements are {st.describe(mine[0])}, the "
                             f"dataset's {st.describe(theirs[0])}")
        if any(a.dtype is not b.dtype for a, b in zip(mine[1], theirs[1], strict=True)):
            raise TypeError(f"Expected output types {_tf_name(self.output_types)} but got "
                            f"dataset with output types {_tf_name(dataset.output_types)}.")
        if not all(a.shape.is_compatible_with(b.shape)
                   for a, b in zip(mine[1], theirs[1], strict=True)):
            raise TypeError(f"Expected output shapes compatible with "
                            f"{self.output_shapes!r} but got dataset with output shapes "
                            f"{dataset.output_shapes!r}.")

    def get_next(self, name=None):
        """The next element, as graph tensors of the iterator's structure; each run
        that needs them advances the iterator once. An iterator made
        ``from_string_handle`` advances the iterator whose handle the run feeds."""
        treedef, specs = st.flatten(self.structure)
        location = user_location()

        def next_element(session, values):
            source = self if self._handle is None else \
                self._fed_iterator(session, values[0], location)
            return _checked(source._next_leaves(session, location), treedef, specs)

        op = host_op("IteratorGetNext", next_element,
                     () if self._handle is None else (self._handle,),
                     [(s.dtype, s.shape.dims) for s in specs], name=name or "IteratorGetNext")
        return st.unflatten(treedef, op.outputs)

    def _next_leaves(self, session, location) -> tuple:
        """``(treedef, leaves)`` of this iterator's next element in ``session``."""
        state = self._state(session)
        with state.lock:
            if state.elements is None and self._one_shot is not None and \
                    not state.ended:
                dataset = self._one_shot
                found = session.run(dataset.captured) if dataset.captured else []
                state.elements = iter(dataset.build(dict(zip(
                    (id(t) for t in dataset.captured), found, strict=True)), session))
            if state.elements is None:
                if state.ended:
                    raise OutOfRangeError("End of sequence", location=location)
                raise FailedPreconditionError(
                    "GetNext() failed because the iterator has not been initialized. "
                    "Ensure that you have run the initializer operation for this "
                    "iterator before getting the next element.", location=location)
            try:
                element = next(state.elements)
            except StopIteration:
                state.close_pass()
                state.ended = True
                raise OutOfRangeError("End of sequence", location=location) from None
            except RecordError as exc:
                raise DataLossError(str(exc), location=location) from None
            except st.ElementError as exc:
                kind = DataLossError if exc.data_loss else InvalidArgumentError
                raise kind(str(exc), location=location) from None
            except (TypeError, ValueError) as exc:
                if isinstance(exc, InvalidArgumentError):
                    raise
                raise InvalidArgumentError(str(exc), location=location) from exc
        return st.flatten(element)

    # ---- feedable iterators -----------------------------------------------------------------

    @staticmethod
    def from_string_handle(string_handle, output_types, output_shapes=None,
                           output_classes=None) -> Iterator:
        """An iterator whose ``get_next`` advances the iterator whose ``string_handle()``
        value the run feeds to ``string_handle`` (a scalar tf.string placeholder): one
        ``next_element`` for training and validation iterators alike."""
        iterator = Iterator.from_structure(output_types, output_shapes)
        iterator._handle = string_handle
        return iterator

    def string_handle(self, name=None):
        """A scalar tf.string tensor: this iterator's handle in the session that runs it,
        to feed an iterator made ``from_string_handle``."""
        def register(session, values):
            session.resource(_HANDLES, dict)[self._handle_bytes] = self
            return self._handle_bytes
        return host_tensor("IteratorToStringHandle", register, (), shape=(),
                           name=name or "IteratorToStringHandle")

    def _fed_iterator(self, session, fed, location) -> Iterator:
        """The iterator the fed handle names, checked against this one's structure."""
        handle = fed.item() if isinstance(fed, np.ndarray) else fed
        handle = handle.encode() if isinstance(handle, str) else handle
        found = session.resource(_HANDLES, dict).get(handle)
        if found is None:
            if isinstance(handle, bytes) and handle.startswith(_HANDLE_PREFIX):
                raise NotFoundError(f"Resource {handle.decode()} does not exist in this "
                                    "session: a handle is valid only in the session that "
                                    "ran its string_handle()", location=location)
            raise InvalidArgumentError(f"Could not parse string handle {handle!r}: feed the "
                                       "value a run of iterator.string_handle() gave",
                                       location=location)
        mine, theirs = st.flatten(self.structure), st.flatten(found.structure)
        if mine[0] != theirs[0]:
            raise InvalidArgumentError(
                f"Number of components does not match: the fed iterator's elements are "
                f"{st.describe(theirs[0])}, this one's {st.describe(mine[0])}",
                location=location)
        for i, (want, got) in enumerate(zip(mine[1], theirs[1], strict=True)):
            if want.dtype is not got.dtype:
                raise InvalidArgumentError(f"Data type mismatch at component {i}: expected "
                                           f"{want.dtype.name} but got {got.dtype.name}.",
                                           location=location)
        return found


_HANDLES = ("tf.data.Iterator", "string handles")   # a session's handle -> Iterator
_HANDLE_PREFIX = b"tracejit-iterator:"
_HANDLE_NUMBERS = itertools.count()


def _checked(found, treedef, specs) -> list:
    """An element's components, checked against the iterator's structure (an iterator
    made from_structure may meet a dataset whose shapes only the run shows)."""
    got_tree, leaves = found
    if got_tree != treedef:
        raise InvalidArgumentError(f"the dataset's element has the structure "
                                   f"{st.describe(got_tree)}, the iterator's is "
                                   f"{st.describe(treedef)}")
    for i, (leaf, spec) in enumerate(zip(leaves, specs, strict=True)):
        if not spec.shape.is_compatible_with(leaf.shape):
            raise InvalidArgumentError(f"component {i} of the element has shape "
                                       f"{list(leaf.shape)}, not compatible with the "
                                       f"iterator's {spec.shape}")
    return leaves
