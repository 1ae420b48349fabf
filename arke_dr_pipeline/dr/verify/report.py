"""What a checked backup holds: the one record the DAG check, the CAR
verifier, the export's sidecar, restore and the Dagster checks all read.

The DAG facts come from the check of the blocks; the CAR facts (file, size,
sha256, CARv2 offsets) are added once the file is known. The sidecar is a
projection of this record, so a sidecar and a re-verification compare field
by field with the same names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..catalog.format import FORMAT

SIDECAR_FIELDS = ("size", "sha256", "block_count", "blocks_by_role", "bytes_by_role",
                  "blocks_by_codec", "entity_count", "event_count", "event_cid")


@dataclass(frozen=True, kw_only=True)
class BackupReport:
    snapshot_cid: str
    seq: int
    schema: str
    event_cid: str | None
    ts: str | None
    entity_count: int
    event_count: int
    manifest_count: int
    block_count: int
    big_blocks: int
    blocks_by_role: dict[str, int]
    bytes_by_role: dict[str, int]
    blocks_by_codec: dict[str, int]
    snapshots: dict[str, str] = field(default_factory=dict)
    lost: list[dict] = field(default_factory=list)
    car: str | None = None
    version: int | None = None
    size: int | None = None
    data_offset: int | None = None
    data_size: int | None = None
    sha256: str | None = None
    roots: list[str] = field(default_factory=list)
    sidecar: str | None = None

    def with_car(self, **facts) -> BackupReport:
        return dataclasses.replace(self, **facts)

    def to_sidecar(self, **extra) -> dict:
        """The sidecar written beside the CAR: the snapshot, then the checked facts."""
        return {"format": FORMAT, "snapshot_cid": self.snapshot_cid, "seq": self.seq,
                **{k: getattr(self, k) for k in SIDECAR_FIELDS},
                **({"lost": self.lost} if self.lost else {}), **extra}

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "ok": True}
