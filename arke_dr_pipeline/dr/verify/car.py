"""Verification of a CAR, offline: no node, no `ipfs`, only the file (and its sidecar)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ...ipld.car import CarError, CarReader
from ...ipld.cid import CIDError, cid_str, parse_cid
from ..catalog.format import NewerFormat, check_format
from ..plumbing.progress import progress
from .dagcheck import BackupInvalid, DagCheck
from .report import BackupReport


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


def verify_car(path: str | os.PathLike, *, snapshot_cid: str | None = None, seq: int | None = None,
               use_sidecar: bool = True, lost: set[bytes] | None = None) -> tuple[BackupReport, DagCheck]:
    """Check a CAR completely; (report, the check's state). Raises BackupInvalid.

    A delta (its sidecar says so) is checked with the chain it extends.
    Blocks the sidecar (or `lost`) says the node had lost when the backup
    was taken may be missing (dr/backup/loss.py); any other missing block refuses it."""
    car = car_file(path)
    sidecar = read_sidecar(car) if use_sidecar else None
    if sidecar is not None and sidecar.get("kind") == "delta":
        from ..catalog.chains import chain_of, verify_chain

        return verify_chain(chain_of(car), snapshot_cid=snapshot_cid, seq=seq)
    size = car.stat().st_size
    try:
        target = parse_cid(snapshot_cid) if snapshot_cid else None
    except CIDError as exc:
        raise BackupInvalid(None, str(exc)) from None
    bar = progress(f"verifying {car.name}", total=size, unit="B")
    try:
        with open(car, "rb", buffering=1 << 20) as fh:
            try:
                reader = CarReader(fh, hash_bytes=True)
                check = DagCheck(list(reader.roots))
                check.declared = declared_lost(sidecar) if lost is None else lost
                last = reader.offset
                for block in reader:
                    check.add(block.cid, block.data)
                    if reader.offset - last > 1 << 24:
                        bar.update(reader.offset - last)
                        last = reader.offset
            except CarError as exc:
                raise BackupInvalid(None, f"{car.name}: {exc}") from None
    finally:
        bar.close()
    root = reader.roots[0]
    if target is None:
        target = root
    if seq is not None:
        target = check.snapshot_by_seq(target, seq)
    try:
        report = check.finish(target)
    except BackupInvalid as exc:
        if use_sidecar and sidecar is None and "block missing" in exc.problem:
            raise BackupInvalid(exc.cid, f"{exc.problem}; {sidecar_path(car).name} is missing, and a delta's "
                                         "sidecar is what names the backup it extends") from None
        raise
    report = report.with_car(
        car=str(car), version=reader.version, size=size, data_offset=reader.data_offset,
        data_size=reader.data_size, sha256=reader.sha256, roots=[cid_str(r) for r in reader.roots])
    if sidecar is not None:
        _compare_sidecar(report, sidecar)
        report = report.with_car(sidecar=str(sidecar_path(car)))
    return report, check


def declared_lost(sidecar: dict | None) -> set[bytes]:
    from ..backup.loss import LossRefused, declared

    try:
        return declared(sidecar)
    except LossRefused as exc:
        raise BackupInvalid(None, str(exc)) from None


def _compare_sidecar(report: BackupReport, sidecar: dict) -> None:
    pairs = [("sha256", "sha256"), ("size", "size"), ("block_count", "block_count"),
             ("entity_count", "entity_count"), ("event_count", "event_count")]
    if sidecar.get("snapshot_cid") and report.snapshot_cid == sidecar["snapshot_cid"]:
        pass
    elif sidecar.get("snapshot_cid") and sidecar["snapshot_cid"] not in report.snapshots.values():
        raise BackupInvalid(sidecar["snapshot_cid"], "the sidecar's snapshot is not in the CAR")
    else:
        pairs = pairs[:3]
    for rk, sk in pairs:
        if sk in sidecar and sidecar[sk] != getattr(report, rk):
            raise BackupInvalid(None, f"{sk} is {getattr(report, rk)} but the sidecar says {sidecar[sk]}")
