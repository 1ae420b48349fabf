"""One check per rule: the seed's snapshot criteria, append-only inventories, a verified CAR, no open loss."""

from pathlib import Path

import dagster as dg

from ..dr.archive.criteria import verify_snapshot
from ..dr.backup.inventory import inventory_diff
from ..dr.backup.loss import summary, unacknowledged
from ..dr.catalog.sidecar import read_sidecar
from ..dr.verify.car import verify_car
from ..dr.verify.dagcheck import BackupInvalid
from .assets import car_file, cid_inventory, handed, snapshot
from .resources import KuboResource, StorageResource


def _snapshot_report(context: dg.AssetCheckExecutionContext, kubo: KuboResource,
                     storage: StorageResource) -> dict:
    """The checks read the snapshot the asset built, never a re-read pointer."""
    snapshot_cid, _ = handed(context.instance)
    with kubo.client() as client:
        return verify_snapshot(client, storage.settings(kubo).index_pointer_path, snapshot_cid)


@dg.asset_check(asset=snapshot, blocking=True, description="No PI appears twice.")
def no_duplicate_pis(context: dg.AssetCheckExecutionContext, kubo: KuboResource,
                     storage: StorageResource) -> dg.AssetCheckResult:
    report = _snapshot_report(context, kubo, storage)
    return dg.AssetCheckResult(
        passed=report["checks"]["no_duplicate_pis"],
        metadata={"entities": report["entity_count"], "duplicates": len(report["duplicate_pis"]),
                  "examples": dg.MetadataValue.text(", ".join(report["duplicate_pis"][:5]))},
    )


@dg.asset_check(asset=snapshot, blocking=True, description="Every tip, chain and event CID parses.")
def cids_valid(context: dg.AssetCheckExecutionContext, kubo: KuboResource,
               storage: StorageResource) -> dg.AssetCheckResult:
    report = _snapshot_report(context, kubo, storage)
    return dg.AssetCheckResult(passed=report["checks"]["valid_cids"],
                               metadata={"invalid": len(report["invalid_cids"])})


@dg.asset_check(asset=snapshot, blocking=True, description="The seed's size criterion.")
def under_500_bytes_per_entity(context: dg.AssetCheckExecutionContext, kubo: KuboResource,
                               storage: StorageResource) -> dg.AssetCheckResult:
    report = _snapshot_report(context, kubo, storage)
    return dg.AssetCheckResult(
        passed=report["checks"]["size_per_entity_under_500"],
        metadata={"bytes_per_entity": report["bytes_per_entity"], "bytes": report["bytes"]},
    )


@dg.asset_check(asset=snapshot, description="The snapshot the index pointer named (the Arke API's builder's, "
                "or ours) named every entity: none was dropped by a builder that could not read its base.")
def pointer_snapshot_complete(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    event = context.instance.get_latest_materialization_event(dg.AssetKey("snapshot"))
    meta = event.asset_materialization.metadata if event else {}
    refused = meta["pointer_snapshot_refused"].value if "pointer_snapshot_refused" in meta else ""
    return dg.AssetCheckResult(
        passed=not refused,
        metadata={"problem": dg.MetadataValue.text(refused or "none"),
                  "published": meta["published"].value if "published" in meta else 0},
    )


@dg.asset_check(asset=cid_inventory, blocking=True,
                description="No CID of the previous inventory disappears.")
def inventory_only_grows(context: dg.AssetCheckExecutionContext, kubo: KuboResource,
                         storage: StorageResource) -> dg.AssetCheckResult:
    snapshot_cid, seq = handed(context.instance)
    added, removed, previous = inventory_diff(storage.settings(kubo), seq, snapshot_cid)
    return dg.AssetCheckResult(
        passed=removed == 0,
        metadata={"added": added, "removed": removed,
                  "previous": dg.MetadataValue.text(previous or "none")},
    )


@dg.asset_check(asset=car_file, blocking=True,
                description="Offline: every block hashed, every link present, the archive complete.")
def car_verified_complete(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    path = _materialized_car(context)
    if path is None:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "no CAR materialized"})
    try:
        report, _ = verify_car(path)
    except BackupInvalid as exc:
        return dg.AssetCheckResult(passed=False, metadata={"problem": dg.MetadataValue.text(str(exc))})
    return dg.AssetCheckResult(passed=True, metadata={
        "blocks": report.block_count, "entities": report.entity_count,
        "events": report.event_count, "bytes": report.size})


@dg.asset_check(asset=car_file, blocking=True,
                description="The node had every block the backup needed, or each lost one was acknowledged "
                            "(`arke-dr acknowledge-loss`).")
def no_unacknowledged_loss(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    path = _materialized_car(context)
    if path is None:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "no CAR materialized"})
    try:
        lost = read_sidecar(Path(path)).get("lost", [])
    except (BackupInvalid, AttributeError):
        return dg.AssetCheckResult(passed=False, metadata={"problem": dg.MetadataValue.text(f"{path} unreadable")})
    open_loss = unacknowledged(lost)
    return dg.AssetCheckResult(passed=not open_loss, metadata={
        "lost": len(lost), "unacknowledged": len(open_loss),
        "problem": dg.MetadataValue.text(summary(open_loss) if open_loss else "")})


def _materialized_car(context: dg.AssetCheckExecutionContext) -> str | None:
    """The CAR the latest `car_file` materialization wrote: the one its checks judge."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey("car_file"))
    return str(event.asset_materialization.metadata["path"].value) if event else None


backup_checks = [no_duplicate_pis, cids_valid, under_500_bytes_per_entity, pointer_snapshot_complete,
                 inventory_only_grows,
                 car_verified_complete, no_unacknowledged_loss]
