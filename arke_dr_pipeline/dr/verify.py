"""Verification: offline for CARs (no node, no `ipfs`), online for snapshots."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from ..arke.snapshot_codec import decode_snapshot, snapshot_entries
from ..ipld.car import CarError, CarReader
from ..ipld.cid import CIDError, cid_str, parse_cid
from ..kubo.client import KuboClient
from .dagcheck import BackupInvalid, DagCheck
from .pointer import ArchiveError, require_pointer
from .progress import progress

BYTES_PER_ENTITY_LIMIT = 500


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
               use_sidecar: bool = True) -> tuple[dict, DagCheck]:
    """Check a CAR completely; (report, the check's state). Raises BackupInvalid."""
    car = car_file(path)
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
    report = check.finish(target)
    report.update({"car": str(car), "version": reader.version, "size": size,
                   "data_offset": reader.data_offset, "data_size": reader.data_size,
                   "sha256": reader.sha256, "roots": [cid_str(r) for r in reader.roots]})
    sidecar = read_sidecar(car) if use_sidecar else None
    if sidecar is not None:
        _compare_sidecar(report, sidecar)
        report["sidecar"] = str(sidecar_path(car))
    report["ok"] = True
    return report, check


def _compare_sidecar(report: dict, sidecar: dict) -> None:
    pairs = [("sha256", "sha256"), ("size", "size"), ("block_count", "block_count"),
             ("entity_count", "entity_count"), ("event_count", "event_count")]
    if sidecar.get("snapshot_cid") and report["snapshot_cid"] == sidecar["snapshot_cid"]:
        pass
    elif sidecar.get("snapshot_cid") and sidecar["snapshot_cid"] not in report["snapshots"].values():
        raise BackupInvalid(sidecar["snapshot_cid"], "the sidecar's snapshot is not in the CAR")
    else:
        pairs = pairs[:3]
    for rk, sk in pairs:
        if sk in sidecar and sidecar[sk] != report[rk]:
            raise BackupInvalid(None, f"{sk} is {report[rk]} but the sidecar says {sidecar[sk]}")


def verify_snapshot(client: KuboClient, pointer_path: str, cid: str | None = None) -> dict:
    """The seed's criteria: no duplicate PI, valid CIDs, under 500 bytes per entity."""
    if cid is None:
        cid = require_pointer(client, pointer_path).latest_snapshot_cid
        if not cid:
            raise ArchiveError("the index pointer names no snapshot yet")
    root = client.block_get(cid)
    header = decode_snapshot(root, f"snapshot {cid}")
    size = len(root)
    sizes = [0]

    def get_chunk(c: bytes) -> bytes:
        data = client.block_get(cid_str(c))
        sizes[0] += len(data)
        return data

    entries = list(snapshot_entries(header, get_chunk))
    size += sizes[0]
    pis = [e.pi for e in entries]
    dupes = sorted(p for p, n in Counter(pis).items() if n > 1)
    invalid = [e.pi for e in entries if not _valid_cid(e.tip_cid) or not _valid_cid(e.chain_cid)]
    per_entity = size / len(entries) if entries else 0.0
    checks = {
        "no_duplicate_pis": not dupes,
        "valid_cids": not invalid and _valid_text(header.event_cid),
        "size_per_entity_under_500": per_entity < BYTES_PER_ENTITY_LIMIT,
        "counts_consistent": header.total_count == len(entries),
    }
    return {
        "snapshot_cid": cid, "seq": header.seq, "schema": header.schema,
        "entity_count": len(entries), "total_count": header.total_count, "bytes": size,
        "bytes_per_entity": round(per_entity, 1), "duplicate_pis": dupes[:20],
        "invalid_cids": invalid[:20], "checks": checks, "ok": all(checks.values()),
    }


def _valid_cid(raw: bytes) -> bool:
    try:
        return parse_cid(cid_str(raw)) == raw
    except CIDError:
        return False


def _valid_text(text: str) -> bool:
    try:
        parse_cid(text)
        return True
    except CIDError:
        return False
