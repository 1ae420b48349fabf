"""Jobs, the daily schedule, the event-count sensor and the failure alert."""


import os

import dagster as dg

from ..dr.archive.pointer import require_pointer
from .alerts import alert_line, send_alert
from .assets import EXCLUSIVE_TAG, GROUP, event_chain_head, snapshot
from .resources import AlertResource, KuboResource, StorageResource

# The steps are linear and the work is in Kubo and on disk: a process per
# step cost 3-5 s each for nothing, so the jobs run in one process.
backup_job = dg.define_asset_job(
    "backup_job", selection=dg.AssetSelection.groups(GROUP), tags=EXCLUSIVE_TAG,
    executor_def=dg.in_process_executor,
    description="Snapshot, inventory, pin and export a verified CAR.",
)
snapshot_job = dg.define_asset_job(
    "snapshot_job", selection=dg.AssetSelection.assets(event_chain_head, snapshot), tags=EXCLUSIVE_TAG,
    executor_def=dg.in_process_executor,
    description="Read the event head and build a snapshot.",
)

def backup_cron() -> str:
    return os.environ.get("ARKE_BACKUP_CRON", "0 2 * * *")


def automations_on() -> bool:
    """`ARKE_AUTOMATIONS=on` (the compose stack's default): the backup schedule, the snapshot sensor and
    the drill start running. Off (`make ui`'s default), they start stopped, so trying the UI on a
    laptop never backs anything up by itself; the failure alert runs either way."""
    return os.environ.get("ARKE_AUTOMATIONS", "off").strip().lower() in ("on", "1", "true", "yes")


def schedule_status() -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if automations_on() else dg.DefaultScheduleStatus.STOPPED


def sensor_status() -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if automations_on() else dg.DefaultSensorStatus.STOPPED


daily_backup = dg.ScheduleDefinition(
    name="daily_backup", job=backup_job,
    cron_schedule=backup_cron(), execution_timezone="UTC",
    tags={"arke/trigger": "schedule"}, default_status=schedule_status(),
    description="The daily backup: snapshot, inventory, pin, CAR (a delta when it can be), offsite, prune "
                "(ARKE_BACKUP_CRON, UTC; running by default when ARKE_AUTOMATIONS=on).",
)


def snapshot_threshold() -> int:
    return int(os.environ.get("ARKE_SNAPSHOT_THRESHOLD", "1000"))


@dg.sensor(job=snapshot_job, minimum_interval_seconds=60, default_status=sensor_status(),
           description="A snapshot when enough events have arrived since the latest one.")
def snapshot_sensor(context: dg.SensorEvaluationContext, kubo: KuboResource,
                    storage: StorageResource) -> dg.SensorResult | dg.SkipReason:
    """Counts from the index pointer, so snapshots built from the CLI count too.

    The run key is the event head: whatever happens to the cursor, a head is
    never snapshotted twice. The cursor moves only when a request is made.
    """
    with kubo.client() as client:
        pointer = require_pointer(client, storage.settings(kubo).index_pointer_path)
    head = pointer.event_head
    pending = pointer.event_count - pointer.snapshot_event_count
    threshold = snapshot_threshold()
    if not head:
        return dg.SkipReason("the archive has no events yet")
    if head in (context.cursor, pointer.raw.get("snapshot_event_cid")):
        return dg.SkipReason(f"event head {head} already snapshotted or requested")
    if pending < threshold:
        return dg.SkipReason(f"{pending} events since the latest snapshot, threshold {threshold}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=head, tags={"arke/trigger": "sensor", **EXCLUSIVE_TAG})],
        cursor=head,
    )


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING,
                       description="One alert line per failed run: backup, snapshot, restore, drill, freshness.")
def dr_failure_alert(context: dg.RunFailureSensorContext, alerts: AlertResource) -> None:
    run = context.dagster_run
    line = alert_line(run.job_name, run.run_id, _first_failure(context) or context.failure_event.message or "")
    context.log.error(line)
    problem = send_alert(line, alerts.webhook_url)
    if problem:
        context.log.error(problem)


def _first_failure(context: dg.RunFailureSensorContext) -> str | None:
    """The failed step's own line (`dg.Failure`'s description, else its error), not the run's
    "Steps failed: [...]"."""
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            return f"{event.step_key}: {data.user_failure_data.description}"
        if data.error is not None:
            return f"{event.step_key}: {data.error.message.strip().splitlines()[0]}"
    return None


def automations_line() -> str:
    """What `make ui` prints at start: which automations run, and how to change that."""
    if automations_on():
        return ("automations on: daily_backup, weekly_drill, daily_offsite_verify, snapshot_sensor, dr_failure_alert, "
                "hourly_freshness")
    return ("automations off: daily_backup, weekly_drill, daily_offsite_verify and snapshot_sensor start stopped "
            "(dr_failure_alert and "
            "hourly_freshness run); turn them on in the UI, or start with ARKE_AUTOMATIONS=on")
