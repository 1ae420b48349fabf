"""The set of backups, in one place: what is listed, in what order, which chain each needs, and
how one is removed, over two stores of one interface, the local folder and an S3 prefix.

A backup is listed when its CAR and its sidecar are both there (the sidecar
is written last). Backups are ordered as they were made (`order_key`:
`order`, then seq, then the stamp), never by a wall clock first. Removing
one unlists it first (local: the sidecar renamed to a `.pruning` marker a
later prune finishes; S3: the sidecar object deleted first), then the CAR.
Behaviour that cuts across stores wraps one, as restic and Kopia do:
`DryRun` says what it would remove and removes nothing, `ReadOnly` refuses
to remove (verification and the drill never need to).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from ...errors import ArkeDrError
from .order import STAMP, order_key


@dataclass(frozen=True, kw_only=True)
class Backup:
    name: str
    time: datetime
    seq: int
    kind: str
    base: str | None
    size: int
    inventory: str | None
    order: tuple = ()  # order_key: as made, never by the wall clock first
    snapshot_cid: str | None = None
    sha256: str | None = None

    @property
    def rank(self) -> tuple:
        return self.order or (0, self.seq, self.time.strftime(STAMP))


def backup_of(name: str, sidecar: dict) -> Backup | None:
    try:
        when = datetime.strptime(sidecar["timestamp"], STAMP).replace(tzinfo=UTC)
    except (KeyError, TypeError, ValueError):
        return None
    base = sidecar.get("base") if sidecar.get("kind") == "delta" else None
    return Backup(name=name, time=when, seq=int(sidecar.get("seq") or 0), kind=sidecar.get("kind", "full"),
                  base=base.get("file") if isinstance(base, dict) else None, size=int(sidecar.get("size") or 0),
                  inventory=sidecar.get("inventory"), order=order_key(sidecar),
                  snapshot_cid=sidecar.get("snapshot_cid"),
                  sha256=sidecar["sha256"] if isinstance(sidecar.get("sha256"), str) else None)


class StoreRefused(ArkeDrError, RuntimeError):
    """A change asked of a read-only store."""


class Store(Protocol):
    where: str

    def sidecars(self) -> Iterator[tuple[str, dict]]:
        """(CAR name, sidecar) of each listed backup."""

    def freed(self, backup: Backup) -> int:
        """The bytes removing the backup frees."""

    def remove(self, backup: Backup) -> int:
        """Unlist, then delete, one backup; the bytes freed."""

    def keep_reason(self, backup: Backup) -> str | None:
        """Why this store must keep a backup its policy would drop (an Object Lock), or None."""


class LocalStore:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.where = str(self.folder)

    def sidecars(self) -> Iterator[tuple[str, dict]]:
        for sidecar in self.folder.glob("arke-*.json"):
            car = sidecar.with_suffix(".car")
            try:
                meta = json.loads(sidecar.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(meta, dict) and car.is_file():
                yield car.name, meta

    def freed(self, backup: Backup) -> int:
        return (self.folder / backup.name).stat().st_size

    def remove(self, backup: Backup) -> int:
        car = self.folder / backup.name
        size = self.freed(backup)
        marker = car.with_suffix(".json.pruning")
        car.with_suffix(".json").rename(marker)  # unlisted first, and remembered
        car.unlink(missing_ok=True)
        marker.unlink()
        return size

    def keep_reason(self, backup: Backup) -> str | None:
        return None

    def finish_interrupted(self) -> None:
        """A removal cut short between unlisting a backup and deleting its CAR left a marker: finish it."""
        for marker in self.folder.glob("arke-*.json.pruning"):
            (self.folder / (marker.name[: -len(".json.pruning")] + ".car")).unlink(missing_ok=True)
            marker.unlink()


class S3Store:
    """An offsite prefix; the listing is read once, when the store is opened."""

    def __init__(self, s3, target):
        self.s3, self.target = s3, target
        self.client = s3.client()
        self.where = target.url(target.prefix)
        self.objects: dict[str, int] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=target.bucket,
                                                                          Prefix=target.key("arke-")):
            for obj in page.get("Contents", []):
                self.objects[obj["Key"]] = obj["Size"]

    def sidecars(self) -> Iterator[tuple[str, dict]]:
        for key in sorted(k for k in self.objects if k.endswith(".json")):
            if key[: -len(".json")] + ".car" not in self.objects:
                continue
            try:
                meta = json.loads(self.client.get_object(Bucket=self.target.bucket, Key=key)["Body"].read(1 << 20))
            except ValueError:
                continue
            if isinstance(meta, dict):
                yield key.rsplit("/", 1)[-1][: -len(".json")] + ".car", meta

    def size(self, name: str) -> int | None:
        return self.objects.get(self.target.key(name))

    def freed(self, backup: Backup) -> int:
        stem = self.target.key(backup.name[:-4])
        return self.objects.get(stem + ".car", 0) + self.objects.get(stem + ".inventory.tsv", 0)

    def remove(self, backup: Backup) -> int:
        stem = self.target.key(backup.name[:-4])
        for suffix in (".json", ".car", ".inventory.tsv"):
            self.client.delete_object(Bucket=self.target.bucket, Key=stem + suffix)
        return self.freed(backup)

    def keep_reason(self, backup: Backup) -> str | None:
        from ..offsite.objectlock import locked_until

        until = locked_until(self.client, self.target.bucket, self.target.key(backup.name))
        if until is not None and until > datetime.now(UTC):
            return f"locked offsite until {until:%Y-%m-%d %H:%M} UTC: kept"
        return None


class _Wrapper:
    """A store as it is, but for what `remove` does."""

    def __init__(self, store: Store):
        self.store, self.where = store, store.where

    def sidecars(self):
        return self.store.sidecars()

    def keep_reason(self, backup: Backup) -> str | None:
        return self.store.keep_reason(backup)


class DryRun(_Wrapper):
    """Removals counted and not made."""

    def remove(self, backup: Backup) -> int:
        return self.store.freed(backup)


class ReadOnly(_Wrapper):
    """For reading: any removal is refused."""

    def remove(self, backup: Backup) -> int:
        raise StoreRefused(f"{self.where} is open read-only: {backup.name} is not removed")


class Catalog:
    def __init__(self, store: Store):
        self.store = store

    def backups(self) -> list[Backup]:
        """Every listed backup, oldest first, as made."""
        found = [b for name, meta in self.store.sidecars() if (b := backup_of(name, meta)) is not None]
        return sorted(found, key=lambda b: b.rank)

    def newest(self) -> Backup | None:
        listed = self.backups()
        return listed[-1] if listed else None

    def chain(self, name: str) -> list[Backup]:
        return chain_in(self.backups(), name)


def chain_in(backups: list[Backup], name: str) -> list[Backup]:
    """The backups `name` needs among `backups`, full first; stops where a link is not listed."""
    by_name = {b.name: b for b in backups}
    out, cur = [], by_name.get(name)
    while cur is not None and cur not in out:
        out.append(cur)
        cur = by_name.get(cur.base) if cur.base else None
    return list(reversed(out))
