"""How far behind the archive the backups are: the two numbers an operator
is asked for at 3 a.m. (how old is the newest backup, and how many events
are in none), read from the backups folder and the index pointer.

The folder is the truth, not Dagster's history: a CAR exported from the CLI
counts, and a CAR counts only with its sidecar (written after the CAR was
verified, before the rename), so a half-written backup never looks fresh.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..kubo.client import KuboClient
from .config import Settings
from .pointer import read_pointer

STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True, kw_only=True)
class Freshness:
    newest_car: str | None
    age_seconds: float | None
    events_in_backup: int
    events_on_node: int

    @property
    def events_pending(self) -> int:
        return max(self.events_on_node - self.events_in_backup, 0)


def listed_backups(backups_dir: Path) -> Iterator[tuple[Path, dict]]:
    """(CAR, sidecar) of every backup the folder lists: a CAR with a readable sidecar."""
    for sidecar in backups_dir.glob("arke-*.json"):
        car = sidecar.with_suffix(".car")
        try:
            meta = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and car.is_file():
            yield car, meta


def newest_backup(backups_dir: Path) -> tuple[Path, dict] | None:
    """The newest CAR that has its sidecar, by the sidecar's timestamp, then seq (two in one second)."""
    best: tuple[tuple[str, int], Path, dict] | None = None
    for car, meta in listed_backups(backups_dir):
        stamp = meta.get("timestamp")
        if not isinstance(stamp, str):
            continue
        seq = meta.get("seq") if isinstance(meta.get("seq"), int) else -1
        if best is None or (stamp, seq) > best[0]:
            best = ((stamp, seq), car, meta)
    return None if best is None else (best[1], best[2])


def freshness(client: KuboClient, settings: Settings, *, now: datetime | None = None) -> Freshness:
    now = now or datetime.now(UTC)
    pointer = read_pointer(client, settings.index_pointer_path)
    on_node = pointer.event_count if pointer is not None else 0
    found = newest_backup(settings.backups_dir)
    if found is None:
        return Freshness(newest_car=None, age_seconds=None, events_in_backup=0, events_on_node=on_node)
    car, meta = found
    made = datetime.strptime(meta["timestamp"], STAMP).replace(tzinfo=UTC)
    return Freshness(newest_car=car.name, age_seconds=(now - made).total_seconds(),
                     events_in_backup=int(meta.get("event_count") or 0), events_on_node=on_node)
