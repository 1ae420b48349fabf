"""Freshness as checks on `car_file`: how old the newest verified backup is,
and how many events are in none yet, evaluated every hour by their own job
(so they run when no backup does, which is when they matter) and after
every backup. Both are plotted on the asset page; neither blocks anything.
"""

import time

import dagster as dg
from dagster._utils.schedules import cron_string_iterator

from ..dr.catalog.freshness import backup_age, freshness
from ..kubo.errors import KuboUnreachable
from .assets import car_file
from .automation import backup_cron, snapshot_threshold
from .resources import KuboResource, StorageResource

# A backup may run late (a long queue, a slow node): an hour, or a quarter
# of the period for schedules slower than every four hours, before it is stale.
MIN_MARGIN = 3600.0


def schedule_period(cron: str) -> float:
    times = cron_string_iterator(time.time(), cron, "UTC")
    first = next(times)
    return (next(times) - first).total_seconds()


def max_age(cron: str) -> float:
    period = schedule_period(cron)
    return period + max(period / 4, MIN_MARGIN)


@dg.asset_check(asset=car_file, description="The newest verified CAR is younger than the backup schedule's "
                                            "period plus a margin (a day and six hours for the daily default).")
def newest_backup_is_fresh(kubo: KuboResource, storage: StorageResource) -> dg.AssetCheckResult:
    """Reads the backups folder only, so it answers while the node is down."""
    limit = max_age(backup_cron())
    found = backup_age(storage.settings(kubo))
    if found is None:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, description="no backup yet",
                                   metadata={"limit_hours": round(limit / 3600, 1)})
    newest, age, _ = found
    hours = age / 3600
    if age < -300:
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN,
            description=f"the newest backup is stamped {-hours:.1f} hours in the future: the host's clock jumped",
            metadata={"age_hours": round(hours, 2), "newest_car": dg.MetadataValue.text(newest)})
    return dg.AssetCheckResult(
        passed=age <= limit, severity=dg.AssetCheckSeverity.WARN,
        description=f"the newest verified backup is {hours:.1f} hours old (limit {limit / 3600:.1f})",
        metadata={"age_hours": round(hours, 2), "limit_hours": round(limit / 3600, 1),
                  "newest_car": dg.MetadataValue.text(newest)},
    )


@dg.asset_check(asset=car_file, description="Events not yet in any backup stay under the snapshot "
                                            "sensor's threshold.")
def events_not_in_any_backup(kubo: KuboResource, storage: StorageResource) -> dg.AssetCheckResult:
    threshold = snapshot_threshold()
    try:
        with kubo.client() as client:
            f = freshness(client, storage.settings(kubo))
    except KuboUnreachable as exc:  # its own failed result, not an error of the run
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN,
            description=f"the node is unreachable, so the events in no backup cannot be counted: {exc}",
            metadata={"threshold": threshold, "node": dg.MetadataValue.text(storage.settings(kubo).api_url)})
    return dg.AssetCheckResult(
        passed=f.events_pending < threshold, severity=dg.AssetCheckSeverity.WARN,
        description=f"{f.events_pending} events are in no backup yet (threshold {threshold})",
        metadata={"events_pending": f.events_pending, "threshold": threshold,
                  "events_on_node": f.events_on_node, "events_in_newest_backup": f.events_in_backup},
    )


freshness_checks = [newest_backup_is_fresh, events_not_in_any_backup]
freshness_job = dg.define_asset_job(
    "freshness_job", selection=dg.AssetSelection.checks(*freshness_checks), executor_def=dg.in_process_executor,
    description="Evaluate the freshness checks on car_file: backup age and events in no backup.",
)
hourly_freshness = dg.ScheduleDefinition(
    name="hourly_freshness", job=freshness_job, cron_schedule="17 * * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="The freshness checks every hour, backups or not: they read, never write.")
