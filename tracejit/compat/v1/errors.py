"""``tf.errors``: TensorFlow's error classes, codes and names.

Every class derives from :class:`OpError` (and from tracejit's ``TracejitError``, so
the user's line is part of the message). They are raised by ``Session.run`` where
TensorFlow raises them: ``InvalidArgumentError`` for a missing feed or shapes that do not
fit once the fed shapes are known, ``FailedPreconditionError`` for a variable read before
it is initialized, ``OutOfRangeError`` for an exhausted input. Both spellings of the
constructor work: TensorFlow's ``OpError(node_def, op, message)`` and ours,
``OpError(message, location=...)``.
"""

from __future__ import annotations

from ...ir.errors import TracejitError

OK = 0
CANCELLED = 1
UNKNOWN = 2
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
ALREADY_EXISTS = 6
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
ABORTED = 10
OUT_OF_RANGE = 11
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14
DATA_LOSS = 15
UNAUTHENTICATED = 16


class OpError(TracejitError):
    """The base of TensorFlow's run-time errors: ``message``, ``op``, ``node_def`` and
    ``error_code`` as TensorFlow has them."""

    default_code = UNKNOWN

    def __init__(self, *args, location=None, **kwargs):
        if len(args) >= 3 or "message" in kwargs:      # TensorFlow's (node_def, op, message)
            node_def, op, message = (list(args) + [None, None, None])[:3]
            node_def = kwargs.get("node_def", node_def)
            op = kwargs.get("op", op)
            message = kwargs.get("message", message)
            code = (args[3] if len(args) > 3 else kwargs.get("error_code")) or self.default_code
        else:
            node_def, op = None, kwargs.get("op")
            message = args[0] if args else kwargs.get("message", "")
            code = kwargs.get("error_code") or self.default_code
        self.node_def = node_def
        self.message = str(message)
        self.error_code = code
        super().__init__(self.message, location=location)
        self.op = op       # NOTE: an Operation (TensorFlow's meaning), not an op name

    def _render(self) -> str:
        text = self.bare_message
        if self.location is not None:
            text += f"\n  at {self.location}"
        return text


def _error(name: str, code: int, *bases, doc: str) -> type:
    return type(name, (OpError, *bases), {"default_code": code, "__doc__": doc,
                                          "__module__": __name__})


CancelledError = _error("CancelledError", CANCELLED, doc="An operation was cancelled.")
UnknownError = _error("UnknownError", UNKNOWN, doc="An unknown error.")
InvalidArgumentError = _error("InvalidArgumentError", INVALID_ARGUMENT, ValueError,
                              doc="A bad argument: a missing feed, shapes that do not fit.")
DeadlineExceededError = _error("DeadlineExceededError", DEADLINE_EXCEEDED,
                               doc="A deadline (operation_timeout_in_ms) passed.")
NotFoundError = _error("NotFoundError", NOT_FOUND, doc="A file or name was not found.")
AlreadyExistsError = _error("AlreadyExistsError", ALREADY_EXISTS,
                            doc="What was to be created already exists.")
PermissionDeniedError = _error("PermissionDeniedError", PERMISSION_DENIED,
                               doc="No permission.")
UnauthenticatedError = _error("UnauthenticatedError", UNAUTHENTICATED,
                              doc="No valid credentials.")
ResourceExhaustedError = _error("ResourceExhaustedError", RESOURCE_EXHAUSTED,
                                doc="Out of memory or another resource.")
FailedPreconditionError = _error("FailedPreconditionError", FAILED_PRECONDITION,
                                 RuntimeError,
                                 doc="The system is not in a state for the operation: e.g. "
                                     "a variable read before it was initialized.")
AbortedError = _error("AbortedError", ABORTED, doc="An operation was aborted.")
OutOfRangeError = _error("OutOfRangeError", OUT_OF_RANGE,
                         doc="Past the end of an input (a queue closed and empty).")
UnimplementedError = _error("UnimplementedError", UNIMPLEMENTED, NotImplementedError,
                            doc="Not implemented (or not supported here).")
InternalError = _error("InternalError", INTERNAL, doc="An internal invariant broke.")
UnavailableError = _error("UnavailableError", UNAVAILABLE,
                          doc="A service (a remote worker) is unavailable.")
DataLossError = _error("DataLossError", DATA_LOSS, doc="Unrecoverable data loss.")

_BY_CODE = {cls.default_code: cls for cls in (
    CancelledError, UnknownError, InvalidArgumentError, DeadlineExceededError, NotFoundError,
    AlreadyExistsError, PermissionDeniedError, UnauthenticatedError, ResourceExhaustedError,
    FailedPreconditionError, AbortedError, OutOfRangeError, UnimplementedError, InternalError,
    UnavailableError, DataLossError)}


def exception_type_from_error_code(error_code: int) -> type:
    return _BY_CODE[error_code]


def error_code_from_exception_type(cls: type) -> int:
    return cls.default_code
