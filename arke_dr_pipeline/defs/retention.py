"""Retention as the last asset of a backup: the GFS policy applied to the
local folder and the offsite prefix, and old pin covers removed."""


import dagster as dg

from ..dr.catalog.retention import RetentionPolicy, prune
from .assets import arke_asset, human_bytes
from .offsite import offsite_copy
from .resources import KuboResource, OffsiteResource, StorageResource


@arke_asset({"file", "s3"}, "1", deps=[offsite_copy],
            description="Old backups deleted by the GFS policy (ARKE_KEEP_LAST/DAILY/WEEKLY/MONTHLY), locally "
                        "and offsite, never a base a kept delta needs; past ARKE_LOCAL_BUDGET_GB the oldest "
                        "chains with a verified offsite copy kept offsite only; old pin covers removed.")
def retention(context: dg.AssetExecutionContext, kubo: KuboResource, storage: StorageResource,
              offsite: OffsiteResource) -> dg.MaterializeResult:
    settings = offsite.applied_to(storage.settings(kubo))
    with kubo.client() as client:
        s3 = offsite.s3().for_prune() if settings.offsite_url else None  # prune's own credentials, when set
        out = prune(client, settings, RetentionPolicy.from_env(), s3=s3)
    local, remote = out["local"], out.get("offsite", {})
    for name in local["deleted"] + remote.get("deleted", []):
        context.log.info(f"deleted {name}")
    for name in local["offsite_only"]:
        context.log.info(f"{name}: kept offsite only (ARKE_LOCAL_BUDGET_GB)")
    for name, why in local["budget"].get("stuck", {}).items():
        context.log.warning(f"over the local budget, but the chain of {name} stays: {why}")
    freed = local["bytes_freed"] + remote.get("bytes_freed", 0)
    return dg.MaterializeResult(metadata={
        "kept": local["kept"], "deleted": len(local["deleted"]), "bytes_freed": local["bytes_freed"],
        "offsite_kept": remote.get("kept", 0), "offsite_deleted": len(remote.get("deleted", [])),
        "offsite_bytes_freed": remote.get("bytes_freed", 0), "freed": human_bytes(freed),
        "pins_removed": out.get("pins_removed", 0),
        "offsite_only": len(local["offsite_only"]),  # left the folder for ARKE_LOCAL_BUDGET_GB
        "local_bytes": local["budget"].get("after_bytes", 0), "budget_bytes": local["budget"].get("budget_bytes", 0),
    })


retention_assets = [retention]
