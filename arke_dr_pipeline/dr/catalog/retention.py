"""Retention: old backups pruned by a GFS policy, locally and offsite,
without ever leaving a listed backup unrestorable.

Kept: the newest `last` backups, and the newest backup of each of the
newest `daily` days, `weekly` ISO weeks and `monthly` months; then, for
every kept delta, every backup its chain needs. Defaults (7, 14, 8, 12):
a week of everything, two weeks of dailies, two months of weeklies, a year
of monthlies — the Velero/restic shape, sized for a daily schedule.

Order of deletion: a backup is listed by its sidecar, so each deleted
backup loses its sidecar first (renamed to a `.pruning` marker: unlisted,
and remembered, so a prune cut short here is finished by the next one),
then its CAR, then the marker; inventories no kept backup names go last. Backups are deleted newest first, so a
delta always goes before the base it extends: at every moment, every backup
still listed has its whole chain.
"""

from __future__ import annotations

import heapq
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import BadInput
from ...kubo.client import KuboClient
from ..backup.inventory import inventory_cids
from ..backup.translog import Log
from ..backup.translog import added as _added
from ..plumbing.progress import log
from .budget import budget_bytes, folder_bytes, plan, report
from .stores import Backup, Catalog, DryRun, LocalStore, S3Store, chain_in


@dataclass(frozen=True, kw_only=True)
class RetentionPolicy:
    last: int = 7
    daily: int = 14
    weekly: int = 8
    monthly: int = 12

    @classmethod
    def from_env(cls, env=None) -> RetentionPolicy:
        env = os.environ if env is None else env
        values = {}
        for name in ("last", "daily", "weekly", "monthly"):
            raw = env.get(f"ARKE_KEEP_{name.upper()}")
            if raw:
                if not raw.isdigit():
                    raise BadInput(f"ARKE_KEEP_{name.upper()} must be a whole number, got {raw!r}")
                values[name] = int(raw)
        policy = cls(**values)
        if policy.last < 1:
            raise BadInput("ARKE_KEEP_LAST must be at least 1: the newest backup is always kept")
        return policy


@dataclass(kw_only=True)
class PruneResult:
    kept: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    dry_run: bool = False
    held: dict[str, str] = field(default_factory=dict)
    offsite_only: list[str] = field(default_factory=list)  # left the folder for the disk budget
    budget: dict = field(default_factory=dict)


def choose(backups: list[Backup], policy: RetentionPolicy, *, newest_snapshot: str | None = None) -> set[str]:
    """The names to keep: the GFS picks, and every backup of the newest snapshot, closed over the
    chains they need. `last` counts backups as they were made (order_key), so a clock that jumped
    cannot make the newest look old; the calendar buckets still go by stamps."""
    ordered = sorted(backups, key=lambda b: b.rank, reverse=True)
    keep = {b.name for b in ordered[:policy.last]}
    keep |= {b.name for b in backups if newest_snapshot and b.snapshot_cid == newest_snapshot}
    for count, bucket in ((policy.daily, lambda t: t.date()), (policy.weekly, lambda t: t.isocalendar()[:2]),
                          (policy.monthly, lambda t: (t.year, t.month))):
        seen: list = []
        for b in ordered:
            key = bucket(b.time)
            if key not in seen:
                if len(seen) == count:
                    break
                seen.append(key)
                keep.add(b.name)
    by_name = {b.name: b for b in backups}
    for name in list(keep):
        cur = by_name.get(name)
        while cur is not None and cur.base:
            keep.add(cur.base)
            cur = by_name.get(cur.base)
    return keep


def prune_local(backups_dir: Path, policy: RetentionPolicy, *, dry_run: bool = False,
                newest_snapshot: str | None = None, budget: int | None = None,
                offsite_sha: dict[str, str] | None = None) -> PruneResult:
    """`newest_snapshot`: our record's; a backup of it is never deleted, whatever its stamp.
    `budget`: bytes the folder may hold, past which whole chains with a verified offsite copy
    (`offsite_sha`: name -> sha256 re-read) leave it, oldest first (dr/catalog/budget.py)."""
    local = LocalStore(backups_dir)
    if not dry_run:
        local.finish_interrupted()
    store = DryRun(local) if dry_run else local
    listed = Catalog(store).backups()
    keep = choose(listed, policy, newest_snapshot=newest_snapshot)
    held = _holding_lost_blocks(backups_dir, listed, keep)
    keep |= set(held)
    result = _remove(store, listed, keep, PruneResult(dry_run=dry_run, held=held))
    if budget is not None:
        pinned = {b.name: "is a backup of the newest snapshot" for b in listed
                  if newest_snapshot and b.snapshot_cid == newest_snapshot}
        pinned.update({name: "holds the last copy of a block the node lost" for name in held})
        _fit_budget(store, listed, budget, offsite_sha or {}, pinned=pinned, result=result)
    needed = {b.inventory for b in listed if b.name in result.kept and b.inventory}
    needed.add(Log(backups_dir).state().get("inventory"))  # what the log's next append merges against
    newest = max((p for p in backups_dir.glob("arke-*.inventory.tsv")), default=None,
                 key=lambda p: _seq_of(p.name))
    for inv in backups_dir.glob("arke-*.inventory.tsv"):
        if inv.name not in needed and inv != newest:
            result.bytes_freed += inv.stat().st_size
            if not dry_run:
                inv.unlink(missing_ok=True)
    log(f"prune {backups_dir}: keep {len(result.kept)}, delete {len(result.deleted)}"
        f"{' (dry run)' if dry_run else ''}, {result.bytes_freed / 1e6:.1f} MB")
    return result


def _fit_budget(store, listed: list[Backup], budget: int, offsite_sha: dict[str, str], *,
                pinned: dict[str, str], result: PruneResult) -> None:
    """`listed`: oldest first, as the catalog gave them before the GFS pass."""
    folder = Path(store.where)
    used = folder_bytes(folder) if not result.dry_run else folder_bytes(folder) - result.bytes_freed
    newest_chain = {b.name for b in chain_in(listed, listed[-1].name)} if listed else set()
    kept = [b for b in listed if b.name in result.kept]
    p = plan(kept, used, budget, offsite_sha, pinned, newest_chain)
    report(p, folder)
    for b in p.leave:
        result.bytes_freed += store.remove(b)
        result.offsite_only.append(b.name)
    result.kept = sorted(set(result.kept) - set(result.offsite_only))
    result.budget = {"budget_bytes": p.budget, "used_bytes": p.used, "after_bytes": p.after, "stuck": p.stuck}


def _remove(store, listed: list[Backup], keep: set[str], result: PruneResult) -> PruneResult:
    """The backups not kept, newest first (a delta before the base it extends), each unlisted then
    deleted by its store, unless the store must keep it (an Object Lock), which is named."""
    kept = set(keep)
    for b in sorted((b for b in listed if b.name not in keep), key=lambda b: b.rank, reverse=True):
        reason = store.keep_reason(b)
        if reason is not None:
            result.held[b.name] = reason
            kept.add(b.name)
            log(f"{store.where}/{b.name} is {reason}")
            continue
        result.deleted.append(b.name)
        result.bytes_freed += store.remove(b)
    result.kept = sorted(kept)
    return result


def _holding_lost_blocks(backups_dir: Path, listed: list[Backup], keep: set[str]) -> dict[str, str]:
    """{name: why} of each backup the policy would delete that holds a block
    no kept backup holds: the last copy of something the archive lost.

    Inventories are sorted and complete (a delta's too), so one merge of the
    kept ones against each candidate's says it; a backup without its
    inventory is judged by the policy alone."""
    kept = [backups_dir / b.inventory for b in listed
            if b.name in keep and b.inventory and (backups_dir / b.inventory).exists()]
    held: dict[str, str] = {}
    if not kept:
        return held
    for b in listed:
        if b.name in keep or not b.inventory or not (backups_dir / b.inventory).exists():
            continue
        union = (c for c, _ in itertools.groupby(heapq.merge(*(inventory_cids(p) for p in kept))))
        lost = list(itertools.islice(_added(union, inventory_cids(backups_dir / b.inventory)), 1))
        if lost:
            held[b.name] = f"holds {lost[0]}, which no newer backup holds: kept"
            log(f"warning: {b.name} {held[b.name]} (the archive lost it; restore it from this backup "
                "or delete the backup by hand)")
    return held


def _seq_of(name: str) -> int:
    try:
        return int(name.split("-")[1].split(".")[0])
    except (IndexError, ValueError):
        return -1


def prune_offsite(s3, target, policy: RetentionPolicy, *, dry_run: bool = False) -> PruneResult:
    """The same policy on the offsite prefix, through the same catalog: sidecar object, then CAR,
    then inventory; a copy still under Object Lock is kept and named (`held`)."""
    from ..offsite.copy import s3_calls

    with s3_calls(s3, f"pruning {target.url(target.prefix)}"):
        remote = S3Store(s3, target)
        store = DryRun(remote) if dry_run else remote
        listed = Catalog(store).backups()
        return _remove(store, listed, choose(listed, policy), PruneResult(dry_run=dry_run))


def verified_offsite(s3, target, gone: set[str]) -> dict[str, str]:
    """name -> sha256 of each offsite copy whose last re-read matched and whose chain is whole."""
    from ..offsite.reread import list_copies

    found = {}
    for row in list_copies(s3, target):
        name = row["url"].rsplit("/", 1)[-1]
        if row["verified"] and name not in gone:
            found[name] = row["sha256"]
    return found


def unpin_old_covers(client: KuboClient, newest: Path) -> int:
    """Our pin covers that the newest backup's do not need: a full cover names every block of
    every older snapshot (the newest reaches them through `prev_snapshot`); a delta's cover
    needs the covers of its chain down to a full one, which are kept."""
    from ..backup.pins import covering_pins

    names = client.pin_names()
    keep = covering_pins(set(names.values()), newest)
    if keep is None:
        return 0  # never unpin before the newest backup is covered
    removed = 0
    for cid, name in names.items():
        if name.startswith("arke-dr ") and name not in keep and name not in ("arke-dr repair", "arke-dr partial"):
            client.pin_rm(cid)
            removed += 1
    return removed


def prune(client: KuboClient | None, settings, policy: RetentionPolicy, *, s3=None,
          dry_run: bool = False) -> dict:
    """The whole retention pass: the local folder, the offsite prefix when configured, then old pins."""
    from ..archive.pointer import read_record
    from ..offsite.copy import OffsiteTarget
    from .freshness import newest_backup

    newest_snapshot = (read_record(settings) or {}).get("cid")
    budget = budget_bytes()
    out: dict = {"dry_run": dry_run}
    offsite_sha: dict[str, str] = {}
    if settings.offsite_url and s3 is not None:  # offsite first: the budget counts only the copies that stay
        target = OffsiteTarget.parse(settings.offsite_url)
        remote = prune_offsite(s3, target, policy, dry_run=dry_run)
        out["offsite"] = {"kept": len(remote.kept), "deleted": remote.deleted, "bytes_freed": remote.bytes_freed,
                          "held": remote.held}
        if budget is not None:
            offsite_sha = verified_offsite(s3, target, set(remote.deleted))
    local = prune_local(settings.backups_dir, policy, dry_run=dry_run, newest_snapshot=newest_snapshot,
                        budget=budget, offsite_sha=offsite_sha)
    out["local"] = {"kept": len(local.kept), "deleted": local.deleted, "bytes_freed": local.bytes_freed,
                    "held": local.held, "offsite_only": local.offsite_only, "budget": local.budget}
    newest = newest_backup(settings.backups_dir)
    if client is not None and newest is not None and not dry_run:
        out["pins_removed"] = unpin_old_covers(client, newest[0])
    return out
