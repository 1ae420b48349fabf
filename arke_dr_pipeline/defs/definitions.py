"""Everything Dagster sees, in one Definitions object."""


import dagster as dg

from ..dr.plumbing.memory import release_big_buffers
from .assets import backup_assets
from .automation import backup_job, daily_backup, dr_failure_alert, snapshot_job, snapshot_sensor
from .checks import backup_checks
from .drill import drill_after_backup, drill_assets, drill_checks, drill_job, weekly_drill
from .freshness import freshness_checks, freshness_job, hourly_freshness
from .offsite import daily_offsite_verify, offsite_assets, offsite_checks, offsite_verify_job
from .resources import AlertResource, KuboResource, OffsiteResource, RestoreLock, StorageResource, from_env
from .restore_job import restore_job
from .retention import retention_assets

release_big_buffers()  # each run's process loads this module: a backup's big blocks unmap when freed

kubo = KuboResource(api_url=from_env("IPFS_API_URL"), transport=from_env("ARKE_TRANSPORT"),
                    container_name=from_env("CONTAINER_NAME"))
storage = StorageResource(snapshots_dir=from_env("SNAPSHOTS_DIR"), backups_dir=from_env("BACKUPS_DIR"),
                          index_pointer_path=from_env("INDEX_POINTER_PATH"))
defs = dg.Definitions(
    assets=backup_assets + offsite_assets + retention_assets + drill_assets,
    asset_checks=backup_checks + freshness_checks + offsite_checks + drill_checks,
    jobs=[backup_job, snapshot_job, restore_job, freshness_job, drill_job, offsite_verify_job],
    schedules=[daily_backup, hourly_freshness, weekly_drill, daily_offsite_verify],
    sensors=[snapshot_sensor, dr_failure_alert, drill_after_backup],
    resources={"kubo": kubo, "storage": storage, "restore_lock": RestoreLock(storage=storage),
               "alerts": AlertResource(webhook_url=from_env("ARKE_ALERT_WEBHOOK_URL")),
               "offsite": OffsiteResource(url=from_env("ARKE_OFFSITE_URL"), endpoint_url=from_env("AWS_ENDPOINT_URL"),
                                          region=from_env("AWS_REGION"), access_key_id=from_env("AWS_ACCESS_KEY_ID"),
                                          secret_access_key=from_env("AWS_SECRET_ACCESS_KEY")),
               "restore_steps": dg.mem_io_manager},
    # "Materialize all" and any asset run from the UI: one process, as the jobs run. The multiprocess
    # default spawned a process per step, 10-40 s each, for steps of seconds.
    executor=dg.in_process_executor,
)
