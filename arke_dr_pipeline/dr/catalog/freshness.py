"""How far behind the archive the backups are: the two numbers an operator
is asked for at 3 a.m. (how old is the newest backup, and how many events
are in none), read from the backups folder and the index pointer.

The folder is the truth, not Dagster's history: a CAR exported from the CLI
counts, and a CAR counts only with its sidecar (written after the CAR was
verified, before the rename), so a half-written backup never looks fresh.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ...kubo.client import KuboClient
from ..archive.pointer import read_pointer
from ..plumbing.config import Settings
from .order import STAMP, order_key


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
    """(CAR, sidecar) of every backup the folder lists (dr/catalog/stores.py: a CAR with a readable sidecar)."""
    from .stores import LocalStore

    for name, meta in LocalStore(backups_dir).sidecars():
        yield backups_dir / name, meta


def next_order(backups_dir: Path) -> int:
    return 1 + max((order_key(meta)[0] for _, meta in listed_backups(backups_dir)), default=0)


def newest_backup(backups_dir: Path) -> tuple[Path, dict] | None:
    """The newest CAR that has its sidecar, by `order_key`."""
    best: tuple[tuple, Path, dict] | None = None
    for car, meta in listed_backups(backups_dir):
        if not isinstance(meta.get("timestamp"), str):
            continue
        if best is None or order_key(meta) > best[0]:
            best = (order_key(meta), car, meta)
    return None if best is None else (best[1], best[2])


def stamped_ahead(backups_dir: Path, now: datetime | None = None, slack: float = 300.0) -> list[str]:
    """Backups whose stamp is in the future: the host's clock jumped (or was wrong) when they were made."""
    now = now or datetime.now(UTC)
    ahead = []
    for car, meta in listed_backups(backups_dir):
        try:
            made = datetime.strptime(meta["timestamp"], STAMP).replace(tzinfo=UTC)
        except (KeyError, TypeError, ValueError):
            continue
        if (made - now).total_seconds() > slack:
            ahead.append(f"{car.name} (stamped {meta['timestamp']})")
    return sorted(ahead)


def backup_age(settings: Settings, *, now: datetime | None = None) -> tuple[str, float, int] | None:
    """(newest CAR, its age in seconds, the events it holds), from the backups folder alone: an
    outage of the node is when this number matters, so it never asks the node."""
    found = newest_backup(settings.backups_dir)
    if found is None:
        return None
    car, meta = found
    made = datetime.strptime(meta["timestamp"], STAMP).replace(tzinfo=UTC)
    return car.name, ((now or datetime.now(UTC)) - made).total_seconds(), int(meta.get("event_count") or 0)


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
