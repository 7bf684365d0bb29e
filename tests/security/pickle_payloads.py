"""Raw pickle opcodes for crafted artifacts, written byte by byte and never loaded.

Each helper returns opcode bytes; `pickle_of` wraps them in a protocol header and STOP. Nothing
here imports or calls the globals it names.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class Raw:
    """Opcode bytes used as a value (a nested call, a global)."""

    ops: bytes


Value = Raw | str | int | bytes | bool | None | tuple["Value", ...]


def text(value: str) -> bytes:
    encoded = value.encode()
    return b"X" + struct.pack("<I", len(encoded)) + encoded  # BINUNICODE


def value(item: Value) -> bytes:
    if isinstance(item, Raw):
        return item.ops
    if item is None:
        return b"N"
    if isinstance(item, bool):
        return b"\x88" if item else b"\x89"
    if isinstance(item, str):
        return text(item)
    if isinstance(item, int):
        return b"J" + struct.pack("<i", item)
    if isinstance(item, bytes):
        return b"B" + struct.pack("<I", len(item)) + item  # BINBYTES
    return b"(" + b"".join(value(v) for v in item) + b"t"


def global_(module: str, name: str) -> Raw:
    """GLOBAL: ``module name`` as newline-terminated text."""
    return Raw(b"c" + module.encode() + b"\n" + name.encode() + b"\n")


def stack_global(module: str, name: str) -> Raw:
    """STACK_GLOBAL with both names pushed as literal strings."""
    return Raw(text(module) + text(name) + b"\x93")


def call(made_by: Raw, *args: Value) -> Raw:
    """``made_by(*args)`` with REDUCE."""
    return Raw(made_by.ops + value(tuple(args)) + b"R")


def calls(module: str, name: str, *args: Value) -> Raw:
    return call(global_(module, name), *args)


def pickle_of(*parts: Raw, protocol: int = 4) -> bytes:
    """A whole pickle: every part is evaluated, the last one is the result."""
    body = b"".join(p.ops + b"0" for p in parts[:-1]) + parts[-1].ops  # POP between parts
    return b"\x80" + bytes([protocol]) + body + b"."
