"""The offsite copy as an asset after `car_file`, and the check that ties it
to the local CAR. Unconfigured (no ARKE_OFFSITE_URL), the asset says so and
materializes nothing offsite: a backup without a bucket is still a backup."""

import os
from datetime import date
from pathlib import Path

import dagster as dg

from ..dr.catalog.sidecar import read_sidecar
from ..dr.offsite.copy import OffsiteTarget, upload_backup
from ..dr.offsite.sampling import verify_subset
from .assets import arke_asset, car_file, human_bytes
from .automation import schedule_status
from .failures import speaks_dagster
from .resources import OffsiteResource, StorageResource


def _handed_car(instance: dg.DagsterInstance) -> str:
    """The CAR `car_file` wrote, from its materialization: never "the newest file in the folder"."""
    event = instance.get_latest_materialization_event(dg.AssetKey("car_file"))
    if event is None or event.asset_materialization is None:
        raise dg.Failure(description="no CAR has been materialized yet: materialize car_file first")
    return str(event.asset_materialization.metadata["path"].value)


@arke_asset({"s3", "file"}, "1", deps=[car_file],
            description="The CAR, its inventory and its sidecar on S3-compatible storage, the copy read back "
                        "and hashed before the sidecar goes up.")
def offsite_copy(context: dg.AssetExecutionContext, offsite: OffsiteResource) -> dg.MaterializeResult:
    url = offsite.target_url()
    if not url:
        context.log.info("ARKE_OFFSITE_URL is unset: no offsite copy")
        return dg.MaterializeResult(metadata={"configured": 0, "bytes": 0,
                                              "offsite": dg.MetadataValue.text("not configured (ARKE_OFFSITE_URL)")})
    target = OffsiteTarget.parse(url)
    result = upload_backup(offsite.s3(), target, _handed_car(context.instance), verified=True)  # car_file verified it
    return dg.MaterializeResult(metadata={
        "configured": 1, "bytes": result.bytes, "size": human_bytes(result.bytes),
        "upload_seconds": round(result.upload_seconds, 3), "verify_seconds": round(result.verify_seconds, 3),
        "mb_per_s": round(result.mb_per_s, 1), "already_there": int(result.already_there),
        "car_key": dg.MetadataValue.text(target.url(result.car_key)),
        "sidecar_key": dg.MetadataValue.text(target.url(result.sidecar_key)),
        "seconds": round(result.upload_seconds + result.verify_seconds, 3),
    })


@dg.asset_check(asset=offsite_copy, blocking=True,
                description="The offsite CAR has the local CAR's size and sha256, and its sidecar is up.")
def offsite_matches_local(context: dg.AssetCheckExecutionContext, offsite: OffsiteResource) -> dg.AssetCheckResult:
    url = offsite.target_url()
    if not url:
        return dg.AssetCheckResult(passed=True, description="no offsite copy configured",
                                   metadata={"configured": 0})
    car = Path(_handed_car(context.instance))
    local = read_sidecar(car) or {}
    target = OffsiteTarget.parse(url)
    client = offsite.s3().client()
    head = client.head_object(Bucket=target.bucket, Key=target.key(car.name))
    remote_sidecar = client.head_object(Bucket=target.bucket, Key=target.key(car.with_suffix(".json").name))
    same = (head["ContentLength"] == local.get("size") and head.get("Metadata", {}).get("sha256") == local.get("sha256")
            and remote_sidecar["ContentLength"] > 0)
    return dg.AssetCheckResult(passed=same, metadata={"configured": 1, "remote_bytes": head["ContentLength"],
                                                      "local_bytes": local.get("size", 0)})


offsite_assets = [offsite_copy]
offsite_checks = [offsite_matches_local]


def slices() -> int:
    return max(1, int(os.environ.get("ARKE_OFFSITE_VERIFY_SLICES", "7")))


@dg.op(description="Re-read today's slice of the offsite copies (slice n of ARKE_OFFSITE_VERIFY_SLICES, rotating "
                   "by day), each result recorded in BACKUPS_DIR/offsite-verify.jsonl.")
@speaks_dagster
def verify_offsite_slice(context: dg.OpExecutionContext, offsite: OffsiteResource,
                         storage: StorageResource) -> dg.Output[dict]:
    url = offsite.target_url()
    if not url:
        context.log.info("ARKE_OFFSITE_URL is unset: nothing offsite to verify")
        return dg.Output({"checked": 0}, metadata={"checked": 0, "failed": 0})
    t = slices()
    n = date.today().toordinal() % t + 1
    result = verify_subset(offsite.s3(), OffsiteTarget.parse(url), n, t, storage.backups)
    if result["failed"]:
        raise dg.Failure(description=f"{len(result['failed'])} of {result['checked']} offsite copies in slice "
                                     f"{n}/{t} do not verify: {result['failed'][0]['problem']}",
                         metadata={"failed": len(result["failed"]), "checked": result["checked"]})
    return dg.Output(result, metadata={"checked": result["checked"], "failed": 0,
                                       "subset": dg.MetadataValue.text(result["subset"])})


@dg.job(description="One slice of the offsite copies re-read a day: every copy in ARKE_OFFSITE_VERIFY_SLICES days.",
        executor_def=dg.in_process_executor)
def offsite_verify_job():
    verify_offsite_slice()


daily_offsite_verify = dg.ScheduleDefinition(
    name="daily_offsite_verify", job=offsite_verify_job, cron_schedule="40 5 * * *", execution_timezone="UTC",
    default_status=schedule_status(),
    description="Re-read one slice of the offsite copies a day (restic's read-data-subset), so every copy "
                "is read back within ARKE_OFFSITE_VERIFY_SLICES days.")
