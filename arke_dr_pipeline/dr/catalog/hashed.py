"""A backup's sha256, hashed once, then known by the file's identity.

Choosing a delta's base checks each CAR of its chain against the sha256
the next one recorded. Hashing the chain for that on every delta read the
whole full each day: 8 s of a 45 s delta at 3.5 million blocks, a cost in
proportion to the archive. The choice now trusts a hash taken earlier of
the same file (same device, inode, size and modification time, in
`car-hashes.json` beside the backups), as restic trusts its index when it
backs up and reads the data only when asked to check it. The sha256 a
backup computes as it writes its CAR is recorded then. Every read of a
chain as data (restore, `verify-car`, the drill, the Dagster check, a
repair) still hashes every byte of every CAR.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..plumbing.files import atomic_write_json
from .sidecar import sha256_file

RECORD = "car-hashes.json"


def _identity(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def _read(folder: Path) -> dict:
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def remember(car: Path, sha256: str) -> None:
    """`sha256` is the hash of `car` as it is now (computed as it was written or read)."""
    folder = car.parent
    try:
        record = {name: v for name, v in _read(folder).items() if (folder / name).is_file()}
        record[car.name] = {"file": _identity(car), "sha256": sha256}
        atomic_write_json(folder / RECORD, record)
    except OSError:
        pass  # a record not kept costs one more hash later, nothing else


def known_sha256(car: Path) -> str:
    """The sha256 of `car`, hashed again only when the file is not the one last hashed."""
    entry = _read(car.parent).get(car.name)
    if isinstance(entry, dict) and entry.get("file") == _identity(car) and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    sha = sha256_file(car)
    remember(car, sha)
    return sha
