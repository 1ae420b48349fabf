"""The facts of manifests and events (CID -> PI, version, prev) for a check that asks about them
only at its end: a CAR read offline.

Past `FACT_LIMIT` they go to an SQLite table in the order they come (rows appended, no key
to keep sorted), and are indexed once, by one sort, when the check first asks. The whole-archive
rules are then joins SQLite runs in C (`violations`), where a lookup from Python per manifest,
per event, per entry and per step of the event chain cost a B-tree descent each: at 3.5 million
blocks the B-tree inserts and those lookups were ~30 % of the verification, and grew faster
than the archive. Below the limit they are a dict, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..plumbing import spill as limits
from ..plumbing.spill import SpillFile

Fact = tuple[str, int, bytes | None]


class Facts:
    """A dict of CID -> (PI, version, prev) that only grows until it is asked."""

    def __init__(self, disk: SpillFile, name: str):
        self._disk, self.name = disk, name
        self._limit = limits.FACT_LIMIT
        self._mem: dict[bytes, Fact] = {}
        self._table = ""
        self._indexed = False
        self._on_disk = 0

    @property
    def on_disk(self) -> bool:
        return bool(self._table)

    def __setitem__(self, cid: bytes, fact: Fact) -> None:
        self._mem[cid] = fact
        if len(self._mem) > self._limit:
            self.to_disk()

    def to_disk(self) -> str:
        """Every fact in the table (made on first use), memory emptied; the table's name."""
        if not self._table:
            self._table = self._disk.table_of(f"{self.name}_facts", "k BLOB, pi TEXT, ver INTEGER, prev BLOB")
        if self._mem:
            self._disk.executemany(f"INSERT INTO {self._table} VALUES (?, ?, ?, ?)",
                                   ((k, pi, ver, prev) for k, (pi, ver, prev) in self._mem.items()))
            self._on_disk += len(self._mem)
            self._mem = {}
        return self._table

    def indexed(self) -> str:
        """The table, every fact in it and indexed by CID (one sort, the first time)."""
        table = self.to_disk()
        if not self._indexed:
            self._disk.execute(f"CREATE INDEX {table}_k ON {table} (k)")
            self._indexed = True
        return table

    def get(self, cid: bytes, default=None):
        if cid in self._mem:
            return self._mem[cid]
        if not self._table:
            return default
        row = self._disk.execute(f"SELECT pi, ver, prev FROM {self.indexed()} WHERE k=?", (cid,)).fetchone()
        return default if row is None else (row[0], row[1], row[2])

    def __contains__(self, cid: object) -> bool:
        return self.get(cid, _MISSING) is not _MISSING  # type: ignore[arg-type]

    def __getitem__(self, cid: bytes) -> Fact:
        fact = self.get(cid, _MISSING)
        if fact is _MISSING:
            raise KeyError(cid)
        return fact

    def __len__(self) -> int:
        return len(self._mem) + self._on_disk

    def items(self) -> Iterator[tuple[bytes, Fact]]:
        yield from list(self._mem.items())
        if self._table:
            for k, pi, ver, prev in self._disk.execute(f"SELECT k, pi, ver, prev FROM {self._table}"):
                yield k, (pi, ver, prev)


_MISSING = object()


class Violations:
    """The first row breaking each whole-archive rule, found by SQLite over both tables of facts
    (the caller words the refusal as it would in memory)."""

    def __init__(self, disk: SpillFile, manifests: Facts, events: Facts):
        self._disk = disk
        self.m, self.e = manifests.indexed(), events.indexed()
        self._events = len(events)

    def _one(self, sql: str, params=()) -> tuple | None:
        return self._disk.execute(sql + " LIMIT 1", params).fetchone()

    def manifest_without_prev(self) -> tuple | None:
        """(CID, PI, version) of a manifest past version 1 with no prev."""
        return self._one(f"SELECT k, pi, ver FROM {self.m} WHERE prev IS NULL AND ver != 1")

    def manifest_prev(self) -> tuple | None:
        """(CID, PI, version, prev, the prev's PI or None, its version) of a manifest whose prev is
        not a manifest, or not the version before of the same entity."""
        return self._one(f"SELECT a.k, a.pi, a.ver, a.prev, b.pi, b.ver FROM {self.m} a "
                         f"LEFT JOIN {self.m} b ON b.k = a.prev "
                         "WHERE a.prev IS NOT NULL AND (b.k IS NULL OR b.pi != a.pi OR b.ver != a.ver - 1)")

    def event_prev(self) -> tuple | None:
        """(CID, prev) of an event whose prev is not an event."""
        return self._one(f"SELECT a.k, a.prev FROM {self.e} a LEFT JOIN {self.e} b ON b.k = a.prev "
                         "WHERE a.prev IS NOT NULL AND b.k IS NULL")

    def entries(self, entries: Iterable[tuple[str, int, bytes, bytes]]) -> int | None:
        """The position of the first entry (PI, version, tip, chain CID) whose tip is not that
        version's manifest or whose chain CID is not that version's event, or None."""
        table = self._disk.table_of("entries", "pi TEXT, ver INTEGER, tip BLOB, chain BLOB")
        try:
            self._disk.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?)", entries)
            row = self._one(
                f"SELECT min(x.rowid) FROM {table} x LEFT JOIN {self.m} m ON m.k = x.tip "
                f"LEFT JOIN {self.e} e ON e.k = x.chain WHERE m.k IS NULL OR m.pi != x.pi OR m.ver != x.ver "
                "OR e.k IS NULL OR e.pi != x.pi OR e.ver != x.ver")
        finally:
            self._disk.execute(f"DROP TABLE {table}")
        return None if row is None or row[0] is None else row[0] - 1

    def chain(self, head: bytes) -> tuple[int, bytes | None]:
        """(events walked from `head` back through `prev`, the CID the walk stopped at: None at
        the first event, else a block that is not an event), in one recursive query."""
        row = self._one(
            f"WITH RECURSIVE walk(k, n) AS (SELECT ?, 0 UNION ALL SELECT e.prev, walk.n + 1 FROM walk "
            f"JOIN {self.e} e ON e.k = walk.k WHERE walk.k IS NOT NULL AND walk.n <= ?) "
            "SELECT k, max(n) FROM walk", (head, self._events))
        return row[1], row[0]
