"""The backup of one snapshot, written once: inventory, pinned set, CAR.

Order of writes, so that a crash never leaves a record of nothing: the
inventory pass stages the CAR and writes the inventory; the pin cover is
pinned; the export verifies the staged CAR, writes the sidecar, and renames
the CAR into place last. Under the `backup` lock (and the archive shared):
two backups take turns, and none runs while a restore replaces the archive.
The CLI runs the three steps as one; Dagster runs them as three assets,
each under the same lock. When the backup can be a delta, the inventory
pass reads only the new blocks and stages them as the delta.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...kubo.client import KuboClient
from ..catalog.chains import delta_base
from ..plumbing.config import Settings
from ..plumbing.lock import reading_archive
from ..plumbing.paths import staging_car_path
from ..plumbing.progress import log
from .delta import NotAnExtension
from .export import ExportResult, export_car
from .increment import build_increment, staged_delta
from .inventory import InventoryResult, build_inventory, inventory_path
from .pins import pin_set


@dataclass(kw_only=True)
class BackupResult:
    inventory: InventoryResult
    pins: dict
    car: ExportResult


def take_inventory(client: KuboClient, settings: Settings, snapshot_cid: str, *, full: bool = False):
    """A delta's inventory reads only the new blocks (dr/backup/increment.py); a full's, the whole archive."""
    base = delta_base(settings.backups_dir, full=full)
    if base is not None:
        try:
            return build_increment(client, settings, snapshot_cid, base)
        except NotAnExtension as exc:
            log(f"a full backup, not a delta of {base.name}: snapshot {exc}")
    return build_inventory(client, settings, snapshot_cid)


def pin_backup(client: KuboClient, settings: Settings, snapshot_cid: str, seq: int) -> dict:
    """The pinned set after the inventory pass: a cover of the delta's blocks when it staged one."""
    return pin_set(client, snapshot_cid, inventory_path(settings, seq, snapshot_cid),
                   delta=staged_delta(settings, seq, snapshot_cid), staged=staging_car_path(settings.backups_dir, seq))


def backup_lock(settings: Settings, *, wait: bool = True):
    return reading_archive(settings.lock_dir, "backup", wait=wait)


def backup(client: KuboClient, settings: Settings, snapshot_cid: str, *, wait: bool = True,
           full: bool = False) -> BackupResult:
    """The whole backup of `snapshot_cid`: the snapshot it was handed, never a re-read pointer."""
    with backup_lock(settings, wait=wait):
        inv = take_inventory(client, settings, snapshot_cid, full=full)
        pins = pin_backup(client, settings, snapshot_cid, inv.seq)
        car = export_car(client, settings, snapshot_cid, inventory=inv.path, full=full)
    return BackupResult(inventory=inv, pins=pins, car=car)
