"""Paths handed to us by a job's config must stay inside the backups folder."""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import ArkeDrError


class PathRefused(ArkeDrError, ValueError):
    pass


def backup_path(backups_dir: str | os.PathLike, car_path: str) -> Path:
    """`car_path` resolved (symlinks included) and proven to lie under `backups_dir`.

    Relative paths are taken relative to the backups folder, so a job config
    can say `arke-3-....car`.
    """
    shown = car_path if len(car_path) <= 200 else car_path[:100] + "..." + car_path[-60:]
    if "\0" in car_path:
        raise PathRefused(f"car_path {shown!r} contains a NUL byte")
    try:
        root = Path(backups_dir).resolve()
        candidate = Path(car_path)
        if not candidate.is_absolute():
            candidate = root / candidate
        resolved = candidate.resolve()
        if not resolved.is_relative_to(root) or resolved == root:
            raise PathRefused(f"car_path {shown!r} is outside the backups folder {root}")
        if not resolved.exists():
            raise PathRefused(f"car_path {shown!r}: no such file in {root}")
        if not resolved.is_file():
            raise PathRefused(f"car_path {shown!r} is not a regular file")
    except OSError as exc:
        raise PathRefused(f"car_path {shown!r}: {exc.strerror or exc}") from None
    return resolved


def staging_car_path(backups_dir: Path, seq: int) -> Path:
    """The CAR written while the inventory is taken; the export renames it into place."""
    return backups_dir / f".arke-{seq}.staging.car"


def staging_delta_path(backups_dir: Path, seq: int) -> Path:
    """The CAR of only the new blocks an inventory read, when it extended a base's inventory;
    a `.base` file beside it names the base and the snapshot."""
    return backups_dir / f".arke-{seq}.staging.delta.car"
