"""Reading the IR's text form back: the exact inverse of :func:`printer.print_graph`.

``parse_graph(print_graph(g)) == g`` for every valid graph, and printing the parsed
graph gives the same text again (with ``locations=True`` too, which also brings back
source locations and names). The format is described in ``printer.py``.

The parser checks what the text claims: each op must be in ``OPS``; its params must be
written complete and normalized (``op.make_params`` of them gives them back unchanged);
the types written on the outputs must be what ``op.infer_types`` gives; vars are
defined once and before use. Whitespace inside a line is free, blank lines and lines
holding only a ``# comment`` are skipped; a comment at the end of an equation line must
be that equation's source location. Every error is a :class:`ParseError` whose message
starts with ``line N:`` and shows the line; ``.lineno`` holds N.

>>> g = parse_graph('''
... func main(a:f32[3]) stage=traced {
...   b:f32[3] = neg a
...   return b
... }''')
>>> g.eqns[0].op.name
'neg'
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import sys
from typing import Any, NamedTuple

import numpy as np

from .const_value import ConstValue
from .core import Eqn, Graph, Params, TensorType, Var, VarMeta
from .dtypes import ALL_DTYPES
from .errors import ParseError, TracejitError
from .opdef import OPS, OpDef
from .printer import NAN_BITS, SIGN_BIT, array_from_items, double, format_type, format_value
from .source import SourceLoc
from .verifier import same_params

__all__ = ["parse_graph"]

_DTYPES = {d.short: d for d in ALL_DTYPES}
_PLAIN_LOC = re.compile(r"(?P<file>.+):(?P<line>\d+) in (?P<fn>\S+)")


def parse_graph(text: str) -> Graph:
    """The Graph that ``text`` (as written by ``print_graph``) describes."""
    parser = _Parser(text)
    parser.skip_blank()
    graph = parser.graph()
    parser.skip_blank()
    parser.expect("eof", what="end of input after the graph")
    return graph


class _Tok(NamedTuple):
    kind: str   # name, number, str, bytes, comment, nl, eof, or the punctuation itself
    text: str   # the identifier, the number's text, the decoded string, the comment's text
    line: int


_SCAN = re.compile(r"""
    (?P<ws>[ \t\r]+)
  | (?P<nl>\n)
  | (?P<comment>\#[^\n]*)
  | (?P<number>0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[()\[\]{}:=,\-])
""", re.VERBOSE)
_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_ESCAPE = re.compile(r'\\(?:([nrt"\\])|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.?))')
_ESCAPED = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _error(lines: list[str], line: int, message: str) -> ParseError:
    shown = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    err = ParseError(f"line {line}: {message}\n    {shown}")
    err.lineno = line
    return err


def _tokenize(text: str, lines: list[str], line: int) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos] == '"':
            value, pos = _scan_string(text, pos, lines, line)
            tokens.append(_Tok("str", value, line))
            continue
        match = _SCAN.match(text, pos)
        if match is None:
            raise _error(lines, line, f"unexpected character {text[pos]!r}")
        kind, word, pos = match.lastgroup, match.group(), match.end()
        if kind == "ws":
            continue
        if kind == "nl":
            tokens.append(_Tok("nl", word, line))
            line += 1
        elif kind == "comment":
            tokens.append(_Tok("comment", word[1:].strip(), line))
        elif kind == "name" and word == "b64" and text.startswith('"', pos):
            value, pos = _scan_string(text, pos, lines, line)
            tokens.append(_Tok("bytes", value, line))
        else:
            tokens.append(_Tok(word if kind == "punct" else kind, word, line))
    tokens.append(_Tok("eof", "", line))
    return tokens


def _scan_string(text: str, pos: int, lines: list[str], line: int) -> tuple[str, int]:
    """Decode the string literal whose opening quote is at ``pos``; returns it and the end."""
    match = _STRING.match(text, pos)
    if match is None:
        raise _error(lines, line, "unterminated string")

    def decode(escape: re.Match) -> str:
        short, *hexes, _ = escape.groups()
        if short:
            return _ESCAPED[short]
        code = next((int(h, 16) for h in hexes if h), sys.maxunicode + 1)
        if code > sys.maxunicode:
            raise _error(lines, line, f"bad escape in string: {escape.group()!r}")
        return chr(code)

    return _ESCAPE.sub(decode, match.group(1)), match.end()


def _describe(tok: _Tok) -> str:
    return {"nl": "end of line", "eof": "end of input", "comment": "a comment",
            "str": "a string", "bytes": "a b64 string"}.get(tok.kind, repr(tok.text))


class _Decl(NamedTuple):
    tok: _Tok
    type: TensorType
    attrs: dict[str, Any]


class _Parser:
    def __init__(self, text: str, lines: list[str] | None = None, first_line: int = 1):
        self.lines = text.split("\n") if lines is None else lines
        self.tokens = _tokenize(text, self.lines, first_line)
        self.pos = 0

    # ---- token access --------------------------------------------------------------------

    def error(self, message: str, line: int | None = None) -> ParseError:
        return _error(self.lines, self.peek().line if line is None else line, message)

    def peek(self, ahead: int = 0) -> _Tok:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def next(self) -> _Tok:
        tok = self.tokens[self.pos]
        if tok.kind != "eof":
            self.pos += 1
        return tok

    def accept(self, kind: str, text: str | None = None) -> _Tok | None:
        tok = self.peek()
        if tok.kind == kind and (text is None or tok.text == text):
            return self.next()
        return None

    def expect(self, kind: str, text: str | None = None, what: str | None = None) -> _Tok:
        tok = self.accept(kind, text)
        if tok is None:
            wanted = what or repr(text or kind)
            raise self.error(f"expected {wanted}, found {_describe(self.peek())}")
        return tok

    def listing(self, close: str, item, what: str | None = None) -> list:
        """``item()`` repeated, separated by commas, up to ``close`` (consumed)."""
        items = []
        while not self.accept(close):
            items.append(item())
            if not self.accept(","):
                self.expect(close, what=f"',' or {what or repr(close)}")
                break
        return items

    def keyed(self, close: str, item) -> dict[str, Any]:
        """``key=item(key)`` pairs, as :meth:`listing`; a key may appear once."""
        out: dict[str, Any] = {}

        def pair() -> None:
            key = self.expect("name", what="a name")
            if key.text in out:
                raise self.error(f"{key.text} given twice", key.line)
            self.expect("=", what=f"'=' after {key.text}")
            out[key.text] = item(key)

        self.listing(close, pair)
        return out

    def skip_blank(self) -> None:
        # NOTE: called at the start of a statement, so a comment here is a line of its own.
        while self.peek().kind in ("nl", "comment"):
            self.next()

    def name_or_str(self, what: str) -> str:
        tok = self.accept("name") or self.accept("str")
        if tok is None:
            raise self.error(f"expected {what}, found {_describe(self.peek())}")
        return tok.text

    # ---- graphs and equations ------------------------------------------------------------

    def graph(self) -> Graph:
        self.expect("name", "func")
        name = self.name_or_str("a graph name")
        self.expect("(")
        scope: dict[str, Var] = {}      # NOTE: a nested graph sees none of the outer names
        inputs = self.listing(")", lambda: self.define(scope, self.decl(), None))
        self.expect("name", "stage")
        self.expect("=")
        stage = self.name_or_str("a stage name")
        self.expect("{")
        self.expect("nl", what="end of line after '{'")
        eqns = []
        while True:
            self.skip_blank()
            tok = self.peek()
            if tok.kind == "name" and tok.text == "return" and self.peek(1).kind != ":":
                break
            if tok.kind in ("}", "eof"):
                raise self.error("expected an equation or 'return'")
            eqns.append(self.eqn(scope))
        self.next()
        outputs = self.listing("nl", lambda: self.use(scope), "end of line")
        self.skip_blank()
        self.expect("}", what="'}' after the return")
        return Graph(inputs, eqns, outputs, name=name, stage=stage)

    def eqn(self, scope: dict[str, Var]) -> Eqn:
        line = self.peek().line
        decls = []
        if self.accept("("):
            self.expect(")", what="')': '()' stands for no outputs")
        else:
            decls.append(self.decl())
            while self.accept(","):
                decls.append(self.decl())
        self.expect("=")
        op_tok = self.peek()
        op = OPS.get(self.name_or_str("an op name"))
        if op is None:
            raise self.error(f"unknown op {op_tok.text!r}", op_tok.line)
        raw = self.params() if self.peek().kind == "[" else {}
        ins = []
        while self.peek().kind == "name":
            ins.append(self.use(scope))
        comment = self.accept("comment")
        source = None if comment is None else self.loc_comment(comment)
        self.expect("nl", what="end of line after the operands")
        if decls and "loc" in decls[0].attrs:
            raise self.error("the first output's location goes in the comment at the end of "
                             "the line", line)
        params = self.check_params(op, raw, line)
        self.check_types(op, ins, params, [d.type for d in decls], line)
        outs = tuple(self.define(scope, d, source) for d in decls)
        return Eqn(op, tuple(ins), outs, params)

    def check_params(self, op: OpDef, raw: dict[str, Any], line: int) -> Params:
        try:
            params = op.make_params(raw)
        except (TracejitError, TypeError, ValueError) as exc:
            raise self.error(str(exc), line) from None
        if not same_params(params, Params(raw)):
            # NOTE: only normalized, complete params print back to the same text.
            expected = ", ".join(f"{k}={format_value(v)}" for k, v in params.items())
            raise self.error(f"params of {op.name} must be written complete and normalized, "
                             f"as [{expected}]", line)
        return params

    def check_types(self, op: OpDef, ins: list[Var], params: Params, written: list,
                    line: int) -> None:
        try:
            inferred = op.infer_types([v.type for v in ins], params)
        except (TracejitError, TypeError, ValueError) as exc:
            raise self.error(str(exc), line) from None
        if tuple(inferred) != tuple(written):
            got, said = (", ".join(map(format_type, ts)) or "none" for ts in (inferred, written))
            raise self.error(f"{op.name} gives {got}, but the line says {said}", line)

    # ---- vars ----------------------------------------------------------------------------

    def decl(self) -> _Decl:
        tok = self.expect("name", what="a var name")
        self.expect(":", what="':' and a type after the var name")
        type_ = self.tensor_type()
        attrs = self.attrs() if self.peek().kind == "{" else {}
        return _Decl(tok, type_, attrs)

    def define(self, scope: dict[str, Var], decl: _Decl, source: SourceLoc | None) -> Var:
        name = decl.tok.text
        if name in scope:
            raise self.error(f"var {name} is defined twice", decl.tok.line)
        meta = VarMeta(source=decl.attrs.get("loc", source), name=decl.attrs.get("name"),
                       device=decl.attrs.get("device"))
        scope[name] = var = Var(decl.type, meta)
        return var

    def use(self, scope: dict[str, Var]) -> Var:
        tok = self.expect("name", what="a var name")
        var = scope.get(tok.text)
        if var is None:
            raise self.error(f"var {tok.text} is not defined", tok.line)
        return var

    def tensor_type(self) -> TensorType:
        tok = self.expect("name", what="a dtype such as f32")
        dtype = _DTYPES.get(tok.text)
        if dtype is None:
            raise self.error(f"unknown dtype {tok.text!r}; dtypes are {', '.join(_DTYPES)}")
        self.expect("[", what="'[' and the shape")
        dims = self.listing("]", lambda: self.integer(negative_ok=False))
        return TensorType(tuple(dims), dtype)

    def attrs(self) -> dict[str, Any]:
        def attr(key: _Tok) -> Any:
            if key.text in ("device", "name"):
                return self.expect("str", what=f"a string for {key.text}").text
            if key.text == "loc":
                return self.loc_value()
            raise self.error(f"unknown var attribute {key.text!r}; var attributes are "
                             "device, name and loc", key.line)

        self.expect("{")
        return self.keyed("}", attr)

    def loc_value(self) -> SourceLoc | None:
        if self.accept("name", "none"):
            return None
        self.expect("name", "loc", what="loc(\"file\", line, \"function\") or none")
        self.expect("(")
        file = self.expect("str", what="the file name").text
        self.expect(",")
        line = self.integer(negative_ok=True)
        self.expect(",")
        function = self.expect("str", what="the function name").text
        self.expect(")")
        return SourceLoc(file, line, function)

    def loc_comment(self, tok: _Tok) -> SourceLoc:
        if tok.text.startswith("loc("):
            sub = _Parser(tok.text, self.lines, tok.line)
            loc = sub.loc_value()
            sub.expect("eof", what="the end of the comment")
            return loc
        match = _PLAIN_LOC.fullmatch(tok.text)
        if match is None:
            raise self.error("a comment after an equation must be its source location, "
                             "'file:line in function'", tok.line)
        return SourceLoc(match["file"], int(match["line"]), match["fn"])

    # ---- param values --------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        self.expect("[")
        return self.keyed("]", lambda key: self.value())

    def value(self) -> Any:
        tok = self.peek()
        if tok.kind == "(":
            return self.tuple_value()
        if tok.kind == "str":
            return self.next().text
        if tok.kind == "name":
            if tok.text == "func":
                return self.graph()
            if tok.text == "array":
                return self.array_value()
            if tok.text == "none":
                self.next()
                return None
            if tok.text in _DTYPES:
                return _DTYPES[self.next().text]
        return self.scalar()

    def tuple_value(self) -> tuple:
        self.expect("(")
        items = self.listing(")", self.value)
        if len(items) == 1 and self.tokens[self.pos - 2].kind != ",":
            raise self.error("a 1-tuple is written with a trailing comma: (x,)",
                             self.tokens[self.pos - 1].line)
        return tuple(items)

    def integer(self, *, negative_ok: bool) -> int:
        value = self.scalar()
        if type(value) is not int or (value < 0 and not negative_ok):
            kind = "an integer" if negative_ok else "a non-negative integer"
            raise self.error(f"expected {kind}, found {value!r}")
        return value

    def scalar(self) -> bool | int | float:
        """A number, ``true``/``false``, or a float spelled ``inf`` or ``nan``."""
        negative = self.accept("-") is not None
        tok = self.next()
        sign = "-" if negative else ""
        if tok.kind == "number" and not tok.text.startswith("0x"):
            text = sign + tok.text
            return float(text) if any(c in text for c in ".eE") else int(text)
        if tok.kind == "name" and tok.text == "inf":
            return -math.inf if negative else math.inf
        if tok.kind == "name" and tok.text == "nan":
            bits = NAN_BITS
            if self.accept("("):
                payload = self.expect("number", what="the bits of the NaN, 0x...")
                bits = int(payload.text, 16) if payload.text.startswith("0x") else -1
                self.expect(")")
                if not 0 <= bits < 1 << 64 or not math.isnan(double(bits)):
                    raise self.error(f"{payload.text} is not the bit pattern of a NaN")
            return double(bits ^ SIGN_BIT if negative else bits)
        if tok.kind == "name" and tok.text in ("true", "false") and not negative:
            return tok.text == "true"
        raise self.error(f"expected a value, found {sign}{_describe(tok)}", tok.line)

    def array_value(self) -> ConstValue:
        self.expect("name", "array")
        self.expect("(")
        type_ = self.tensor_type()
        self.expect(",")
        dtype, size = type_.dtype, math.prod(type_.shape)
        bytes_tok = self.accept("bytes")
        if bytes_tok is not None:
            try:
                data = base64.b64decode(bytes_tok.text, validate=True)
            except (binascii.Error, ValueError):
                raise self.error("bad base64 data", bytes_tok.line) from None
            if len(data) != size * dtype.itemsize:
                raise self.error(f"{len(data)} bytes do not make an array {type_}",
                                 bytes_tok.line)
            array = np.frombuffer(data, dtype=dtype.np_dtype)
            # NOTE: the text holds little-endian bytes whatever machine printed it.
            array = array.byteswap() if sys.byteorder == "big" else array
        else:
            array = self.array_items(type_, size)
        self.expect(")", what="')' closing the array")
        return ConstValue(array.reshape(type_.shape))

    def array_items(self, type_: TensorType, size: int) -> np.ndarray:
        line = self.expect("[", what="'[' and the elements, or b64\"...\"").line
        items = self.listing("]", self.scalar)
        dtype = type_.dtype
        want = bool if dtype.is_bool else float if dtype.is_float else int
        if len(items) != size or any(type(v) is not want for v in items):
            raise self.error(f"an array {type_} takes {size} {want.__name__} elements", line)
        try:
            return array_from_items(items, dtype)
        except (OverflowError, ValueError) as exc:
            raise self.error(f"elements do not fit {dtype.name}: {exc}", line) from None
