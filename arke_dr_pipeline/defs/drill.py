"""The restore drill as an asset with its own job, a weekly schedule, and a
sensor (off by default) that drills after every successful backup; the
blocking check fails on any difference, naming the first, and the failure
sensor alerts."""

import os

import dagster as dg

from ..dr.restore.drill import drill
from .assets import arke_asset, car_file, human_bytes
from .automation import backup_job, schedule_status
from .resources import KuboResource, OffsiteResource, StorageResource


@arke_asset({"ipfs", "s3"}, "1", deps=[car_file], group_name="drill",
            description="The newest backup restored onto a scratch node (offsite copy first) and compared, by "
                        "logical dump, with the source as of the backup's snapshot; RTO and RPO as metadata.")
def restore_drill(context: dg.AssetExecutionContext, kubo: KuboResource, storage: StorageResource,
                  offsite: OffsiteResource) -> dg.MaterializeResult:
    settings = offsite.applied_to(storage.settings(kubo))
    with kubo.client() as client:
        result = drill(client, settings, s3=offsite.s3())
    for line in result.differences:
        context.log.error(line)
    return dg.MaterializeResult(metadata={
        "restores": int(result.ok), "backup": dg.MetadataValue.text(result.backup),
        "snapshot_cid": dg.MetadataValue.text(result.snapshot_cid), "seq": result.seq,
        "rto_seconds": round(result.rto_seconds, 2),
        **{f"{phase}_seconds": round(s, 2) for phase, s in result.phases.items()},
        "rpo_hours": round(result.backup_age_seconds / 3600, 2), "rpo_events": result.events_not_in_backup,
        "bytes": result.bytes, "size": human_bytes(result.bytes), "blocks": result.blocks,
        "entities": result.entities,
        "differences": dg.MetadataValue.md("\n".join(f"- {d}" for d in result.differences) or "none"),
        "first_difference": dg.MetadataValue.text(result.differences[0] if result.differences else ""),
    })


@dg.asset_check(asset=restore_drill, blocking=True,
                description="The newest backup restores to exactly the archive of its snapshot.")
def latest_backup_restores(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    event = context.instance.get_latest_materialization_event(dg.AssetKey("restore_drill"))
    meta = event.asset_materialization.metadata if event and event.asset_materialization else {}
    if "restores" not in meta:
        return dg.AssetCheckResult(passed=False, description="no drill has run")
    ok = bool(meta["restores"].value)
    first = meta["first_difference"].value
    return dg.AssetCheckResult(passed=ok, description="restores" if ok else first,
                               metadata={"rto_seconds": meta["rto_seconds"].value,
                                         "rpo_hours": meta["rpo_hours"].value})


drill_job = dg.define_asset_job(
    "drill_job", selection=dg.AssetSelection.assets(restore_drill), executor_def=dg.in_process_executor,
    description="Restore the newest backup onto a scratch node and compare it with the source.",
)
weekly_drill = dg.ScheduleDefinition(
    name="weekly_drill", job=drill_job, cron_schedule=os.environ.get("ARKE_DRILL_CRON", "0 4 * * 0"),
    execution_timezone="UTC", tags={"arke/trigger": "schedule"}, default_status=schedule_status(),
    description="The weekly restore drill: the newest backup restored onto a scratch node and compared "
                "(ARKE_DRILL_CRON, UTC; running by default when ARKE_AUTOMATIONS=on).",
)


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[backup_job], request_job=drill_job,
                      default_status=dg.DefaultSensorStatus.STOPPED,
                      description="A drill after every successful backup (switch on to drill daily).")
def drill_after_backup(context: dg.RunStatusSensorContext):
    return dg.RunRequest(run_key=f"drill-after-{context.dagster_run.run_id}", tags={"arke/trigger": "backup"})


drill_assets = [restore_drill]
drill_checks = [latest_backup_restores]
