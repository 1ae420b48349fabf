"""Small resources fed by the seed's environment variables."""


import os
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import dagster as dg
from pydantic import Field

from ..dr.plumbing.config import DEFAULT_POINTER, Settings
from ..dr.plumbing.lock import replacing_archive
from ..kubo.client import KuboClient
from ..kubo.transport import make_transport


class KuboResource(dg.ConfigurableResource):
    """The Kubo node. Unset fields come from the environment when a run starts
    (`Settings.from_env`), never at import: the UI shows no host's values."""

    api_url: str | None = Field(default=None, description="Kubo RPC URL (default: IPFS_API_URL, IPFS_API, "
                                                          "http://localhost:5001/api/v0).")
    timeout: float | None = Field(default=None, gt=0, description=(
        "Seconds per RPC call, and the longest silence in a stream (default: ARKE_RPC_TIMEOUT, 30)."))
    export_timeout: float | None = Field(default=None, gt=0, description="Seconds for calls that answer only when "
                                                                         "done (default: ARKE_EXPORT_TIMEOUT, 3600).")
    transport: str | None = Field(
        default=None, description="How CARs reach the node: http, or docker (`ipfs` inside the container) "
                                  "(default: ARKE_TRANSPORT, http).")
    container_name: str | None = Field(default=None, description="Kubo's container for the docker transport "
                                                                 "(default: CONTAINER_NAME, ipfs-node).")

    def overrides(self) -> dict:
        return {k: v for k, v in {"api_url": self.api_url, "timeout": self.timeout,
                                  "export_timeout": self.export_timeout, "transport": self.transport,
                                  "container_name": self.container_name}.items() if v is not None}

    def client(self) -> KuboClient:
        s = replace(Settings.from_env(), **self.overrides())
        return KuboClient(s.api_url, timeout=s.timeout, long_timeout=s.export_timeout)

    def car_transport(self, client: KuboClient):
        """None for HTTP (the client streams); the docker-exec transport when asked for."""
        s = replace(Settings.from_env(), **self.overrides())
        return None if s.transport == "http" else make_transport(s.transport, client, s.container_name)


class StorageResource(dg.ConfigurableResource):
    """Where snapshot metadata, CARs and inventories land, and where the pointer lives;
    unset fields come from the environment when a run starts."""

    snapshots_dir: str | None = Field(default=None, description="Snapshot metadata and the locks "
                                                                "(default: SNAPSHOTS_DIR, ./snapshots).")
    backups_dir: str | None = Field(default=None, description="CARs, sidecars, inventories; restore paths must lie "
                                                              "inside (default: BACKUPS_DIR, ./backups).")
    index_pointer_path: str | None = Field(default=None, description="The index pointer in MFS; tips live in "
                                                                     "index/ beside it (default: INDEX_POINTER_PATH, "
                                                                     f"{DEFAULT_POINTER}).")

    def overrides(self) -> dict:
        out: dict = {}
        if self.snapshots_dir is not None:
            out["snapshots_dir"] = Path(self.snapshots_dir)
        if self.backups_dir is not None:
            out["backups_dir"] = Path(self.backups_dir)
        if self.index_pointer_path is not None:
            out["index_pointer_path"] = self.index_pointer_path
        return out

    def lock_dir(self) -> Path:
        return replace(Settings.from_env(), **self.overrides()).lock_dir

    @property
    def backups(self) -> Path:
        return replace(Settings.from_env(), **self.overrides()).backups_dir

    def settings(self, kubo: KuboResource) -> Settings:
        return replace(Settings.from_env(), **kubo.overrides(), **self.overrides())


class OffsiteResource(dg.ConfigurableResource):
    """Where backups go offsite. Unset fields come from the standard AWS
    variables when a run starts; the keys are bound as `dg.EnvVar`, so the UI
    shows the variables' names, never the values."""

    url: str | None = Field(default=None, description="s3://BUCKET/PREFIX for the offsite copies "
                                                      "(default: ARKE_OFFSITE_URL; unset: no offsite copy).")
    endpoint_url: str | None = Field(default=None, description="S3 endpoint for non-AWS servers, path-style "
                                                               "(default: AWS_ENDPOINT_URL).")
    region: str | None = Field(default=None, description="Region (default: AWS_REGION, us-east-1).")
    access_key_id: str | None = Field(default=None, description="Access key (default: AWS_ACCESS_KEY_ID).")
    secret_access_key: str | None = Field(default=None, description="Secret key (default: AWS_SECRET_ACCESS_KEY).")

    def target_url(self) -> str | None:
        return self.url or Settings.from_env().offsite_url

    def applied_to(self, settings: Settings) -> Settings:
        """`settings` with this resource's offsite URL, when it has one."""
        url = self.target_url()
        return replace(settings, offsite_url=url) if url else settings

    def s3(self):
        from ..dr.offsite.copy import S3Config

        return S3Config.from_env(endpoint_url=self.endpoint_url, region=self.region,
                                 access_key_id=self.access_key_id, secret_access_key=self.secret_access_key)


class AlertResource(dg.ConfigurableResource):
    """Where failed runs are posted. A secret: bound as `dg.EnvVar`, so the UI
    shows the variable's name, never the URL (webhook URLs carry a token)."""

    webhook_url: str | None = Field(default=None, description="Webhook that receives one JSON line per failed "
                                                              "run (from ARKE_ALERT_WEBHOOK_URL; unset: none).")


def from_env(name: str) -> dg.EnvVar | None:
    """The variable as a `dg.EnvVar` binding when the deployment sets it: the
    Resources page then shows its name, not the host's value; unset fields
    take `Settings.from_env`'s documented defaults when a run starts."""
    return dg.EnvVar(name) if os.environ.get(name) else None


class RestoreLock(dg.ConfigurableResource):
    """The restore lock, held for a whole `restore_job` run.

    The job runs its ops in one process, so this resource is set up before
    the first op and torn down after the last, or when the run fails: a CLI
    restore, a snapshot build or a backup never interleaves with its steps.
    """

    storage: dg.ResourceDependency[StorageResource]

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext):
        with replacing_archive(self.storage.lock_dir()):
            yield self
