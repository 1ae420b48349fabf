"""The blocks a delta's base already holds, asked of its inventory file where it lies.

The inventory is sorted by CID text, so membership is a search of a few KiB of the file
(mapped, read by the page cache) that a sparse index points to: only the index is loaded.
Loading the base's rows into a set cost time and disk in proportion to the whole archive on
every delta (38 s of 135 s at 3.5 million blocks, B-tree inserts once the set spilled), when
the walk asks only about the links of the few blocks that are new.
"""

from __future__ import annotations

import mmap
import os
from bisect import bisect_right
from collections.abc import Iterator
from pathlib import Path

from ...ipld.cid import cid_str
from ..catalog.format import inventory_line
from ..plumbing.spill import CidSet, SpillFile


class SortedInventory:
    """`cid_text in inventory`: a sparse index (the first CID of every 4 KiB of rows, ~1 MB at
    3.5 million blocks) picks the stretch of rows, and one search of those bytes answers. A row
    out of order can only hide a CID (the walk then reads that block again), never name one
    that is absent."""

    STRIDE = 4096
    RELEASE_EVERY = 1 << 16

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDONLY)
        try:
            size = os.fstat(self._fd).st_size
            self._map = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ) if size else b""
        except BaseException:
            os.close(self._fd)
            raise
        self._asked = 0
        mm = self._map
        start = 0
        if mm[:1] == b"#":  # the header, checked; an inventory from before it has none
            start = (mm.find(b"\n") + 1) or len(mm)
            inventory_line(mm[:start].decode("utf-8", "replace"), str(self.path))
        self.start = start
        self._keys: list[bytes] = []
        self._offsets: list[int] = []
        row = start
        while row < len(mm):
            self._keys.append(mm[row:mm.find(b"\t", row)])
            self._offsets.append(row)
            newline = mm.find(b"\n", row + self.STRIDE)
            if newline < 0:
                break
            row = newline + 1
        self._offsets.append(len(mm))
        self.release()

    def release(self) -> None:
        """Unmap the pages read so far (the page cache keeps them): mapped pages count in the
        process's RSS, and the index and a delta's searches touch every page of a 283 MB file."""
        if isinstance(self._map, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)

    def _stretch(self, target: bytes) -> tuple[int, int]:
        """The bytes of rows where `target` would be: its index entry's 4 KiB."""
        i = bisect_right(self._keys, target) - 1
        if i < 0:
            return self.start, self.start
        return self._offsets[i], self._offsets[i + 1]

    def row_of(self, text: str) -> int:
        """Where the row of `text` starts, or -1."""
        return self._row(text.encode())

    def _row(self, target: bytes) -> int:
        self._asked += 1
        if self._asked % self.RELEASE_EVERY == 0:
            self.release()
        begin, end = self._stretch(target)
        if self._map[begin:begin + len(target) + 1] == target + b"\t":
            return begin
        found = self._map.find(b"\n" + target + b"\t", begin, end + len(target) + 1)
        return found + 1 if found >= 0 else -1

    def __contains__(self, text: str) -> bool:
        return self._row(text.encode()) >= 0

    def role(self, text: str) -> str | None:
        """The role the row of `text` gives, or None when there is no row."""
        target = text.encode()
        row = self._row(target)
        if row < 0:
            return None
        start = row + len(target) + 1
        return self._map[start:self._map.find(b"\t", start)].decode()

    def locate(self, text: str) -> int:
        """Where a row of `text` goes: the start of the first row whose CID sorts at or after it."""
        target = text.encode()
        row, end = self._stretch(target)
        mm = self._map
        while row < end:
            tab = mm.find(b"\t", row, end)
            if tab < 0 or mm[row:tab] >= target:
                return row
            newline = mm.find(b"\n", row, end)
            if newline < 0:
                return end
            row = newline + 1
        return end

    def row_end(self, row: int) -> int:
        newline = self._map.find(b"\n", row)
        return len(self._map) if newline < 0 else newline + 1

    def chunks(self, begin: int, end: int, chunk: int = 1 << 20) -> Iterator[bytes]:
        """The bytes from `begin` to `end`, read (not mapped: a pass over the whole file would
        otherwise hold all of it in the RSS)."""
        while begin < end:
            data = os.pread(self._fd, min(chunk, end - begin), begin)
            if not data:
                raise OSError(f"{self.path} ends before byte {end}")
            yield data
            begin += len(data)

    @property
    def size(self) -> int:
        return len(self._map)

    def close(self) -> None:
        if isinstance(self._map, mmap.mmap):
            self._map.close()
        os.close(self._fd)


def splice(base: SortedInventory, rows: list[str], out) -> None:
    """`base`'s rows with `rows` (sorted, none of them in `base`) put in their places, to `out`. The
    base's rows are copied as bytes, not parsed: they were checked when its backup wrote them, and
    a delta's inventory is the whole archive's (283 MB at 3.5 million blocks) for a few new rows."""
    pos = base.start
    for row in rows:
        cid = row.split("\t", 1)[0]
        at = base.locate(cid)
        if base.row_of(cid) == at:
            raise ValueError(f"{cid} is already a row of {base.path.name}")
        _copy(base, pos, at, out)
        out.write(row.encode() + b"\n")
        pos = at
    _copy(base, pos, base.size, out)


def spliced(base: SortedInventory, new: SortedInventory, added: list[str]) -> bool:
    """`new` is `base` with a row for each of `added` (sorted CIDs) put in, and otherwise the same
    bytes: one comparison of the two files, not a merge of their rows."""
    at_base, at_new = base.start, new.start
    for text in added:
        row = new.row_of(text)
        if row < at_new or not _same(new, at_new, row, base, at_base):
            return False
        at_base += row - at_new
        at_new = new.row_end(row)
    return new.size - at_new == base.size - at_base and _same(new, at_new, new.size, base, at_base)


def _copy(inventory: SortedInventory, begin: int, end: int, out) -> None:
    last = b""
    for data in inventory.chunks(begin, end):
        out.write(data)
        last = data
    if last and not last.endswith(b"\n"):
        out.write(b"\n")


def _same(a: SortedInventory, begin: int, end: int, b: SortedInventory, at: int) -> bool:
    """a[begin:end] == b[at:at + end - begin]."""
    if end - begin > b.size - at:
        return False
    for data in a.chunks(begin, end):
        if data != os.pread(b._fd, len(data), at):
            return False
        at += len(data)
    return True


class KnownBlocks:
    """The set a delta's walk skips: the base's inventory, and the new blocks as they are read."""

    def __init__(self, inventory: str | os.PathLike):
        self.base = SortedInventory(inventory)
        self.new = CidSet(SpillFile())

    def __contains__(self, cid: bytes) -> bool:
        return cid in self.new or cid_str(cid) in self.base

    def add(self, cid: bytes) -> bool:
        if cid_str(cid) in self.base:
            return False
        return self.new.add(cid)

    def close(self) -> None:
        self.base.close()
