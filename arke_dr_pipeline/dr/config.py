"""Where things live, from the seed's environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..kubo.client import api_url_from_env

DEFAULT_POINTER = "/arke/index-pointer"
DEFAULT_INDEX = "/arke/index"


@dataclass(frozen=True)
class Settings:
    api_url: str = field(default_factory=api_url_from_env)
    snapshots_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("SNAPSHOTS_DIR", "./snapshots")))
    backups_dir: Path = field(default_factory=lambda: Path(os.environ.get("BACKUPS_DIR", "./backups")))
    index_pointer_path: str = field(
        default_factory=lambda: os.environ.get("INDEX_POINTER_PATH", DEFAULT_POINTER))
    container_name: str = field(default_factory=lambda: os.environ.get("CONTAINER_NAME", "ipfs-node"))
    timeout: float = field(default_factory=lambda: float(os.environ.get("ARKE_RPC_TIMEOUT", "30")))
    export_timeout: float = field(
        default_factory=lambda: float(os.environ.get("ARKE_EXPORT_TIMEOUT", "3600")))

    @property
    def index_root(self) -> str:
        """The tip tree sits beside the pointer: `/arke/index` for `/arke/index-pointer`."""
        parent = self.index_pointer_path.rsplit("/", 1)[0] or ""
        return f"{parent}/index"

    @property
    def lock_dir(self) -> Path:
        return Path(os.environ.get("ARKE_LOCK_DIR", str(self.snapshots_dir)))
