"""Small resources fed by the seed's environment variables."""


import os
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import dagster as dg

from ..dr.config import DEFAULT_POINTER, Settings
from ..dr.lock import replacing_archive
from ..kubo.client import KuboClient, api_url_from_env
from ..kubo.transport import make_transport


class KuboResource(dg.ConfigurableResource):
    """The Kubo node. `transport: docker` runs `ipfs` inside CONTAINER_NAME for CAR moves."""

    api_url: str = api_url_from_env()
    timeout: float = float(os.environ.get("ARKE_RPC_TIMEOUT", "30"))
    export_timeout: float = float(os.environ.get("ARKE_EXPORT_TIMEOUT", "3600"))
    transport: Literal["http", "docker"] = os.environ.get("ARKE_TRANSPORT", "http")  # type: ignore[assignment]
    container_name: str = os.environ.get("CONTAINER_NAME", "ipfs-node")

    def client(self) -> KuboClient:
        return KuboClient(self.api_url, timeout=self.timeout, long_timeout=self.export_timeout)

    def car_transport(self, client: KuboClient):
        """None for HTTP (the client streams); the docker-exec transport when asked for."""
        return None if self.transport == "http" else make_transport(self.transport, client, self.container_name)


class StorageResource(dg.ConfigurableResource):
    """Where snapshot metadata, CARs and inventories land, and where the pointer lives."""

    snapshots_dir: str = os.environ.get("SNAPSHOTS_DIR", "./snapshots")
    backups_dir: str = os.environ.get("BACKUPS_DIR", "./backups")
    index_pointer_path: str = os.environ.get("INDEX_POINTER_PATH", DEFAULT_POINTER)

    def lock_dir(self) -> Path:
        return Path(os.environ.get("ARKE_LOCK_DIR", self.snapshots_dir))

    def settings(self, kubo: KuboResource) -> Settings:
        return Settings(
            api_url=kubo.api_url, snapshots_dir=Path(self.snapshots_dir),
            backups_dir=Path(self.backups_dir), index_pointer_path=self.index_pointer_path,
            container_name=kubo.container_name, timeout=kubo.timeout,
            export_timeout=kubo.export_timeout,
        )


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
