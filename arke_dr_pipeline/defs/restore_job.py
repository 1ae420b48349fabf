"""The restore as an op graph, each step visible in the UI; the logic is `dr.restore`'s."""


import time

import dagster as dg
from pydantic import Field

from ..dr.dagcheck import BackupInvalid
from ..dr.paths import PathRefused, backup_path
from ..dr.restore import (
    RestorePlan,
    RestoreRefused,
    check_target,
    import_car,
    plan_restore,
    seq_floor,
    summary,
    target_pointer,
    verify_restored,
    write_pointer,
)
from ..dr.tips import install_tips
from .resources import KuboResource, RestoreLock, StorageResource


class RestoreConfig(dg.Config):
    car_path: str = Field(description="The CAR to restore: a name in the backups folder, or a path under it.")
    snapshot_cid: str | None = Field(
        default=None, description="The snapshot to restore (default: the sidecar's, else the CAR's root).")
    seq: int | None = Field(
        default=None, description="Restore the snapshot with this seq instead, found through prev_snapshot.")
    force: bool = Field(default=False, description="Replace a different archive already on the node.")
    wait_timeout: float = Field(default=60.0, gt=0, le=7 * 86400,
                                description="Seconds to wait for the node to answer before giving up.")


@dg.op(description="Take the restore lock for the whole run; poll the node until it answers.")
def wait_for_node(config: RestoreConfig, kubo: KuboResource, restore_lock: RestoreLock) -> dict:
    started = time.monotonic()
    with kubo.client() as client:
        client.wait_until_ready(config.wait_timeout)
    return {**config.model_dump(), "started": started}


@dg.op(description="Refuse paths outside the backups folder; verify the CAR offline.")
def verify_backup(context: dg.OpExecutionContext, request: dict, storage: StorageResource) -> RestorePlan:
    try:
        car = backup_path(storage.backups, request["car_path"])
        plan = plan_restore(car, snapshot_cid=request["snapshot_cid"], seq=request["seq"])
    except (PathRefused, BackupInvalid) as exc:
        raise dg.Failure(description=f"restore refused, node untouched: {exc}") from None
    context.log.info(f"{car.name}: snapshot {plan.snapshot_cid} (seq {plan.report['seq']}), "
                     f"{plan.report['block_count']} blocks verified")
    return plan


@dg.op(description="Refuse to overwrite a different archive unless forced; import the CAR.")
def import_backup(request: dict, plan: RestorePlan, kubo: KuboResource,
                  storage: StorageResource) -> RestorePlan:
    with kubo.client() as client:
        try:
            check_target(client, storage.settings(kubo), target_pointer(plan), request["force"])
        except RestoreRefused as exc:
            raise dg.Failure(description=exc.in_dagster()) from None
        import_car(client, plan, kubo.car_transport(client))
    return plan


@dg.op(description="Install every tip file in one tree swap.")
def rebuild_tips(plan: RestorePlan, kubo: KuboResource, storage: StorageResource) -> RestorePlan:
    with kubo.client() as client:
        install_tips(client, storage.settings(kubo).index_root, plan.entries)
    return plan


@dg.op(description="Write the index pointer, last.")
def restore_pointer(plan: RestorePlan, kubo: KuboResource, storage: StorageResource) -> RestorePlan:
    with kubo.client() as client:
        write_pointer(client, storage.settings(kubo), target_pointer(plan), seq_floor(plan))
    return plan


@dg.op(description="Every tip equals its entry; the pointer reads back.")
def verify_restore(context: dg.OpExecutionContext, plan: RestorePlan, request: dict,
                   kubo: KuboResource, storage: StorageResource) -> dg.Output[dict]:
    with kubo.client() as client:
        verified = verify_restored(client, storage.settings(kubo), plan.entries, target_pointer(plan))
    result = summary(plan, verified, time.monotonic() - request["started"])
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
    request = wait_for_node()
    plan = verify_backup(request)
    verify_restore(restore_pointer(rebuild_tips(import_backup(request, plan))), request)
