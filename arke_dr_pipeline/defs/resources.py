"""Small resources fed by the seed's environment variables."""


import os
from pathlib import Path
from typing import Literal

import dagster as dg

from ..dr.config import DEFAULT_POINTER, Settings
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

    def settings(self, kubo: KuboResource) -> Settings:
        return Settings(
            api_url=kubo.api_url, snapshots_dir=Path(self.snapshots_dir),
            backups_dir=Path(self.backups_dir), index_pointer_path=self.index_pointer_path,
            container_name=kubo.container_name, timeout=kubo.timeout,
            export_timeout=kubo.export_timeout,
        )
