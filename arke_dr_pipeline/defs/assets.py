"""The backup as assets: event_chain_head -> snapshot -> cid_inventory -> pinned_set -> car_file.

Each asset states its result in numeric metadata so the UI plots it over
time; the data itself lives in Kubo and the backups folder, so assets pass
nothing between them but the index pointer and the files they wrote.
"""


import dagster as dg
from pydantic import Field

from ..dr.archive.pointer import ArchiveError, require_pointer
from ..dr.archive.snapshot import build_snapshot
from ..dr.backup.export import export_car
from ..dr.backup.inventory import inventory_path
from ..dr.backup.loss import unacknowledged
from ..dr.backup.run import backup_lock, pin_backup, take_inventory
from ..dr.verify.dagcheck import BackupInvalid
from .failures import speaks_dagster
from .resources import KuboResource, StorageResource

GROUP = "backup"
EXCLUSIVE_TAG = {"arke/dr": "exclusive"}
# Every run that touches the node's archive holds this pool. The instance
# applies it per run (`concurrency.pools.granularity: run`, limit 1, in both
# dagster.yaml files), so a backup, a snapshot, a restore and the UI's
# "Materialize all" take turns however they were started.
POOL = "arke_dr"
OWNERS = ["team:arke-dr"]


def arke_asset(kinds: set[str], version: str, **kw):
    """The decorator every backup asset shares: one group, one pool, kinds, an owner,
    and a code version bumped when what the asset writes changes."""
    kw.setdefault("group_name", GROUP)
    asset = dg.asset(pool=POOL, owners=OWNERS, kinds=kinds, code_version=version,
                     tags={"domain": "disaster-recovery"}, **kw)
    return lambda fn: asset(speaks_dagster(fn))


def human_bytes(n: int | float) -> str:
    """`46.6 MB` beside the number that plots: decimal units, as `ls -h --si` and S3 consoles show."""
    if abs(n) < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB"):
        n /= 1000
        if abs(n) < 1000:
            return f"{n:.1f} {unit}"
    return f"{n / 1000:.1f} TB"


@arke_asset({"ipfs"}, "1", description="The event chain's head and counts, from the index pointer.")
def event_chain_head(kubo: KuboResource, storage: StorageResource) -> dg.MaterializeResult:
    settings = storage.settings(kubo)
    with kubo.client() as client:
        pointer = require_pointer(client, settings.index_pointer_path)
    return dg.MaterializeResult(metadata={
        "event_head": dg.MetadataValue.text(pointer.event_head or ""),
        "event_count": pointer.event_count,
        "total_count": pointer.total_count,
        "events_since_snapshot": pointer.event_count - pointer.snapshot_event_count,
    })


class SnapshotConfig(dg.Config):
    full: bool = Field(
        default=False,
        description="Walk the whole event chain and audit every tip file, not only what changed.",
    )


@arke_asset({"ipfs"}, "3", deps=[event_chain_head],
            description="The newest version of every entity, built incrementally from the chain; "
                        "published in the index pointer as upstream's arke/snapshot@v2 (ARKE_PUBLISH).")
def snapshot(context: dg.AssetExecutionContext, config: SnapshotConfig, kubo: KuboResource,
             storage: StorageResource) -> dg.MaterializeResult:
    settings = storage.settings(kubo)
    trigger = context.run.tags.get("arke/trigger", "dagster")
    with kubo.client() as client:
        result = build_snapshot(client, settings, wait=True, trigger=trigger, full=config.full)
    for anomaly in result.anomalies[:50]:
        context.log.warning(anomaly)
    return dg.MaterializeResult(metadata={
        "snapshot_cid": dg.MetadataValue.text(result.snapshot_cid),
        "seq": result.seq,
        "entities": result.entity_count,
        "events": result.event_count,
        "new_events": result.new_events,
        "bytes": result.block_bytes, "size": human_bytes(result.block_bytes),
        "bytes_per_entity": round(result.block_bytes / max(result.entity_count, 1), 1),
        "anomalies": len(result.anomalies),
        "pointer_repaired": int(result.pointer_repaired),
        "published": int(result.published),
        "pointer_snapshot_refused": dg.MetadataValue.text(result.base_refused or ""),
        "anomaly_list": dg.MetadataValue.md("\n".join(f"- {a}" for a in result.anomalies[:20]) or "none"),
        "seconds": round(result.seconds, 3),
    })


@arke_asset(
    {"ipfs", "file"}, "2", deps=[snapshot],
    description="Every CID reachable from the snapshot, by role and codec, as a sorted file.",
    check_specs=[dg.AssetCheckSpec("inventory_complete", asset="cid_inventory", blocking=True,
                                   description="Every block present, hashing to its CID, every link resolved.")],
)
def cid_inventory(context: dg.AssetExecutionContext, kubo: KuboResource,
                  storage: StorageResource) -> dg.MaterializeResult:
    settings = storage.settings(kubo)
    snapshot_cid, _ = handed(context.instance)
    with kubo.client() as client, backup_lock(settings):
        try:
            inv = take_inventory(client, settings, snapshot_cid)
        except BackupInvalid as exc:
            context.log.error(f"inventory of {snapshot_cid} is incomplete: {exc}")
            return dg.MaterializeResult(
                metadata={"snapshot_cid": dg.MetadataValue.text(snapshot_cid), "blocks": 0},
                check_results=[dg.AssetCheckResult(
                    check_name="inventory_complete", passed=False,
                    metadata={"problem": dg.MetadataValue.text(str(exc))})],
            )
    roles = {f"{k}_blocks": v for k, v in inv.blocks_by_role.items()}
    return dg.MaterializeResult(
        metadata={
            "snapshot_cid": dg.MetadataValue.text(inv.snapshot_cid), "seq": inv.seq,
            "path": dg.MetadataValue.path(inv.path), "blocks": inv.block_count, **roles,
            "bytes": sum(inv.bytes_by_role.values()), "size": human_bytes(sum(inv.bytes_by_role.values())),
            "added": inv.added, "removed": inv.removed,
            "entities": inv.entity_count, "events": inv.event_count,
            "seconds": round(inv.seconds, 3),
        },
        check_results=[dg.AssetCheckResult(check_name="inventory_complete", passed=True,
                                           metadata={"blocks": inv.block_count})],
    )


def handed(instance: dg.DagsterInstance) -> tuple[str, int]:
    """The snapshot the `snapshot` asset built, from its materialization.

    Never from a re-read index pointer: the Arke API may have written back
    stale snapshot fields since, and a backup of the older snapshot would
    pass every check.
    """
    event = instance.get_latest_materialization_event(dg.AssetKey("snapshot"))
    if event is None or event.asset_materialization is None:
        raise ArchiveError("no snapshot has been materialized yet: materialize the snapshot asset first")
    meta = event.asset_materialization.metadata
    return str(meta["snapshot_cid"].value), int(meta["seq"].value)


@arke_asset({"ipfs"}, "2", deps=[cid_inventory],
            description="One recursive pin of a cover block tree naming every inventory CID (a delta's: its "
                        "new blocks, beside its base's cover), made offline.")
def pinned_set(context: dg.AssetExecutionContext, kubo: KuboResource,
               storage: StorageResource) -> dg.MaterializeResult:
    settings = storage.settings(kubo)
    snapshot_cid, seq = handed(context.instance)
    with kubo.client() as client, backup_lock(settings):
        out = pin_backup(client, settings, snapshot_cid, seq)
    return dg.MaterializeResult(metadata={
        "snapshot_cid": dg.MetadataValue.text(snapshot_cid), "pins": out["pinned"],
        "cover_blocks": out["cover_blocks"], "cover_cid": dg.MetadataValue.text(out["cover_cid"]),
        "blocks_present": out["present"], "cover_kind": out["kind"], "seconds": round(out["seconds"], 3),
    })


class CarConfig(dg.Config):
    full: bool = Field(default=False, description="A full CAR even when a delta of the newest backup would do "
                                                  "(fulls are also made when the chain is long: docs/PRODUCTION.md).")


@arke_asset({"ipfs", "file"}, "3", deps=[pinned_set],
            description="The CAR (a full, or a delta of the newest backup) and its sidecar, verified as "
                        "written (a delta as a delta: its blocks, its links into its base), renamed into "
                        "place last.")
def car_file(context: dg.AssetExecutionContext, config: CarConfig, kubo: KuboResource,
             storage: StorageResource) -> dg.MaterializeResult:
    settings = storage.settings(kubo)
    snapshot_cid, seq = handed(context.instance)
    with kubo.client() as client, backup_lock(settings):
        result = export_car(client, settings, snapshot_cid, inventory=inventory_path(settings, seq, snapshot_cid),
                            full=config.full)
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(result.car_path),
        "sidecar": dg.MetadataValue.path(result.sidecar_path),
        "snapshot_cid": dg.MetadataValue.text(result.snapshot_cid),
        "sha256": dg.MetadataValue.text(result.sha256),
        "seq": result.seq, "bytes": result.size, "size": human_bytes(result.size), "blocks": result.block_count,
        "entities": result.entity_count, "events": result.event_count,
        "bytes_per_entity": round(result.size / max(result.entity_count, 1), 1),
        "delta": int(result.kind == "delta"), "kind": dg.MetadataValue.text(result.kind),
        "unchanged": int(result.unchanged),
        "full_reason": dg.MetadataValue.text(result.full_reason or ""),
        "seconds": round(result.seconds, 3),
        "lost_blocks": len(result.lost), "lost_unacknowledged": len(unacknowledged(result.lost)),
    })


backup_assets = [event_chain_head, snapshot, cid_inventory, pinned_set, car_file]
