"""A backup's files beside its CAR: the sidecar that lists it, and the checks any path handed to us must pass."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..verify.dagcheck import BackupInvalid
from .format import NewerFormat, check_format


def sidecar_path(car: Path) -> Path:
    return car.with_suffix(".json")


def read_sidecar(car: Path) -> dict | None:
    path = sidecar_path(car)
    if not path.exists():
        return None
    try:
        if not path.is_file():
            raise BackupInvalid(None, f"sidecar {path} is not a regular file")
        if path.stat().st_size > 1 << 20:
            raise BackupInvalid(None, f"sidecar {path} is over 1 MiB: not one of ours")
        sidecar = json.loads(path.read_bytes())
    except (ValueError, RecursionError):
        raise BackupInvalid(None, f"sidecar {path} is not JSON") from None
    except OSError as exc:
        raise BackupInvalid(None, f"sidecar {path} cannot be read: {exc.strerror or exc}") from None
    if not isinstance(sidecar, dict):
        raise BackupInvalid(None, f"sidecar {path} is not a JSON object")
    try:
        check_format(sidecar.get("format"), f"sidecar {path}")
    except NewerFormat as exc:
        raise BackupInvalid(None, str(exc)) from None
    return sidecar


def car_file(path: str | os.PathLike) -> Path:
    """The CAR at `path`, or a one-line refusal saying what is wrong with the path."""
    try:
        car = Path(path)
        if "\0" in str(car):
            raise BackupInvalid(None, "the CAR path contains a NUL byte")
        if not car.exists():
            raise BackupInvalid(None, f"{_shown(car)}: no such file")
        if not car.is_file():
            raise BackupInvalid(None, f"{_shown(car)}: not a regular file")
        with open(car, "rb"):
            pass
    except OSError as exc:
        raise BackupInvalid(None, f"{_shown(path)}: {exc.strerror or exc}") from None
    return car


def _shown(path) -> str:
    text = str(path)
    return text if len(text) <= 200 else text[:100] + "..." + text[-60:]


def sha256_file(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb", buffering=1 << 20) as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()
