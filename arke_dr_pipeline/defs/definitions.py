"""Everything Dagster sees, in one Definitions object."""


import dagster as dg

from .assets import backup_assets
from .automation import backup_job, daily_backup, dr_failure_alert, snapshot_job, snapshot_sensor
from .checks import backup_checks
from .resources import KuboResource, RestoreLock, StorageResource
from .restore_job import restore_job

storage = StorageResource()
defs = dg.Definitions(
    assets=backup_assets,
    asset_checks=backup_checks,
    jobs=[backup_job, snapshot_job, restore_job],
    schedules=[daily_backup],
    sensors=[snapshot_sensor, dr_failure_alert],
    resources={"kubo": KuboResource(), "storage": storage, "restore_lock": RestoreLock(storage=storage),
               "restore_steps": dg.mem_io_manager},
)
