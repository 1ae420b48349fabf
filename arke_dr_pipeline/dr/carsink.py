"""CAR files written safely: under `.partial`, hashed as written, fsynced, renamed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..ipld.car import car_header, car_section
from .config import Settings


def staging_car_path(settings: Settings, seq: int) -> Path:
    """The CAR written while the inventory is taken; the export renames it into place."""
    return settings.backups_dir / f".arke-{seq}.staging.car"


class CarSink:
    """A CAR written under `<path>.partial`, hashed as it goes; `commit` fsyncs and renames."""

    def __init__(self, path: Path, root: bytes):
        self.path, self.tmp = path, path.with_name(path.name + ".partial")
        self.sha = hashlib.sha256()
        self.size = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out = open(self.tmp, "wb", buffering=1 << 20)
        self._write(car_header([root]))

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self.sha.update(data)
        self.size += len(data)

    def add(self, cid: bytes, data: bytes) -> None:
        self._write(car_section(cid, data))

    def commit(self) -> None:
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        """After `commit`, nothing to do; otherwise the partial file goes, even
        when closing it fails (a full disk fails the buffered write again)."""
        try:
            self._out.close()
        except OSError:
            pass
        finally:
            self.tmp.unlink(missing_ok=True)
