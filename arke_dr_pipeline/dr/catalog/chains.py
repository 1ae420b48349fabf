"""Backup chains: a full CAR, then deltas that each hold only the blocks
their snapshot's inventory adds to the backup they extend.

A delta's sidecar names its base (file, seq, sha256) and its kind; the
chain is found by following those names in the same folder (or offsite
prefix), oldest first, and is verified as one archive: every block of every
link hashed, every link resolving somewhere in the chain, the base's bytes
equal to the sha256 its delta recorded. Inventories are of whole snapshots
(sorted CID files), so a delta is the streamed difference of two of them.

When a full is due instead (`full_due`): no usable base; a chain already
`max_chain` deltas long (default 7: a full a week under a daily schedule,
and a restore reads at most eight files); or deltas summing to `max_ratio`
of their full (default 0.5: past that, a new full costs less to keep and to
restore than the chain it would extend).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...ipld.car import CarReader, CarWriter
from ...ipld.cid import parse_cid
from ..backup.inventory import inventory_cids
from ..verify.dagcheck import BackupInvalid
from .freshness import newest_backup
from .hashed import known_sha256
from .sidecar import car_file, read_sidecar, sha256_file

MAX_CHAIN = 7
MAX_RATIO = 0.5


@dataclass(frozen=True, kw_only=True)
class ChainPolicy:
    max_chain: int = MAX_CHAIN
    max_ratio: float = MAX_RATIO

    @classmethod
    def from_env(cls, env=None) -> ChainPolicy:
        env = os.environ if env is None else env
        try:
            return cls(max_chain=int(env.get("ARKE_DELTA_MAX_CHAIN") or MAX_CHAIN),
                       max_ratio=float(env.get("ARKE_DELTA_MAX_RATIO") or MAX_RATIO))
        except ValueError:
            from ...errors import BadInput

            raise BadInput("ARKE_DELTA_MAX_CHAIN must be a whole number and ARKE_DELTA_MAX_RATIO a number") from None


def chain_of(car: Path, *, hashed: bool = True, hash_of: Callable[[Path], str] = sha256_file) -> list[Path]:
    """The backups `car` needs, oldest (the full) first, each checked against the sha256 its delta
    recorded, as `hash_of` finds it (or, not `hashed`, against the size its own sidecar records: for a
    chain hashed moments ago by the same backup)."""
    chain = [car]
    seen = {car.name}
    sidecar = read_sidecar(car) or {}
    while sidecar.get("kind") == "delta":
        base = sidecar.get("base") or {}
        name = base.get("file")
        if not isinstance(name, str) or "/" in name or not name.endswith(".car"):
            raise BackupInvalid(None, f"{chain[-1].name} is a delta whose sidecar names no base CAR")
        path = car.parent / name
        if name in seen:
            raise BackupInvalid(None, f"the chain of {car.name} loops at {name}")
        if not path.is_file():
            raise BackupInvalid(None, f"{chain[-1].name} extends {name}, which is missing from {car.parent}")
        if hashed and hash_of(path) != base.get("sha256"):
            raise BackupInvalid(None, f"{name} is not the backup {chain[-1].name} extends: its sha256 differs")
        sidecar = read_sidecar(path) or {}
        if not hashed and (sidecar.get("sha256"), sidecar.get("size")) != (base.get("sha256"), path.stat().st_size):
            raise BackupInvalid(None, f"{name} is not the backup {chain[-1].name} extends: its size differs")
        seen.add(name)
        chain.append(path)
    return list(reversed(chain))


def full_due(base: Path | None, policy: ChainPolicy) -> str | None:
    """Why the next backup must be a full, or None when it can be a delta of `base`."""
    if base is None:
        return "no earlier backup to extend"
    sidecar = read_sidecar(base) or {}
    if not sidecar.get("inventory") or not (base.parent / sidecar["inventory"]).is_file():
        return f"{base.name} has no inventory to diff against"
    if sidecar.get("lost"):  # a full walk of the node is what notices a lost block coming back
        return f"{base.name} was taken with {len(sidecar['lost'])} block(s) missing from the node"
    try:
        chain = chain_of(base, hash_of=known_sha256)  # dr/catalog/hashed.py: each CAR hashed once
    except BackupInvalid as exc:
        return f"the chain of {base.name} is broken ({exc})"
    if len(chain) - 1 >= policy.max_chain:
        return f"the chain already has {len(chain) - 1} deltas (ARKE_DELTA_MAX_CHAIN={policy.max_chain})"
    full = chain[0].stat().st_size
    deltas = sum(p.stat().st_size for p in chain[1:])
    if full and deltas / full >= policy.max_ratio:
        return f"its deltas hold {deltas / full:.0%} of the full's bytes (ARKE_DELTA_MAX_RATIO={policy.max_ratio})"
    return None


def newest_base(backups_dir: Path) -> Path | None:
    found = newest_backup(backups_dir)
    return found[0] if found else None


def delta_base(backups_dir: Path, *, full: bool = False, policy: ChainPolicy | None = None) -> Path | None:
    """The backup the next one extends, or None when the next must be a full."""
    if full:
        return None
    base = newest_base(backups_dir)
    return base if full_due(base, policy or ChainPolicy.from_env()) is None else None


def added_cids(inventory: Path, base_inventory: Path) -> set[bytes]:
    """The CIDs of `inventory` not in `base_inventory`: a merge of two sorted files."""
    added: set[bytes] = set()
    old = inventory_cids(base_inventory)
    a = next(old, None)
    for b in inventory_cids(inventory):
        while a is not None and a < b:
            a = next(old, None)
        if a != b:
            added.add(parse_cid(b))
    return added


def write_delta(staged: Path, out: Path, keep: set[bytes]) -> tuple[int, str, int]:
    """The staged full CAR's blocks that are in `keep`, under the same root: (size, sha256, blocks)."""
    with open(staged, "rb", buffering=1 << 20) as fh:
        reader = CarReader(fh, verify=False)
        sink = CarWriter(out, list(reader.roots))
        count = 0
        try:
            for block in reader:
                if block.cid in keep:
                    sink.add(block.cid, block.data)
                    count += 1
            sink.close()
        finally:
            sink.abort()
    if count != len(keep):
        out.unlink(missing_ok=True)
        raise BackupInvalid(None, f"the staged CAR holds {count} of the delta's {len(keep)} blocks")
    return sink.size, sink.sha.hexdigest(), count


def resolve(car: str | os.PathLike) -> list[Path]:
    """A CAR, or the chain a delta needs; a full is a chain of one."""
    path = car_file(car)
    return chain_of(path) if (read_sidecar(path) or {}).get("kind") == "delta" else [path]
