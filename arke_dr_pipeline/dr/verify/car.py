"""Verification of a CAR, offline: no node, no `ipfs`, only the file (and its sidecar)."""

from __future__ import annotations

import os
from pathlib import Path

from ...ipld.car import CarError, CarReader
from ...ipld.cid import CIDError, cid_str, parse_cid
from ..backup.loss import declared_lost
from ..catalog.chains import chain_of
from ..catalog.sidecar import car_file, read_sidecar, sha256_file, sidecar_path
from ..plumbing.progress import progress
from .dagcheck import BackupInvalid, DagCheck
from .report import BackupReport


def verify_car(path: str | os.PathLike, *, snapshot_cid: str | None = None, seq: int | None = None,
               use_sidecar: bool = True, lost: set[bytes] | None = None) -> tuple[BackupReport, DagCheck]:
    """Check a CAR completely; (report, the check's state). Raises BackupInvalid.

    A delta (its sidecar says so) is checked with the chain it extends.
    Blocks the sidecar (or `lost`) says the node had lost when the backup
    was taken may be missing (dr/backup/loss.py); any other missing block refuses it."""
    car = car_file(path)
    sidecar = read_sidecar(car) if use_sidecar else None
    if sidecar is not None and sidecar.get("kind") == "delta":
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
                check = DagCheck(list(reader.roots), sorted_refs=True)
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


def verify_chain(chain: list[Path], *, snapshot_cid: str | None = None,
                 seq: int | None = None) -> tuple[BackupReport, DagCheck]:
    """The chain as one archive, rooted at its newest CAR: every block hashed, every link inside the chain."""
    newest = chain[-1]
    with open(newest, "rb") as fh:
        roots = list(CarReader(fh).roots)
    check = DagCheck(roots, sorted_refs=True)
    for link in chain:
        check.declared |= declared_lost(read_sidecar(link))
    bar = progress(f"verifying the chain of {newest.name}", total=sum(p.stat().st_size for p in chain), unit="B")
    try:
        for car in chain:
            try:
                with open(car, "rb", buffering=1 << 20) as fh:
                    reader = CarReader(fh, hash_bytes=True)
                    for block in reader:
                        check.add(block.cid, block.data)
                bar.update(car.stat().st_size)
            except CarError as exc:
                raise BackupInvalid(None, f"{car.name}: {exc}") from None
    finally:
        bar.close()
    target = parse_cid(snapshot_cid) if snapshot_cid else roots[0]
    if seq is not None:
        target = check.snapshot_by_seq(target, seq)
    report = check.finish(target).with_car(car=str(newest), size=newest.stat().st_size, version=1,
                                            sha256=sha256_file(newest), roots=[cid_str(r) for r in roots])
    sidecar = read_sidecar(newest)
    if sidecar is not None and (sidecar.get("sha256"), sidecar.get("size")) != (report.sha256, report.size):
        raise BackupInvalid(None, f"{newest.name} is not the file its sidecar describes (sha256 or size differs)")
    return report, check
