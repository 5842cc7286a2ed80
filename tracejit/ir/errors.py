"""Errors a user can cause. Each names what was wrong and, where known, the user's line."""

from __future__ import annotations


class TracejitError(Exception):
    """Base class. ``location`` is the user's source line, filled in by the front end."""

    def __init__(self, message: str, *, op: str | None = None, location=None):
        self.bare_message = message
        self.op = op
        self.location = location
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.op}: {self.bare_message}" if self.op else self.bare_message
        if self.location is not None:
            text += f"\n  at {self.location}"
        return text

    def at(self, location):
        """Return a copy of this error that points at ``location`` (the user's line)."""
        if location is None or self.location is not None:
            return self
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.location = location
        Exception.__init__(clone, clone._render())
        return clone


class ShapeError(TracejitError, ValueError):
    """Shapes that do not fit an op (broadcasting, matmul dimensions, reshape sizes)."""


class DTypeError(TracejitError, TypeError):
    """An element type an op does not accept, or operands whose types do not fit."""


class ParamError(TracejitError, ValueError):
    """An op parameter that is missing, unknown or out of range (an axis, a permutation)."""


class VerifyError(TracejitError):
    """A graph that breaks an IR invariant (a use before definition, a wrong output type)."""


class ParseError(TracejitError, ValueError):
    """IR text that cannot be parsed; the message names the line."""


class TracerError(TracejitError, TypeError):
    """Python control flow or a conversion on a traced value, which has no value yet."""


class RecompileError(TracejitError):
    """A recompile happened while recompiles were configured to be errors."""
