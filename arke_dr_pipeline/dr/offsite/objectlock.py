"""Immutable offsite copies: S3 Object Lock on every object a backup uploads.

With `ARKE_OFFSITE_LOCK_DAYS` set, the CAR, its inventory and its sidecar
go up with a retention (`ARKE_OFFSITE_LOCK_MODE`: GOVERNANCE, the default,
which a privileged credential can lift, or COMPLIANCE, which nobody can),
so credentials stolen from the host cannot delete or overwrite a copy
before its time: the bucket must be created with Object Lock enabled. A
delta is worth only as much as its chain, so uploading one extends the
retention of every backup it extends to at least its own: a chain is
restorable for as long as its newest delta is locked. Prune skips a copy
that is still locked and says until when.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ...errors import BadInput

MODES = ("GOVERNANCE", "COMPLIANCE")


@dataclass(frozen=True)
class LockPolicy:
    days: int = 0
    mode: str = "GOVERNANCE"

    @classmethod
    def from_env(cls, env=None) -> LockPolicy:
        env = os.environ if env is None else env
        raw = (env.get("ARKE_OFFSITE_LOCK_DAYS") or "0").strip()
        if not raw.isdigit():
            raise BadInput(f"ARKE_OFFSITE_LOCK_DAYS must be a whole number of days, got {raw!r}")
        mode = (env.get("ARKE_OFFSITE_LOCK_MODE") or "GOVERNANCE").strip().upper()
        if mode not in MODES:
            raise BadInput(f"ARKE_OFFSITE_LOCK_MODE must be GOVERNANCE or COMPLIANCE, got {mode!r}")
        return cls(int(raw), mode)

    @property
    def enabled(self) -> bool:
        return self.days > 0

    def until(self, now: datetime | None = None) -> datetime:
        return (now or datetime.now(UTC)).replace(microsecond=0) + timedelta(days=self.days)

    def put_args(self, until: datetime | None) -> dict:
        """Arguments of a put: the retention and the checksum S3 requires with it, or nothing."""
        if until is None:
            return {}
        return {"ObjectLockMode": self.mode, "ObjectLockRetainUntilDate": until, "ChecksumAlgorithm": "SHA256"}


def locked_until(client, bucket: str, key: str) -> datetime | None:
    """The retention of the object's current version, when it has one."""
    head = client.head_object(Bucket=bucket, Key=key)
    return head.get("ObjectLockRetainUntilDate")


def extend(client, bucket: str, keys: list[str], until: datetime, mode: str) -> list[str]:
    """Each object in `keys` retained at least until `until` (a retention only ever grows); the keys extended."""
    extended = []
    for key in keys:
        current = locked_until(client, bucket, key)
        if current is None or current < until:
            client.put_object_retention(Bucket=bucket, Key=key, Retention={"Mode": mode, "RetainUntilDate": until},
                                        ChecksumAlgorithm="SHA256")
            extended.append(key)
    return extended


def parse_until(text: str | None) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if text else None
    except ValueError:
        return None
