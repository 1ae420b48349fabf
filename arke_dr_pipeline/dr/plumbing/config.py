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

from ...errors import BadInput
from ...kubo.client import DEFAULT_API

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


# How a snapshot reaches the index pointer, which the Arke API's builder and
# `/snapshot/latest` read (README, "Beside the Arke API"): `inline` always
# publishes upstream's one-block `arke/snapshot@v2`; `record` never writes the
# pointer's snapshot fields and keeps ours in `snapshots/latest.json`; `auto`
# publishes up to `ARKE_INLINE_MAX_ENTITIES` entities and keeps a record past it.
PUBLISH_MODES = ("auto", "inline", "record")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = env.get(name) or default
    if raw not in choices:
        raise BadInput(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise BadInput(f"{name} must be a positive whole number, got {raw!r}")
    return int(raw)


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
    publish: str = "auto"
    inline_max_entities: int = 50_000
    tip_grace: float = 2.0

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
            publish=_choice(env, "ARKE_PUBLISH", PUBLISH_MODES, "auto"),
            inline_max_entities=_count(env, "ARKE_INLINE_MAX_ENTITIES", 50_000),
            tip_grace=_seconds(env, "ARKE_TIP_GRACE_S", 2.0),
        )

    @property
    def index_root(self) -> str:
        """The tip tree sits beside the pointer: `/arke/index` for `/arke/index-pointer`."""
        parent = self.index_pointer_path.rsplit("/", 1)[0] or ""
        return f"{parent}/index"

    def publishes(self, entities: int) -> bool:
        """Whether a snapshot of `entities` is published inline in the index pointer."""
        return self.publish == "inline" or (self.publish == "auto" and entities <= self.inline_max_entities)

    @property
    def lock_dir(self) -> Path:
        """`ARKE_LOCK_DIR`, else the snapshots folder: every process on one archive shares it."""
        return self.locks or self.snapshots_dir
