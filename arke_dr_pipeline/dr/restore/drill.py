"""The restore drill: prove the newest backup restores, and measure how long
a restore takes (RTO) and how much a restore would lose (RPO).

A scratch Kubo node of its own (temporary repo, offline, loopback, a port
the kernel picks) receives the newest backup, from the offsite copy when
there is one, else the local folder; the dump of the restored node must
equal the dump of the source node *as of the backup's snapshot*, derived
from the event chain (dr/archive/dump.py). The production node is only read.

Everything the drill makes lives in one folder under `BACKUPS_DIR/.drills`
with the scratch node's pid beside it; a drill killed midway leaves that
folder, and the next drill stops the orphaned node and deletes it first.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from ...kubo.client import KuboClient
from ...kubo.daemon import KuboDaemon
from ..archive.dump import diff, dump
from ..archive.pointer import read_pointer
from ..catalog.freshness import newest_backup
from ..catalog.order import STAMP
from ..catalog.sidecar import read_sidecar
from ..offsite.copy import OffsiteError, OffsiteTarget, S3Config
from ..offsite.reread import list_copies
from ..plumbing.config import Settings
from ..plumbing.lock import reading_archive
from ..plumbing.progress import log
from ..verify.dagcheck import BackupInvalid
from .fetch import fetch
from .whole import Restore, RestoreRefused


@dataclass(kw_only=True)
class DrillResult:
    backup: str
    snapshot_cid: str
    seq: int
    differences: list[str]
    phases: dict[str, float] = field(default_factory=dict)
    bytes: int = 0
    blocks: int = 0
    entities: int = 0
    backup_age_seconds: float = 0.0
    events_not_in_backup: int = 0

    @property
    def ok(self) -> bool:
        return not self.differences

    @property
    def rto_seconds(self) -> float:
        return sum(self.phases.values())


def drills_dir(settings: Settings) -> Path:
    return settings.backups_dir / ".drills"


def clean_leftovers(settings: Settings) -> int:
    """Stop the scratch nodes of drills that died, and delete their folders."""
    root = drills_dir(settings)
    removed = 0
    for work in root.glob("drill-*") if root.exists() else []:
        pid_file = work / "kubo.pid"
        if pid_file.exists():
            try:
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
            except (ValueError, ProcessLookupError, PermissionError):
                pass
        shutil.rmtree(work, ignore_errors=True)
        removed += 1
    return removed


def _timed(phases: dict, name: str, fn, *args):
    started = time.monotonic()
    try:
        return fn(*args)
    finally:
        phases[name] = round(time.monotonic() - started, 3)


def _newest(settings: Settings, s3: S3Config | None) -> tuple[str, bool]:
    """The newest backup: (offsite URL, True) when offsite copies exist, else (local path, False)."""
    if settings.offsite_url and s3 is not None:
        copies = [c for c in list_copies(s3, OffsiteTarget.parse(settings.offsite_url)) if c["verified"]]
        if copies:
            return copies[0]["url"], True
    found = newest_backup(settings.backups_dir)
    if found is None:
        raise FileNotFoundError(f"no backup to drill: no CAR with a sidecar in {settings.backups_dir}"
                                + (" and no verified offsite copy" if settings.offsite_url else ""))
    return str(found[0]), False


def drill(source: KuboClient, settings: Settings, *, s3: S3Config | None = None) -> DrillResult:
    """Restore the newest backup onto a scratch node and compare: the differences, the phases' seconds.

    One drill at a time (the leftovers it cleans could be another's), and
    never while a restore replaces the archive it reads."""
    with reading_archive(settings.lock_dir, "drill"):
        return _drill(source, settings, s3)


def _drill(source: KuboClient, settings: Settings, s3: S3Config | None) -> DrillResult:
    if clean_leftovers(settings):
        log("removed the scratch node of a drill that did not finish")
    backup, offsite = _newest(settings, s3)
    stamp = datetime.now(UTC).strftime(STAMP)
    work = drills_dir(settings) / f"drill-{stamp}-{os.getpid()}"
    work.mkdir(parents=True)
    scratch = replace(settings, api_url="", backups_dir=work / "backups", snapshots_dir=work / "snapshots",
                      locks=work / "locks", offsite_url=None)
    phases: dict[str, float] = {}
    node = KuboDaemon(work / "ipfs")
    try:
        try:
            car = Path(_timed(phases, "download", fetch, s3, backup, scratch.backups_dir)) if offsite else Path(backup)
        except OffsiteError as exc:
            return DrillResult(backup=backup, snapshot_cid="", seq=0, phases=phases,
                               differences=[f"the offsite copy does not download: {exc}"])
        node.start()
        (work / "kubo.pid").write_text(str(node.proc.pid))
        with KuboClient(node.api_url, timeout=settings.timeout, long_timeout=settings.export_timeout) as client:
            restored = replace(scratch, api_url=node.api_url)
            restore = Restore(settings=restored, car_path=car)
            try:
                plan = _timed(phases, "verify", restore.verify)
                _timed(phases, "import", restore.import_blocks, client)
                _timed(phases, "rebuild", restore.rebuild_tips, client)
                _timed(phases, "pointer", restore.write_pointer, client)
                restore.verify_restored(client)
            except (BackupInvalid, RestoreRefused) as exc:
                # what the drill exists to find: say it as the result, not as a crash of the drill
                return DrillResult(backup=backup, snapshot_cid="", seq=0, phases=phases,
                                   differences=[f"the backup does not restore: {exc}"])
            # the dumps walk the whole archive twice: the verified CAR's check is not kept through them
            snapshot_cid, report, entities = plan.snapshot_cid, plan.report, len(plan.tips)
            del plan, restore
            dump(client, restored, work / "restored.dump")
        dump(source, settings, work / "expected.dump", at_snapshot=snapshot_cid)
        differences = diff(work / "expected.dump", work / "restored.dump")
        sidecar = read_sidecar(car) or {}
        pointer = read_pointer(source, settings.index_pointer_path)
        made = datetime.strptime(sidecar["timestamp"], STAMP).replace(tzinfo=UTC) if "timestamp" in sidecar else None
        result = DrillResult(
            backup=backup, snapshot_cid=snapshot_cid, seq=report.seq, differences=differences,
            phases=phases, bytes=report.size or 0, blocks=report.block_count, entities=entities,
            backup_age_seconds=(datetime.now(UTC) - made).total_seconds() if made else 0.0,
            events_not_in_backup=max((pointer.event_count if pointer else 0) - report.event_count, 0))
    finally:
        node.stop()
        shutil.rmtree(work, ignore_errors=True)
    log(f"drill of {backup}: {'restores' if result.ok else 'DIFFERS'}; RTO {result.rto_seconds:.1f}s")
    return result
