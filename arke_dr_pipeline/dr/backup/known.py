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

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with open(self.path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        mm = self._map
        start = 0
        if mm[:1] == b"#":  # the header, checked; an inventory from before it has none
            start = (mm.find(b"\n") + 1) or len(mm)
            inventory_line(mm[:start].decode("utf-8", "replace"), str(self.path))
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

    def __contains__(self, text: str) -> bool:
        target = text.encode()
        i = bisect_right(self._keys, target) - 1
        if i < 0:
            return False
        begin, end = self._offsets[i], self._offsets[i + 1]
        if self._map[begin:begin + len(target) + 1] == target + b"\t":
            return True
        return self._map.find(b"\n" + target + b"\t", begin, end + len(target) + 1) >= 0

    def close(self) -> None:
        if isinstance(self._map, mmap.mmap):
            self._map.close()


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
