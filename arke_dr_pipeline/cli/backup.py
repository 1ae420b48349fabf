"""Backups: the snapshot, the CAR, what a lost block asks of the operator (repair, acknowledge), prune, the drill."""

from __future__ import annotations

import dataclasses

import click

from .base import Ctx, _emit, _fail, main, operation


@main.command("build-snapshot")
@click.option("--wait", is_flag=True, help="Wait for a running build instead of failing.")
@click.option("--trigger", default="manual", show_default=True)
@click.option("--full", is_flag=True, help="Walk the whole event chain, not only the events since the last snapshot.")
@click.pass_obj
@operation
def build_snapshot_cmd(obj: Ctx, wait, trigger, full):
    """Snapshot the newest version of every entity; prints the snapshot CID."""
    from ..dr.archive.snapshot import build_snapshot

    with obj.client() as client:
        result = build_snapshot(client, obj.settings, wait=wait, trigger=trigger, full=full)
    _emit(dataclasses.asdict(result), result.snapshot_cid)


@main.command("export-car")
@click.argument("snapshot_cid", required=False)
@click.option("--full", is_flag=True, help="A full CAR even when a delta of the newest backup would do.")
@click.pass_obj
@operation
def export_car_cmd(obj: Ctx, snapshot_cid, full):
    """Inventory, pin and export a snapshot (default: the newest); prints the CAR path.

    With ARKE_OFFSITE_URL set, the CAR then goes offsite (verified) too."""
    from ..dr.archive.pointer import current_snapshot
    from ..dr.backup.run import backup

    with obj.client() as client:
        result = backup(client, obj.settings, snapshot_cid or current_snapshot(client, obj.settings), full=full)
    if result.inventory.removed:
        click.echo(f"warning: {result.inventory.removed} CIDs of the previous inventory are gone", err=True)
    if obj.settings.offsite_url:
        from ..dr.offsite.copy import OffsiteTarget, S3Config, upload_backup

        offsite = upload_backup(S3Config.from_env(), OffsiteTarget.parse(obj.settings.offsite_url),
                                result.car.car_path, verified=True)  # the export verified it as it wrote it
    car = result.car
    _emit({"car": car.car_path, "sidecar": car.sidecar_path, "snapshot_cid": car.snapshot_cid, "seq": car.seq,
           "kind": car.kind, "full_reason": car.full_reason, "unchanged": car.unchanged, "size": car.size,
           "sha256": car.sha256, "blocks": car.block_count, "entities": car.entity_count, "events": car.event_count,
           "lost": car.lost, "seconds": round(car.seconds, 3),
           "offsite": dataclasses.asdict(offsite) if obj.settings.offsite_url else None}, car.car_path)
    _fail_on_loss(result.car.lost)


LOSS_EXIT = 8


def _fail_on_loss(lost: list[dict]) -> None:
    """The backup stands and holds the rest; the exit says the archive is damaged until repaired or acknowledged."""
    from ..dr.backup.loss import summary, unacknowledged

    open_loss = unacknowledged(lost)
    if open_loss:
        _fail(f"backup made without {summary(open_loss)}; put the blocks back on the node, or accept the loss "
              "with `arke-dr acknowledge-loss CID...`", LOSS_EXIT)
    if lost:
        click.echo(f"warning: {len(lost)} acknowledged lost block(s) stay missing", err=True)


@main.command("repair")
@click.argument("snapshot_cid", required=False)
@click.pass_obj
@operation
def repair_cmd(obj: Ctx, snapshot_cid):
    """Put back the blocks the node lost (default: of the newest snapshot) from the backups that hold them."""
    from ..dr.backup.run import backup_lock
    from ..dr.restore.repair import repair

    with obj.client() as client, backup_lock(obj.settings):
        result = repair(client, obj.settings, snapshot_cid)
    _emit(dataclasses.asdict(result),
          f"{len(result.lost)} lost, {len(result.repaired)} repaired, {len(result.still_missing)} still missing")
    if result.still_missing:
        _fail(f"{len(result.still_missing)} lost block(s) are in no listed backup: {result.still_missing[0]}"
              + (f" and {len(result.still_missing) - 1} more" if len(result.still_missing) > 1 else ""), 1)


@main.command("acknowledge-loss")
@click.argument("cids", nargs=-1, required=True)
@click.option("--note", default="", help="Why the loss is accepted (kept with it).")
@click.pass_obj
@operation
def acknowledge_loss_cmd(obj: Ctx, cids, note):
    """Accept blocks the newest backup names as lost: later backups then exit 0 (the sidecars still name them)."""
    from ..dr.backup.loss import acknowledge
    from ..dr.catalog.freshness import newest_backup

    newest = newest_backup(obj.settings.backups_dir)
    lost = newest[1].get("lost", []) if newest else []
    if not lost:
        _fail("the newest backup names no lost block; nothing to acknowledge", 2)
    done = acknowledge(obj.settings.snapshots_dir, lost, cids, note)
    record = obj.settings.snapshots_dir / "acknowledged-loss.json"
    _emit({"acknowledged": done, "record": str(record)}, f"acknowledged {len(done)} lost block(s) in {record}")


@main.command("drill")
@click.pass_obj
@operation
def drill_cmd(obj: Ctx):
    """Restore the newest backup onto a scratch node and compare it with the node; exit 1 if it differs."""
    from ..dr.offsite.copy import S3Config
    from ..dr.restore.drill import drill

    with obj.client() as client:
        result = drill(client, obj.settings, s3=S3Config.from_env() if obj.settings.offsite_url else None)
    _emit({"backup": result.backup, "restores": result.ok, "differences": result.differences,
          "rto_seconds": round(result.rto_seconds, 2), "phases": result.phases, "seq": result.seq,
          "bytes": result.bytes, "blocks": result.blocks, "entities": result.entities,
          "rpo_hours": round(result.backup_age_seconds / 3600, 2), "rpo_events": result.events_not_in_backup})
    if not result.ok:
        _fail(f"the newest backup does not restore as it should: {result.differences[0]}")


@main.command("prune")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@click.pass_obj
@operation
def prune_cmd(obj: Ctx, dry_run):
    """Delete old backups by the GFS policy (ARKE_KEEP_*), locally and offsite; never a base a kept delta needs.
    Past ARKE_LOCAL_BUDGET_GB, the oldest chains with a verified offsite copy are kept offsite only."""
    from ..dr.catalog.retention import RetentionPolicy, prune
    from ..dr.offsite.copy import S3Config

    with obj.client() as client:
        _emit(prune(client, obj.settings, RetentionPolicy.from_env(), dry_run=dry_run,
                   s3=S3Config.from_env().for_prune() if obj.settings.offsite_url else None))
