"""Paths handed to us by a job's config must stay inside the backups folder."""

from __future__ import annotations

import os
from pathlib import Path


class PathRefused(ValueError):
    pass


def backup_path(backups_dir: str | os.PathLike, car_path: str) -> Path:
    """`car_path` resolved (symlinks included) and proven to lie under `backups_dir`.

    Relative paths are taken relative to the backups folder, so a job config
    can say `arke-3-....car`.
    """
    root = Path(backups_dir).resolve()
    candidate = Path(car_path)
    if not candidate.is_absolute():
        candidate = root / candidate
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root) or resolved == root:
        raise PathRefused(f"car_path {car_path!r} is outside the backups folder {root}")
    if not resolved.is_file():
        raise PathRefused(f"car_path {car_path!r}: no such file in {root}")
    return resolved


def staging_car_path(backups_dir: Path, seq: int) -> Path:
    """The CAR written while the inventory is taken; the export renames it into place."""
    return backups_dir / f".arke-{seq}.staging.car"
