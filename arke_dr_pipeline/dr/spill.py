"""Sets and maps of CIDs that move to disk past a size.

A backup of 3.5 million blocks needs every CID, and per event and manifest
its PI, version and prev, to be checked; in Python objects that is ~100
bytes a CID and ~260 an event: over a gigabyte. Below their limit these
structures are a plain set or dict (the 30k archive never leaves memory, and
stays as fast as it was); past it, each moves into one SQLite file of its
owner, in a private folder under the temporary directory (`TMPDIR`), and
every later operation goes there. SQLite bounds its own cache; the folder
is removed when the owner is collected or the process exits.
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

from ..errors import ArkeDrError

CID_LIMIT = 500_000  # CIDs only: ~100 bytes each in memory
FACT_LIMIT = 150_000  # a CID and a tuple: ~260 bytes each
CHUNK_LIMIT = 16  # snapshot chunks: up to ~3,600 entries each
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

    def table(self, value: bool) -> str:
        self._tables += 1
        name = f"t{self._tables}"
        columns = "k BLOB PRIMARY KEY, v BLOB" if value else "k BLOB PRIMARY KEY"
        self.execute(f"CREATE TABLE {name} ({columns}) WITHOUT ROWID")
        return name


def _remove(db: sqlite3.Connection, folder: str) -> None:
    db.close()
    shutil.rmtree(folder, ignore_errors=True)


class CidSet:
    """A set of CIDs (bytes); `add` says whether it was new."""

    def __init__(self, spill: SpillFile):
        self._spill, self._limit = spill, CID_LIMIT
        self._mem: set[bytes] | None = set()
        self._table = ""
        self._len = 0

    @property
    def on_disk(self) -> bool:
        return self._mem is None

    def add(self, key: bytes) -> bool:
        if self._mem is not None:
            if key in self._mem:
                return False
            self._mem.add(key)
            if len(self._mem) > self._limit:
                self._move()
            return True
        added = self._spill.execute(f"INSERT OR IGNORE INTO {self._table} VALUES (?)", (key,)).rowcount == 1
        self._len += added
        return added

    def update(self, keys) -> None:
        """Many at once: on disk, one statement for all of them."""
        keys = iter(keys)
        if self._mem is not None:
            for key in keys:
                self._mem.add(key)
                if len(self._mem) > self._limit:
                    self._move()
                    break
        if self._mem is None:
            self._len += self._spill.executemany(f"INSERT OR IGNORE INTO {self._table} VALUES (?)",
                                                    ((k,) for k in keys)).rowcount

    def discard(self, key: bytes) -> None:
        if self._mem is not None:
            self._mem.discard(key)
        else:
            self._len -= self._spill.execute(f"DELETE FROM {self._table} WHERE k=?", (key,)).rowcount

    def __contains__(self, key: object) -> bool:
        if self._mem is not None:
            return key in self._mem
        return self._spill.execute(f"SELECT 1 FROM {self._table} WHERE k=?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        return len(self._mem) if self._mem is not None else self._len

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[bytes]:
        if self._mem is not None:
            return iter(self._mem)
        return (k for (k,) in self._spill.execute(f"SELECT k FROM {self._table}"))

    def _move(self) -> None:
        self._table = self._spill.table(value=False)
        self._spill.executemany(f"INSERT INTO {self._table} VALUES (?)", ((k,) for k in self._mem))
        self._len, self._mem = len(self._mem), None


class CidMap:
    """A dict keyed by CID (bytes); values go to disk through `encode`/`decode`."""

    def __init__(self, spill: SpillFile, kind: str = "facts",
                 encode: Callable[[object], bytes] = marshal.dumps,
                 decode: Callable[[bytes], object] = marshal.loads):
        """`kind`: "cids" (values as small as a CID), "facts" or "chunks", which sets the limit."""
        self._spill = spill
        self._limit = {"cids": CID_LIMIT, "facts": FACT_LIMIT, "chunks": CHUNK_LIMIT}[kind]
        self._encode, self._decode = encode, decode
        self._mem: dict | None = {}
        self._table = ""
        self._len = 0

    @property
    def on_disk(self) -> bool:
        return self._mem is None

    def __setitem__(self, key: bytes, value) -> None:
        if self._mem is not None:
            self._mem[key] = value
            if len(self._mem) > self._limit:
                self._move()
            return
        cur = self._spill.execute(f"INSERT OR IGNORE INTO {self._table} VALUES (?, ?)",
                                     (key, self._encode(value)))
        if cur.rowcount == 1:
            self._len += 1
        else:
            self._spill.execute(f"UPDATE {self._table} SET v=? WHERE k=?", (self._encode(value), key))

    def setdefault(self, key: bytes, value) -> None:
        if self._mem is not None:
            if key not in self._mem:
                self[key] = value
            return
        self._len += self._spill.execute(f"INSERT OR IGNORE INTO {self._table} VALUES (?, ?)",
                                            (key, self._encode(value))).rowcount

    def get(self, key: bytes, default=None):
        if self._mem is not None:
            return self._mem.get(key, default)
        row = self._spill.execute(f"SELECT v FROM {self._table} WHERE k=?", (key,)).fetchone()
        return default if row is None else self._decode(row[0])

    def __getitem__(self, key: bytes):
        if self._mem is not None:
            return self._mem[key]
        row = self._spill.execute(f"SELECT v FROM {self._table} WHERE k=?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return self._decode(row[0])

    def pop(self, key: bytes, default=None):
        if self._mem is not None:
            return self._mem.pop(key, default)
        row = self._spill.execute(f"DELETE FROM {self._table} WHERE k=? RETURNING v", (key,)).fetchone()
        if row is None:
            return default
        self._len -= 1
        return self._decode(row[0])

    def __contains__(self, key: object) -> bool:
        if self._mem is not None:
            return key in self._mem
        return self._spill.execute(f"SELECT 1 FROM {self._table} WHERE k=?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        return len(self._mem) if self._mem is not None else self._len

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[bytes]:
        if self._mem is not None:
            return iter(self._mem)
        return (k for (k,) in self._spill.execute(f"SELECT k FROM {self._table}"))

    def items(self) -> Iterator[tuple[bytes, object]]:
        if self._mem is not None:
            return iter(self._mem.items())
        return ((k, self._decode(v)) for k, v in self._spill.execute(f"SELECT k, v FROM {self._table}"))

    def _move(self) -> None:
        self._table = self._spill.table(value=True)
        self._spill.executemany(f"INSERT INTO {self._table} VALUES (?, ?)",
                                   ((k, self._encode(v)) for k, v in self._mem.items()))
        self._len, self._mem = len(self._mem), None


class CidQueue:
    """A first-in first-out queue of CIDs, on disk past `CID_LIMIT`: the
    frontier of a walk over millions of blocks."""

    def __init__(self, directory: str | None = None):
        self._mem: deque[bytes] = deque()
        self._directory = directory
        self._file = None
        self._read = 0
        self._len = 0

    def extend(self, cids) -> None:
        for cid in cids:
            if self._file is None and len(self._mem) < CID_LIMIT:
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
    sorted runs of `CID_LIMIT` lines (at least 1,000: each run is an open
    file while they merge) in files, merged."""

    def __init__(self, directory: str | None = None):
        self._lines: list[str] = []
        self._runs: list = []
        self._directory = directory
        self.count = 0

    def add(self, line: str) -> None:
        self._lines.append(line)
        self.count += 1
        if len(self._lines) >= max(CID_LIMIT, 1000):
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
