"""Where things live and how long to wait, read from the environment once.

`Settings.from_env()` is the one place the seed's variables (and ours) are
read; the CLI context and the Dagster resources start from it and override
what their options or config set. A plain `Settings(...)` reads nothing:
what it is given and the documented defaults.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInput
from ..kubo.client import DEFAULT_API

DEFAULT_POINTER = "/arke/index-pointer"
DEFAULT_INDEX = "/arke/index"


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (0 < value < math.inf):
        raise BadInput(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    api_url: str = DEFAULT_API
    snapshots_dir: Path = Path("./snapshots")
    backups_dir: Path = Path("./backups")
    index_pointer_path: str = DEFAULT_POINTER
    container_name: str = "ipfs-node"
    timeout: float = 30.0
    export_timeout: float = 3600.0
    locks: Path | None = None
    transport: str = "http"
    offsite_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Every variable the README's configuration table lists that concerns an operation."""
        env = os.environ if env is None else env
        locks = env.get("ARKE_LOCK_DIR")
        return cls(
            api_url=env.get("IPFS_API_URL") or env.get("IPFS_API") or DEFAULT_API,
            snapshots_dir=Path(env.get("SNAPSHOTS_DIR") or "./snapshots"),
            backups_dir=Path(env.get("BACKUPS_DIR") or "./backups"),
            index_pointer_path=env.get("INDEX_POINTER_PATH") or DEFAULT_POINTER,
            container_name=env.get("CONTAINER_NAME") or "ipfs-node",
            timeout=_seconds(env, "ARKE_RPC_TIMEOUT", 30.0),
            export_timeout=_seconds(env, "ARKE_EXPORT_TIMEOUT", 3600.0),
            locks=Path(locks) if locks else None,
            transport=env.get("ARKE_TRANSPORT") or "http",
            offsite_url=env.get("ARKE_OFFSITE_URL") or None,
        )

    @property
    def index_root(self) -> str:
        """The tip tree sits beside the pointer: `/arke/index` for `/arke/index-pointer`."""
        parent = self.index_pointer_path.rsplit("/", 1)[0] or ""
        return f"{parent}/index"

    @property
    def lock_dir(self) -> Path:
        """`ARKE_LOCK_DIR`, else the snapshots folder: every process on one archive shares it."""
        return self.locks or self.snapshots_dir
