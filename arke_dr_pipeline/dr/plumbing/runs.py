"""Items that only grow, read back sorted: the linear alternative to a set on disk.

A set past memory in a B-tree (spill.py) costs more per insert as it grows:
each batch of sorted keys lands all over a tree larger than SQLite's cache.
When the question can wait until every item is in (is each link's target a
block? is each block linked?), sorting answers it instead: runs sorted in
memory, written once, sequentially, and merged when read. Each item costs
the same at 3.5 million as at 30,000, give or take the merge's log of the
number of runs.
"""

from __future__ import annotations

import heapq
import marshal
import tempfile
from collections.abc import Iterator

from .spill import SpillError

BATCH = 4096  # items per marshal record in a run file
MAX_RUNS = 64  # open files, and the merge's fan-in: past it, the runs are merged into one


class SortedRuns:
    """Items (bytes, or tuples of them) in any order, read back sorted as often
    as asked; past `limit` in memory, sorted runs in files under `TMPDIR`."""

    def __init__(self, limit: int, directory: str | None = None):
        self._items: list = []
        self._runs: list = []
        self._limit = max(limit, 1)
        self._directory = directory
        self.count = 0

    def add(self, item) -> None:
        self._items.append(item)
        self.count += 1
        if len(self._items) >= self._limit:
            self._spill()

    def __len__(self) -> int:
        return self.count

    def _spill(self) -> None:
        self._items.sort()
        self._runs.append(self._write(self._items))
        self._items = []
        if len(self._runs) >= MAX_RUNS:
            merged = self._write(heapq.merge(*(_read(run) for run in self._runs)))
            for run in self._runs:
                run.close()
            self._runs = [merged]

    def _write(self, items) -> object:
        """A run file of `items`, already sorted."""
        try:
            run = tempfile.TemporaryFile(dir=self._directory)
            batch: list = []
            for item in items:
                batch.append(item)
                if len(batch) == BATCH:
                    marshal.dump(batch, run)
                    batch = []
            if batch:
                marshal.dump(batch, run)
            run.flush()
        except OSError as exc:
            raise SpillError(f"cannot keep sorted runs in {self._directory or tempfile.gettempdir()}: {exc}") from None
        return run

    def __iter__(self) -> Iterator:
        self._items.sort()
        if not self._runs:
            return iter(list(self._items))
        return heapq.merge(*(_read(run) for run in self._runs), list(self._items))


def _read(run) -> Iterator:
    """One run's items in order; the position is this reader's own, so two readers of a run do not interfere."""
    pos = 0
    while True:
        run.seek(pos)
        try:
            batch = marshal.load(run)
        except EOFError:
            return
        pos = run.tell()
        yield from batch
