"""A small reader of 64-bit little-endian ELF files: what the checks of a build need.

``read_elf(data)`` gives the file type and machine (``e_machine``: 62 x86-64, 183
AArch64), its symbols (``.symtab`` and ``.dynsym``: name, defined or not, binding,
type) and the libraries it needs (``DT_NEEDED`` of ``.dynamic``). It reads only the
ELF header, the section headers and those sections; no program is run (the objects
of another architecture are checked the same way).

>>> import struct
>>> read_elf(b"not an elf")
Traceback (most recent call last):
...
ValueError: not an ELF file
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["Elf", "Symbol", "read_elf", "ET_REL", "ET_DYN"]

ET_REL, ET_EXEC, ET_DYN = 1, 2, 3
_SHT_SYMTAB, _SHT_STRTAB, _SHT_DYNAMIC, _SHT_DYNSYM = 2, 3, 6, 11
_STB = {0: "local", 1: "global", 2: "weak"}
_STT = {0: "notype", 1: "object", 2: "func", 3: "section", 4: "file", 6: "tls"}
_DT_NEEDED = 1


@dataclass(frozen=True)
class Symbol:
    name: str
    defined: bool
    binding: str            # local, global, weak
    kind: str               # func, object, notype, ...
    table: str              # "symtab" or "dynsym"


@dataclass(frozen=True)
class Elf:
    file_type: int          # ET_REL (an object), ET_DYN (a shared library), ...
    machine: int
    symbols: tuple[Symbol, ...]
    needed: tuple[str, ...]
    section_names: tuple[str, ...]

    def defined(self, name: str) -> bool:
        return any(s.name == name and s.defined for s in self.symbols)

    def undefined(self) -> set[str]:
        """Names the file needs and does not define. Weak references are left out: they
        may stay unresolved (a C runtime's optional hooks, ``__gmon_start__``)."""
        return {s.name for s in self.symbols if not s.defined and s.name
                and s.binding == "global"}

    def exported(self) -> set[str]:
        """Defined global functions and objects (those of ``.dynsym`` for a library)."""
        table = "dynsym" if any(s.table == "dynsym" for s in self.symbols) else "symtab"
        return {s.name for s in self.symbols if s.defined and s.table == table
                and s.binding in ("global", "weak") and s.kind in ("func", "object")}


def _string(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    return table[offset:end if end >= 0 else len(table)].decode("utf-8", "replace")


def read_elf(data: bytes) -> Elf:
    """Parse ``data``, the bytes of an ELF file (64-bit, little-endian)."""
    if data[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    if data[4] != 2 or data[5] != 1:
        raise ValueError("only 64-bit little-endian ELF files are read")
    (e_type, e_machine, _, _, _, e_shoff, _, _, _, _, e_shentsize, e_shnum,
     e_shstrndx) = struct.unpack_from("<HHIQQQIHHHHHH", data, 16)
    sections = []
    for i in range(e_shnum):
        (sh_name, sh_type, _, _, sh_offset, sh_size, sh_link, _, _,
         sh_entsize) = struct.unpack_from("<IIQQQQIIQQ", data, e_shoff + i * e_shentsize)
        sections.append((sh_name, sh_type, sh_offset, sh_size, sh_link, sh_entsize))

    def body(index: int) -> bytes:
        _, _, offset, size, _, _ = sections[index]
        return data[offset:offset + size]

    names = body(e_shstrndx) if e_shnum else b""
    section_names = tuple(_string(names, s[0]) for s in sections)
    symbols, needed = [], []
    for _, sh_type, offset, size, link, entsize in sections:
        if sh_type in (_SHT_SYMTAB, _SHT_DYNSYM):
            strings = body(link)
            table = "symtab" if sh_type == _SHT_SYMTAB else "dynsym"
            for at in range(offset + entsize, offset + size, entsize):   # entry 0 is null
                st_name, st_info, _, st_shndx, _, _ = struct.unpack_from("<IBBHQQ", data, at)
                symbols.append(Symbol(_string(strings, st_name), st_shndx != 0,
                                      _STB.get(st_info >> 4, str(st_info >> 4)),
                                      _STT.get(st_info & 0xF, str(st_info & 0xF)), table))
        elif sh_type == _SHT_DYNAMIC:
            strings = body(link)
            for at in range(offset, offset + size, 16):
                tag, value = struct.unpack_from("<qQ", data, at)
                if tag == 0:
                    break
                if tag == _DT_NEEDED:
                    needed.append(_string(strings, value))
    return Elf(e_type, e_machine, tuple(symbols), tuple(needed), section_names)
