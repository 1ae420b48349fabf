"""The local disk budget (ARKE_LOCAL_BUDGET_GB): when the backups folder outgrows it, the oldest
backups are kept offsite only.

The production host has 30 GB for Kubo's repository, the Arke API and us. GFS retention counts
backups, not bytes, so a growing archive would fill the disk with fulls the policy still wants.
Past the budget, a whole chain (a full and its deltas) leaves the folder, oldest first, but
only when every one of its backups has an offsite copy whose last re-read matched the local
sha256; the newest backup's chain and a backup holding the last copy of a lost block never
leave. What cannot leave is named, and the folder stays over budget: a budget never deletes
the only copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import BadInput
from ..plumbing.progress import log
from .stores import Backup

DEFAULT_GB = 8.0  # of a 30 GB disk: Kubo's ~4 GB today (~20 GB at the 2.5M-object ceiling), staging, spill


def budget_bytes(env=None) -> int | None:
    """Bytes the backups folder may use; None with ARKE_LOCAL_BUDGET_GB=off."""
    env = os.environ if env is None else env
    raw = (env.get("ARKE_LOCAL_BUDGET_GB") or "").strip()
    if raw.lower() == "off":
        return None
    try:
        gb = float(raw) if raw else DEFAULT_GB
    except ValueError:
        raise BadInput(f"ARKE_LOCAL_BUDGET_GB must be gigabytes or `off`, not {raw!r}") from None
    if not 0 < gb < float("inf"):
        raise BadInput(f"ARKE_LOCAL_BUDGET_GB must be above zero (or `off`), not {raw!r}")
    return int(gb * 1e9)


def folder_bytes(backups_dir: Path) -> int:
    """Everything under the folder: CARs, sidecars, inventories, staging, downloads, logs."""
    total = 0
    for root, _dirs, files in os.walk(backups_dir):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total


@dataclass(kw_only=True)
class BudgetPlan:
    budget: int
    used: int
    leave: list[Backup] = field(default_factory=list)  # newest first, a delta before its base
    stuck: dict[str, str] = field(default_factory=dict)  # over budget, and why each stays

    @property
    def after(self) -> int:
        return self.used - sum(b.size for b in self.leave)


def plan(backups: list[Backup], used: int, budget: int, offsite_sha: dict[str, str],
         pinned: dict[str, str], newest_chain: set[str]) -> BudgetPlan:
    """Which chains leave the folder, oldest first, until `used` fits `budget`.

    `offsite_sha`: name -> sha256 of each offsite copy whose re-read matched (compared with the
    local sidecar's); `pinned`: name -> why it must stay; `newest_chain`: never a candidate, and
    not worth a warning."""
    out = BudgetPlan(budget=budget, used=used)
    if used <= budget:
        return out
    by_name = {b.name: b for b in backups}

    def full_of(b: Backup) -> str:
        seen = set()
        while b.base and b.base in by_name and b.name not in seen:
            seen.add(b.name)
            b = by_name[b.base]
        return b.name

    chains: dict[str, list[Backup]] = {}
    for b in sorted(backups, key=lambda b: b.rank):
        chains.setdefault(full_of(b), []).append(b)
    freed = 0
    for members in sorted(chains.values(), key=lambda m: m[-1].rank):  # oldest chain first
        if used - freed <= budget:
            break
        if any(b.name in newest_chain for b in members):
            continue
        why = next(filter(None, (_why_stays(b, offsite_sha, pinned) for b in members)), None)
        if why:
            out.stuck[members[0].name] = why
            continue
        out.leave.extend(members)
        freed += sum(b.size for b in members)
    out.leave.sort(key=lambda b: b.rank, reverse=True)
    return out


def _why_stays(b: Backup, offsite_sha: dict[str, str], pinned: dict[str, str]) -> str | None:
    if b.name in pinned:
        return f"{b.name} {pinned[b.name]}"
    if b.name not in offsite_sha:
        return f"{b.name} has no verified offsite copy"
    if offsite_sha[b.name] != b.sha256:
        return f"{b.name} offsite is not the local backup (sha256 differs)"
    return None


def report(p: BudgetPlan, where: Path) -> None:
    if p.used <= p.budget:
        return
    log(f"{where}: {p.used / 1e9:.2f} GB, over the {p.budget / 1e9:.2f} GB budget (ARKE_LOCAL_BUDGET_GB): "
        f"{len(p.leave)} backup(s) kept offsite only, {p.after / 1e9:.2f} GB after")
    for name, why in p.stuck.items():
        log(f"warning: over budget, but the chain of {name} stays: {why}")
