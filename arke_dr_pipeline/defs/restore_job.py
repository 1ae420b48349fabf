"""The restore as an op graph, each step visible in the UI: one `dr.restore.Restore`
handed from op to op, each op taking its next step, in one process under one lock.

The object goes from op to op in memory (`mem_io_manager`): it carries the
verified plan, every entry of the snapshot, which must not be pickled into
`DAGSTER_HOME` once per step. A re-execution starts from the first op, which
is what a restore needs anyway (the lock and the verification are redone)."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from ..dr.offsite.copy import OffsiteError
from ..dr.plumbing.paths import PathRefused, backup_path
from ..dr.restore.fetch import discard, fetch, is_staged, promote
from ..dr.restore.whole import Restore, RestoreRefused
from ..dr.verify.dagcheck import BackupInvalid
from ..errors import BadInput
from .assets import POOL
from .failures import speaks_dagster
from .resources import KuboResource, OffsiteResource, RestoreLock, StorageResource

IN_MEMORY = dg.Out(io_manager_key="restore_steps")


class RestoreConfig(dg.Config):
    car_path: str = Field(description="The CAR to restore: a name in the backups folder, a path under it, or "
                                      "s3://BUCKET/KEY.car (downloaded into the backups folder first).")
    snapshot_cid: str | None = Field(
        default=None, description="The snapshot to restore (default: the sidecar's, else the CAR's root).")
    seq: int | None = Field(
        default=None, description="Restore the snapshot with this seq instead, found through prev_snapshot.")
    force: bool = Field(default=False, description="Replace a different archive already on the node.")
    wait_timeout: float = Field(default=60.0, gt=0, le=7 * 86400,
                                description="Seconds to wait for the node to answer before giving up.")


@dg.op(out=IN_MEMORY, pool=POOL, description="Take the restore lock for the whole run; poll the node until it answers.")
@speaks_dagster
def wait_for_node(config: RestoreConfig, kubo: KuboResource, storage: StorageResource,
                  restore_lock: RestoreLock) -> Restore:
    restore = Restore(settings=storage.settings(kubo), car_path=config.car_path,
                      snapshot_cid=config.snapshot_cid, seq=config.seq, force=config.force,
                      wait_timeout=config.wait_timeout)
    with kubo.client() as client:
        restore.wait(client)
    return restore


@dg.op(out=IN_MEMORY, pool=POOL, description="Download an s3:// CAR into the backups folder; refuse paths outside "
                                             "it; verify the CAR offline.")
@speaks_dagster
def verify_backup(context: dg.OpExecutionContext, restore: Restore, storage: StorageResource,
                  offsite: OffsiteResource) -> Restore:
    try:
        if str(restore.car_path).startswith("s3://"):
            restore.car_path = fetch(offsite.s3(), str(restore.car_path), storage.backups)
        restore.car_path = backup_path(storage.backups, str(restore.car_path))
        plan = restore.verify()
    except (PathRefused, BackupInvalid, OffsiteError, BadInput) as exc:
        discard(Path(restore.car_path))
        raise dg.Failure(description=f"restore refused, node untouched: {exc}") from None
    context.log.info(f"{plan.car.name}: snapshot {plan.snapshot_cid} (seq {plan.report.seq}), "
                     f"{plan.report.block_count} blocks verified")
    return restore


@dg.op(out=IN_MEMORY, pool=POOL, description="Refuse to overwrite a different archive unless forced; import the CAR.")
@speaks_dagster
def import_backup(restore: Restore, kubo: KuboResource) -> Restore:
    with kubo.client() as client:
        try:
            restore.check(client)
        except RestoreRefused as exc:
            raise dg.Failure(description=exc.in_dagster()) from None
        restore.import_blocks(client, kubo.car_transport(client))
    return restore


@dg.op(out=IN_MEMORY, pool=POOL, description="Install every tip file in one tree swap.")
@speaks_dagster
def rebuild_tips(restore: Restore, kubo: KuboResource) -> Restore:
    with kubo.client() as client:
        restore.rebuild_tips(client)
    return restore


@dg.op(out=IN_MEMORY, pool=POOL, description="Write the index pointer, last.")
@speaks_dagster
def restore_pointer(restore: Restore, kubo: KuboResource) -> Restore:
    with kubo.client() as client:
        restore.write_pointer(client)
    return restore


@dg.op(pool=POOL, description="Every tip equals its entry; the pointer reads back.")
@speaks_dagster
def verify_restore(context: dg.OpExecutionContext, restore: Restore, kubo: KuboResource,
                   storage: StorageResource) -> dg.Output[dict]:
    with kubo.client() as client:
        result = restore.verify_restored(client)
    if is_staged(restore.car_path):  # downloaded from s3://: listed only now that it restored
        result["car"] = str(promote(Path(restore.car_path), Path(storage.backups)))
    context.log.info(f"restored: {result}")
    return dg.Output(result, metadata={"entities": result["entity_count"], "blocks": result["blocks"],
                                       "seq": result["seq"], "seconds": result["seconds"]})


def _to_ops(config: dict) -> dict:
    return {"ops": {"wait_for_node": {"config": config}}}


@dg.job(
    tags={"arke/dr": "exclusive"},
    executor_def=dg.in_process_executor,  # one process: the restore lock spans every step
    config=dg.ConfigMapping(config_fn=_to_ops, config_schema=RestoreConfig.to_config_schema()),
    description="Rebuild the archive on a node from one CAR. Config: car_path (inside the backups "
                "folder), optional snapshot_cid or seq, force.",
)
def restore_job():
    verify_restore(restore_pointer(rebuild_tips(import_backup(verify_backup(wait_for_node())))))
