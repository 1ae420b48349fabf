"""Sets and maps of CIDs that move to disk past a size.

A backup of 3.5 million blocks needs every CID, and per event and manifest
its PI, version and prev, to be checked; in Python objects that is ~100
bytes a CID and ~260 an event: over a gigabyte. Below their limit these
structures are a plain set or dict (the 30k archive never leaves memory, and
stays as fast as it was); past it, the keys in memory are written at once
into one SQLite file of their owner, in a private folder under the
temporary directory (`TMPDIR`), and memory starts again. A Bloom filter of
what was written answers most lookups of keys never written without a
query. SQLite bounds its own cache; the folder is removed when the owner is
collected or the process exits.
"""

from __future__ import annotations

import heapq
import marshal
import shutil
import sqlite3
import tempfile
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from ...errors import ArkeDrError

CID_LIMIT = 400_000  # CIDs only: ~100 bytes each in memory
FACT_LIMIT = 150_000  # a CID and a tuple: ~250 bytes each
LINK_LIMIT = 250_000  # a CID and the CID linking to it: ~170 bytes each
CHUNK_LIMIT = 16  # snapshot chunks: up to ~3,600 entries each
INLINE_LIMIT = 0  # a whole snapshot's entries (32 MB at 40,000 entities as objects): straight to disk
# Lines and a walk's frontier are only appended and read back in order, so
# on disk they cost a sequential write: they get less memory than the sets
# and maps that are looked up (an inventory row is ~170 bytes in memory).
LINE_LIMIT = 100_000
QUEUE_LIMIT = 100_000
CACHE_KIB = 16 * 1024


class SpillError(ArkeDrError, OSError):
    """The spill file could not be written (a full or unwritable `TMPDIR`)."""


class SpillFile:
    """One SQLite file shared by the structures of one owner, made on first use."""

    def __init__(self, directory: str | None = None):
        self._directory = directory
        self._db: sqlite3.Connection | None = None
        self._folder = ""
        self._tables = 0

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self._folder = tempfile.mkdtemp(prefix="arke-spill-", dir=self._directory)
                db = sqlite3.connect(Path(self._folder) / "spill.db", isolation_level=None)
                for pragma in ("journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE",
                               "temp_store=FILE", f"cache_size=-{CACHE_KIB}"):
                    db.execute(f"PRAGMA {pragma}")
            except (OSError, sqlite3.Error) as exc:
                raise SpillError(f"cannot keep CIDs on disk in {self._directory or tempfile.gettempdir()}: "
                                 f"{exc}") from None
            self._db = db
            weakref.finalize(self, _remove, db, self._folder)
        return self._db

    def execute(self, sql: str, params=()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, params)
        except sqlite3.Error as exc:
            raise SpillError(f"cannot keep CIDs on disk in {self._folder}: {exc}") from None

    def executemany(self, sql: str, rows) -> sqlite3.Cursor:
        try:
            return self.db.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise SpillError(f"cannot keep CIDs on disk in {self._folder}: {exc}") from None

    def table_of(self, name: str, columns: str) -> str:
        """A new table of these columns, rows kept in the order they come (no key to keep sorted)."""
        self._tables += 1
        table = f"{name}{self._tables}"
        self.execute(f"CREATE TABLE {table} ({columns})")
        return table

    def table(self, value: bool) -> str:
        self._tables += 1
        name = f"t{self._tables}"
        columns = "k BLOB PRIMARY KEY, v BLOB" if value else "k BLOB PRIMARY KEY"
        self.execute(f"CREATE TABLE {name} ({columns}) WITHOUT ROWID")
        return name


def _remove(db: sqlite3.Connection, folder: str) -> None:
    db.close()
    shutil.rmtree(folder, ignore_errors=True)


class _Bloom:
    """The keys written to disk, approximately: a lookup of a CID never
    written there (most of them: a walk asks about links before it reads
    their blocks) answers here without a query. 4 MB, ~2 % false positives
    at 3.5 million keys."""

    BITS = 1 << 25

    def __init__(self):
        self._bits = bytearray(self.BITS >> 3)

    def add(self, key: bytes) -> None:
        h, bits, mask = hash(key), self._bits, self.BITS - 1
        a, b = h & mask, (h >> 32) | 1
        for p in (a, (a + b) & mask, (a + 2 * b) & mask):
            bits[p >> 3] |= 1 << (p & 7)

    def __contains__(self, key: bytes) -> bool:
        h, bits, mask = hash(key), self._bits, self.BITS - 1
        a, b = h & mask, (h >> 32) | 1
        c, d = (a + b) & mask, (a + 2 * b) & mask
        return bool(bits[a >> 3] >> (a & 7) & bits[c >> 3] >> (c & 7) & bits[d >> 3] >> (d & 7) & 1)


class _Tiers:
    """New keys in memory; past the limit, all of them written to disk at once
    (one statement) and memory starts again. A key is in one tier only.
    Subclasses hold the memory tier as `_mem` (a set or a dict)."""

    _mem: set | dict

    def __init__(self, spill: SpillFile, limit: int, value: bool):
        self.spill = self._spill = spill
        self._limit, self._value = limit, value
        self._table = ""
        self._bloom: _Bloom | None = None
        self._disk = 0

    @property
    def on_disk(self) -> bool:
        return bool(self._table)

    def _maybe_on_disk(self, key: bytes) -> bool:
        return self._bloom is not None and key in self._bloom

    def _select(self, key: bytes, column: str) -> tuple | None:
        return self._spill.execute(f"SELECT {column} FROM {self._table} WHERE k=?", (key,)).fetchone()

    def _write(self, mem: set | dict, encode: Callable[[object], bytes] | None = None) -> None:
        """Every key in memory to disk, in key order (SQLite then appends to
        its B-tree's pages instead of visiting them at random), a row at a
        time: no second copy of what memory holds."""
        if not self._table:
            self._table = self._spill.table(value=self._value)
            self._bloom = _Bloom()
        keys = sorted(mem)
        if encode is None:
            self._spill.executemany(f"INSERT INTO {self._table} VALUES (?)", ((k,) for k in keys))
        else:
            self._spill.executemany(f"INSERT INTO {self._table} VALUES (?, ?)", ((k, encode(mem[k])) for k in keys))
        for key in keys:
            self._bloom.add(key)
        self._disk += len(keys)

    def _delete(self, key: bytes, returning: bool = False):
        cur = self._spill.execute(f"DELETE FROM {self._table} WHERE k=?" + (" RETURNING v" if returning else ""),
                                  (key,))
        if returning:
            row = cur.fetchone()
            self._disk -= row is not None
            return row
        self._disk -= cur.rowcount
        return None

    def _disk_keys(self) -> Iterator[bytes]:
        if self._table:
            yield from (k for (k,) in self._spill.execute(f"SELECT k FROM {self._table}"))

    def __contains__(self, key: object) -> bool:
        return key in self._mem or (self._maybe_on_disk(key) and self._select(key, "1") is not None)

    def __len__(self) -> int:
        return len(self._mem) + self._disk

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[bytes]:
        yield from list(self._mem)
        yield from self._disk_keys()


class CidSet(_Tiers):
    """A set of CIDs (bytes); `add` says whether it was new."""

    def __init__(self, spill: SpillFile):
        super().__init__(spill, CID_LIMIT, value=False)
        self._mem: set[bytes] = set()

    def add(self, key: bytes) -> bool:
        if key in self._mem or (self._maybe_on_disk(key) and self._select(key, "1") is not None):
            return False
        self._mem.add(key)
        if len(self._mem) > self._limit:
            self._write(self._mem)
            self._mem = set()
        return True

    def update(self, keys) -> None:
        for key in keys:
            self.add(key)

    def discard(self, key: bytes) -> None:
        if key in self._mem:
            self._mem.discard(key)
        elif self._maybe_on_disk(key):
            self._delete(key)



class CidMap(_Tiers):
    """A dict keyed by CID (bytes); values go to disk through `encode`/`decode`."""

    def __init__(self, spill: SpillFile, kind: str = "facts",
                 encode: Callable[[object], bytes] = marshal.dumps,
                 decode: Callable[[bytes], object] = marshal.loads):
        """`kind`: "facts", "links", "chunks" or "inline", which sets the limit."""
        super().__init__(spill, {"facts": FACT_LIMIT, "links": LINK_LIMIT, "chunks": CHUNK_LIMIT,
                                 "inline": INLINE_LIMIT}[kind], value=True)
        self._encode, self._decode = encode, decode
        self._mem: dict = {}

    def _put(self, key: bytes, value) -> None:
        self._mem[key] = value
        if len(self._mem) > self._limit:
            self._write(self._mem, self._encode)
            self._mem = {}

    def __setitem__(self, key: bytes, value) -> None:
        if key not in self._mem and self._maybe_on_disk(key):
            cur = self._spill.execute(f"UPDATE {self._table} SET v=? WHERE k=?", (self._encode(value), key))
            if cur.rowcount:
                return
        self._put(key, value)

    def setdefault(self, key: bytes, value) -> None:
        if key not in self._mem and not (self._maybe_on_disk(key) and self._select(key, "1") is not None):
            self._put(key, value)

    def get(self, key: bytes, default=None):
        if key in self._mem:
            return self._mem[key]
        row = self._select(key, "v") if self._maybe_on_disk(key) else None
        return default if row is None else self._decode(row[0])

    def __getitem__(self, key: bytes):
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def pop(self, key: bytes, default=None):
        if key in self._mem:
            return self._mem.pop(key)
        row = self._delete(key, returning=True) if self._maybe_on_disk(key) else None
        return default if row is None else self._decode(row[0])

    def items(self) -> Iterator[tuple[bytes, object]]:
        yield from list(self._mem.items())
        if self._table:
            yield from ((k, self._decode(v)) for k, v in self._spill.execute(f"SELECT k, v FROM {self._table}"))


_MISSING = object()


class CidQueue:
    """A first-in first-out queue of CIDs, on disk past `QUEUE_LIMIT`: the
    frontier of a walk over millions of blocks."""

    def __init__(self, directory: str | None = None):
        self._mem: deque[bytes] = deque()
        self._directory = directory
        self._file = None
        self._read = 0
        self._len = 0

    def extend(self, cids) -> None:
        for cid in cids:
            if self._file is None and len(self._mem) < QUEUE_LIMIT:
                self._mem.append(cid)
            else:
                if self._file is None:
                    self._file = tempfile.TemporaryFile(dir=self._directory)
                self._file.seek(0, 2)
                self._file.write(len(cid).to_bytes(2, "big") + cid)
            self._len += 1

    def __len__(self) -> int:
        return self._len

    def take(self, n: int) -> list[bytes]:
        """Up to `n` CIDs, oldest first."""
        out = []
        while self._mem and len(out) < n:
            out.append(self._mem.popleft())
        if self._file is not None and len(out) < n:
            self._file.seek(self._read)
            while len(out) < n:
                size = self._file.read(2)
                if not size:
                    break
                out.append(self._file.read(int.from_bytes(size, "big")))
            self._read = self._file.tell()
        self._len -= len(out)
        return out


class SortedLines:
    """Text lines given in any order, read back sorted, in bounded memory:
    sorted runs of `LINE_LIMIT` lines (at least 1,000: each run is an open
    file while they merge) in files, merged."""

    def __init__(self, directory: str | None = None):
        self._lines: list[str] = []
        self._runs: list = []
        self._directory = directory
        self.count = 0

    def add(self, line: str) -> None:
        self._lines.append(line)
        self.count += 1
        if len(self._lines) >= max(LINE_LIMIT, 1000):
            self._spill()

    def _spill(self) -> None:
        self._lines.sort()
        run = tempfile.TemporaryFile("w+", dir=self._directory)
        run.writelines(f"{line}\n" for line in self._lines)
        run.seek(0)
        self._runs.append(run)
        self._lines = []

    def __iter__(self) -> Iterator[str]:
        """Each line once, sorted; the runs are closed at the end."""
        if not self._runs:
            self._lines.sort()
            yield from self._lines
            return
        if self._lines:
            self._spill()
        try:
            for line in heapq.merge(*self._runs):
                yield line[:-1]
        finally:
            for run in self._runs:
                run.close()
            self._runs = []
