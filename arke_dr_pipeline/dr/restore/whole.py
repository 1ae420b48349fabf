"""Restore the whole archive from one CAR, on any node, empty or not.

Nothing touches the node until the CAR has verified offline. Then: import
the blocks and pin their cover (harmless: MFS is unchanged), install the tip
tree in one swap, and write the index pointer last, so a pointer never names
a half-built index; our record (`snapshots/latest.json`) follows the
pointer. Rerunning after any interruption completes the same state. The
whole sequence holds the archive lock: no build, backup or other restore
runs beside it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ...arke.models import POINTER_SCHEMA, IndexPointer
from ...errors import ArkeDrError
from ...ipld.car import CarReader
from ...ipld.cid import parse_cid
from ...kubo.client import KuboClient
from ..archive.pointer import read_pointer, replace_fields, snapshot_record
from ..archive.snapshot import now_ts
from ..archive.tips import install_tips, iter_tips, read_tips
from ..backup.loss import summary as loss_summary
from ..backup.pins import pin_present
from ..catalog.chains import resolve
from ..catalog.sidecar import car_file, read_sidecar
from ..plumbing.config import Settings
from ..plumbing.files import atomic_write_json
from ..plumbing.lock import replacing_archive
from ..plumbing.progress import log
from ..plumbing.spill import SortedLines
from ..verify.car import verify_car, verify_chain
from ..verify.dagcheck import BackupInvalid, DagCheck
from ..verify.report import BackupReport
from .importer import import_file


class RestoreRefused(ArkeDrError, RuntimeError):
    """The node holds something else; restoring would overwrite it.

    The message tells a CLI user to pass `--force`; `in_dagster` says the
    same in the restore job's words."""

    def in_dagster(self) -> str:
        return str(self).replace("pass --force", "set `force: true` in the run config")


class SnapshotTips:
    """The chosen snapshot's (PI, tip file text) pairs, sorted by PI, read again from
    the verified CAR's check each time a step needs them: at 10x, 300,000
    entries held as objects through the tip tree's build and read-back took
    the restore past 300 MB. A snapshot not sorted by PI (not written by this
    project) is sorted through files."""

    def __init__(self, check: DagCheck, snapshot: bytes):
        self._check, self._snapshot = check, snapshot
        self.count, self.ordered, last = 0, True, ""
        for e in check.iter_entries(snapshot):
            self.count += 1
            self.ordered = self.ordered and e.pi > last
            last = e.pi

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[tuple[str, str]]:
        entries = self._check.iter_entries(self._snapshot)
        if self.ordered:
            for e in entries:
                yield e.pi, e.tip_text
            return
        lines = SortedLines()
        for e in entries:
            lines.add(json.dumps([e.pi, e.tip_text]))
        for line in lines:
            pi, text = json.loads(line)
            yield pi, text


@dataclass(kw_only=True)
class RestorePlan:
    car: Path
    snapshot_cid: str
    report: BackupReport
    tips: SnapshotTips
    chain: list[Path]


def plan_restore(car_path: str | os.PathLike, *, snapshot_cid: str | None = None,
                 seq: int | None = None) -> RestorePlan:
    """Verify the CAR offline and choose the snapshot: explicit, sidecar, or root."""
    car = car_file(car_path)
    chosen = snapshot_cid
    if chosen is None:
        sidecar = read_sidecar(car)
        chosen = sidecar.get("snapshot_cid") if sidecar else None
    chain = resolve(car)  # each link hashed once, here
    if len(chain) > 1:
        report, check = verify_chain(chain, snapshot_cid=chosen, seq=seq)
    else:
        report, check = verify_car(car, snapshot_cid=chosen, seq=seq)
    check.keep_only_snapshots()
    tips = SnapshotTips(check, parse_cid(report.snapshot_cid))
    return RestorePlan(car=car, snapshot_cid=report.snapshot_cid, report=report, tips=tips, chain=chain)


def target_pointer(plan: RestorePlan) -> dict:
    """The pointer fields a restore of `plan` writes (and verifies)."""
    report, entity_count = plan.report, len(plan.tips)
    return {
        "schema": POINTER_SCHEMA, "event_head": report.event_cid,
        "event_count": report.event_count, "latest_snapshot_cid": report.snapshot_cid,
        "snapshot_event_cid": report.event_cid, "snapshot_seq": report.seq,
        "snapshot_count": entity_count, "snapshot_ts": report.ts, "total_count": entity_count,
        "snapshot_event_count": report.event_count, "last_snapshot_trigger": "restore",
    }


def _differences(current: IndexPointer, target: dict) -> list[str]:
    keys = ("event_head", "latest_snapshot_cid")
    return [f"{k}: node has {current.raw.get(k)}, backup has {target[k]}"
            for k in keys if current.raw.get(k) != target[k]]


def check_target(client: KuboClient, settings: Settings, target: dict, force: bool) -> None:
    current = read_pointer(client, settings.index_pointer_path)
    if current is not None:
        diffs = _differences(current, target)
        if diffs and not force:
            raise RestoreRefused(
                f"the node already holds a different archive ({'; '.join(diffs)}); "
                "pass --force to replace it"
            )
    elif client.files_stat(settings.index_root) is not None and not force:
        staging = client.files_stat(f"{settings.index_root}.restore-staging")
        if staging is None:
            raise RestoreRefused(
                f"the node has {settings.index_root} but no index pointer; pass --force to replace it"
            )


def import_car(client: KuboClient, plan: RestorePlan, transport=None) -> None:
    """Streamed over HTTP, or through `transport` (the docker-exec one moves the file in).

    A CARv2 goes in as its inner CARv1 (Kubo 0.39 refuses CARv2 with
    "operation not supported"): the verified byte range, streamed. Blocks
    above 1 MiB, which verification counted, go in with `allow-big-block`.
    A block over 8 MiB (a snapshot in one block) is put on its own (dr/restore/importer.py).
    The roots are not pinned by the import: one recursive pin of the cover
    (dr/backup/pins.py) keeps every block, whatever its links, and a pin of the
    root would walk the same DAG a second time."""
    report = plan.report
    big = report.big_blocks > 0
    if len(plan.chain) > 1:
        # a chain: our own CARv1 files, full first; each import adds what the one before lacks
        log(f"importing {plan.car.name} and the {len(plan.chain) - 1} backups it extends "
            f"({report.block_count} blocks)")
        for car in plan.chain:
            import_file(client, car, big=big, transport=transport)
        pin_present(client, itertools.chain.from_iterable(car_cids(c) for c in plan.chain),
                    name=f"arke-dr {plan.snapshot_cid}", lost=_lost(plan), cars=plan.chain)
        return
    log(f"importing {plan.car.name} ({report.block_count} blocks"
        f"{', CARv2 unwrapped' if report.version == 2 else ''})")
    start, length = (report.data_offset, report.data_size) if report.version == 2 else (0, report.size)
    import_file(client, plan.car, start=start, length=length, big=big, transport=transport)
    pin_present(client, car_cids(plan.car), name=f"arke-dr {plan.snapshot_cid}", lost=_lost(plan), cars=[plan.car])


def _lost(plan: RestorePlan) -> set[bytes]:
    """Blocks the backup was taken without (its sidecar names them): the restored node lacks them too."""
    if plan.report.lost:
        log(f"warning: {loss_summary(plan.report.lost)}; the backup was taken without them")
    return {parse_cid(e["cid"]) for e in plan.report.lost}


def car_cids(car: Path):
    """The CIDs of a CAR that already verified, read again without hashing."""
    with open(car, "rb", buffering=1 << 20) as fh:
        for block in CarReader(fh, verify=False):
            yield block.cid


def write_pointer(client: KuboClient, settings: Settings, target: dict, seq_floor: int = 0) -> None:
    """Last: only now does the index pointer name the restored snapshot.

    Our own record (`snapshots/latest.json`) follows it: the restored
    snapshot is now the newest one here, and a record of a later snapshot of
    the same archive (a point-in-time restore) would otherwise be taken for a
    pointer reverted by the API and "repaired" back. `seq_floor`, the highest
    seq the backup knows, keeps the next snapshot from reusing a seq."""
    replace_fields(client, settings.index_pointer_path, {**target, "last_updated": now_ts()})
    atomic_write_json(settings.snapshots_dir / "latest.json", snapshot_record(
        snapshot_cid=target["latest_snapshot_cid"], seq=target["snapshot_seq"], ts=target["snapshot_ts"],
        event_cid=target["snapshot_event_cid"], total_count=target["snapshot_count"],
        event_count=target["snapshot_event_count"], trigger="restore", seq_floor=seq_floor))


def seq_floor(plan: RestorePlan) -> int:
    """The highest seq among the snapshots in the CAR."""
    return max((int(s) for s in plan.report.snapshots), default=0)


@dataclass(kw_only=True)
class Restore:
    """One restore of one CAR onto one node, as the steps it takes, in order.

    `run` takes them all under the archive lock (the CLI, the tests); the
    Dagster `restore_job` takes one per op, in the same order, holding the
    same lock for the whole run. The steps get the client they talk to; the
    object carries only what the next step needs.
    """

    settings: Settings
    car_path: str | os.PathLike
    snapshot_cid: str | None = None
    seq: int | None = None
    force: bool = False
    wait_timeout: float = 60.0
    started: float = field(default_factory=time.monotonic)
    plan: RestorePlan | None = None

    @property
    def target(self) -> dict:
        return target_pointer(self.plan)

    def wait(self, client: KuboClient) -> None:
        client.wait_until_ready(self.wait_timeout)

    def verify(self) -> RestorePlan:
        """Offline: nothing has touched the node yet, and nothing will unless this passes."""
        self.plan = plan_restore(self.car_path, snapshot_cid=self.snapshot_cid, seq=self.seq)
        return self.plan

    def check(self, client: KuboClient) -> None:
        check_target(client, self.settings, self.target, self.force)

    def import_blocks(self, client: KuboClient, transport=None) -> None:
        import_car(client, self.plan, transport)

    def rebuild_tips(self, client: KuboClient) -> None:
        install_tips(client, self.settings.index_root, self.plan.tips)

    def write_pointer(self, client: KuboClient) -> None:
        write_pointer(client, self.settings, self.target, seq_floor(self.plan))

    def verify_restored(self, client: KuboClient) -> dict:
        verified = verify_restored(client, self.settings, self.plan.tips, self.target)
        return summary(self.plan, verified, time.monotonic() - self.started)

    def run(self, client: KuboClient, transport=None) -> dict:
        with replacing_archive(self.settings.lock_dir):
            self.wait(client)
            self.verify()
            self.check(client)
            self.import_blocks(client, transport)
            self.rebuild_tips(client)
            self.write_pointer(client)
            return self.verify_restored(client)


def restore(client: KuboClient, settings: Settings, car_path: str | os.PathLike, *,
            snapshot_cid: str | None = None, seq: int | None = None, force: bool = False,
            wait_timeout: float = 60.0, transport=None) -> dict:
    return Restore(settings=settings, car_path=car_path, snapshot_cid=snapshot_cid, seq=seq, force=force,
                   wait_timeout=wait_timeout).run(client, transport)


def summary(plan: RestorePlan, verified: int, seconds: float) -> dict:
    report = plan.report
    log(f"restored {len(plan.tips)} entities from {plan.car.name} (seq {report.seq})")
    return {
        "snapshot_cid": plan.snapshot_cid, "entity_count": len(plan.tips), "restored": True,
        "seq": report.seq, "event_head": report.event_cid,
        "event_count": report.event_count, "blocks": report.block_count,
        "tips_verified": verified, "car": str(plan.car), "seconds": round(seconds, 2),
        "lost_blocks": len(report.lost),
    }


def verify_restored(client: KuboClient, settings: Settings, tips: SnapshotTips, target: dict) -> int:
    """Every tip file reads back as the snapshot says, and no other is there.

    Compared as a count and a sum of digests, both sides streamed, so the
    check holds neither side; only a mismatch reads both in full to name it."""
    expected = _tips_digest(tips)
    found = iter_tips(client, settings.index_root, exact=True)
    if found is None or _tips_digest(found) != expected:
        _name_tip_difference(client, settings, tips)
    pointer = read_pointer(client, settings.index_pointer_path)
    if pointer is None or any(pointer.raw.get(k) != v for k, v in target.items()):
        raise BackupInvalid(None, "the index pointer does not read back as written")
    parse_cid(target["event_head"])
    return expected[0]


def _tips_digest(pairs) -> tuple[int, int]:
    """(count, sum of a 128-bit hash of each pair): equal for the same pairs in any order."""
    count = total = 0
    for pi, text in pairs:
        count += 1
        total += int.from_bytes(hashlib.blake2b(f"{pi}\0{text}".encode(), digest_size=16).digest(), "big")
    return count, total % (1 << 128)


def _name_tip_difference(client: KuboClient, settings: Settings, tips: SnapshotTips) -> None:
    found = read_tips(client, settings.index_root, exact=True) or {}
    for pi, text in tips:
        got = found.pop(pi, None)
        if got != text:
            raise BackupInvalid(None, f"tip file of {pi} reads {got!r} after restore, not {text!r}")
    raise BackupInvalid(None, f"{len(found)} tip files not in the snapshot: {sorted(found)[:3]}")
