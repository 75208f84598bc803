"""A thin, field-index based accessor over flatbuffers tables.

Used to read the TFLite model flatbuffer and the ``M001`` metadata flatbuffer
without generated bindings. Field *i* of a table lives at vtable offset
``4 + 2*i``; a union field *u* stores its type at index *u* and its value at
*u + 1*.
"""

from __future__ import annotations

from typing import Any

import flatbuffers
from flatbuffers.table import Table

__all__ = ["FlatTable"]


class FlatTable:
    """Thin accessor over a flatbuffers Table (field index based)."""

    __slots__ = ("tab",)

    def __init__(self, buf: bytes | bytearray | memoryview, pos: int) -> None:
        self.tab = Table(buf, pos)

    @classmethod
    def root(cls, buf: bytes | bytearray | memoryview, offset: int = 0) -> "FlatTable":
        n = flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, offset)
        return cls(buf, n + offset)

    def _off(self, i: int) -> int:
        return self.tab.Offset(4 + 2 * i)

    def string(self, i: int) -> str | None:
        o = self._off(i)
        if not o:
            return None
        return self.tab.String(o + self.tab.Pos).decode("utf-8", errors="replace")

    def scalar(self, i: int, flags: Any, default: Any = 0) -> Any:
        o = self._off(i)
        return self.tab.Get(flags, o + self.tab.Pos) if o else default

    def table(self, i: int) -> "FlatTable | None":
        o = self._off(i)
        if not o:
            return None
        return FlatTable(self.tab.Bytes, self.tab.Indirect(o + self.tab.Pos))

    def union(self, i: int) -> "FlatTable | None":
        o = self._off(i)
        if not o:
            return None
        return FlatTable(self.tab.Bytes, self.tab.Indirect(o + self.tab.Pos))

    def vec_len(self, i: int) -> int:
        o = self._off(i)
        return self.tab.VectorLen(o) if o else 0

    def tables(self, i: int) -> list["FlatTable"]:
        o = self._off(i)
        if not o:
            return []
        start, n = self.tab.Vector(o), self.tab.VectorLen(o)
        return [FlatTable(self.tab.Bytes, self.tab.Indirect(start + 4 * j)) for j in range(n)]

    def strings(self, i: int) -> list[str]:
        o = self._off(i)
        if not o:
            return []
        start, n = self.tab.Vector(o), self.tab.VectorLen(o)
        return [self.tab.String(start + 4 * j).decode("utf-8", "replace") for j in range(n)]

    def scalars(self, i: int, flags: Any) -> list[Any] | None:
        o = self._off(i)
        if not o:
            return None
        start, n = self.tab.Vector(o), self.tab.VectorLen(o)
        size = flags.bytewidth
        return [self.tab.Get(flags, start + size * j) for j in range(n)]

    def bytes_vec(self, i: int) -> bytes | None:
        o = self._off(i)
        if not o:
            return None
        start, n = self.tab.Vector(o), self.tab.VectorLen(o)
        return bytes(self.tab.Bytes[start : start + n])
