"""A delta checked as a delta, when it is written: its own blocks, and its
edge with the backup it extends, never the whole chain again.

Every block of the delta is hashed and checked as Arke data; every link
that leaves the delta must name a block of the base's inventory (the record
of exactly what the base's chain holds, written when that chain was
verified), and what it names must be what the link needs: a tip a manifest,
a `prev` an event. The new snapshot must descend from the base's snapshot
and its event chain from the base's head, or the chain would restore blocks
nothing links to. The inventory must be the base's plus the delta's blocks.
One pass over the delta, one byte comparison of the two inventories (the
new one must be the base's bytes with the delta's rows put in; anything else
goes to a merge of their rows, which says what differs) and a search of the
base's inventory per link that leaves the delta: the Python work follows the
change, not the archive. The whole chain, every block of every link, is
checked where a chain is read: `verify-car`, restore, the drill and the
`car_verified_complete` check.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ...ipld.car import CarError, CarReader
from ...ipld.cid import cid_str, parse_cid
from ..catalog.sidecar import read_sidecar
from ..verify.dagcheck import ROLES, BackupInvalid, DagCheck
from ..verify.report import BackupReport
from .inventory import inventory_rows
from .known import SortedInventory, spliced


class NotAnExtension(BackupInvalid):
    """The snapshot does not grow out of the base's: the next backup must be a full."""


def verify_delta(delta: Path, base: Path, inventory: Path, *, snapshot_cid: str,
                 lost: set[bytes] = frozenset()) -> tuple[BackupReport, list[str]]:
    """(the report of the chain `base` + `delta`, with the chain's totals and the delta's file; the delta's
    CIDs, sorted), or the first thing wrong. `lost`: blocks the node had lost when the inventory was taken."""
    base_sidecar = read_sidecar(base) or {}
    base_rows = base.parent / str(base_sidecar.get("inventory"))
    check, sha256 = _read(delta)
    for cid in [c for c in lost if c in check.pending]:
        check.lose(cid)
    root = parse_cid(snapshot_cid)
    if check.roots != [root]:
        raise BackupInvalid(None, f"{delta.name} is not rooted at the snapshot {snapshot_cid}")
    if check.unreferenced:
        raise BackupInvalid(next(iter(check.unreferenced)), f"block of {delta.name} that nothing in it links to")
    again = not check.seen and cid_str(root) == base_sidecar.get("snapshot_cid")  # the base's own snapshot
    if root not in check.snapshots and not again:
        raise BackupInvalid(root, f"root of {delta.name} {check._not_a(root, 'a new Arke snapshot')}")
    events = check_extends(check, root, base_sidecar)
    outside = {cid_str(c): p for c, p in check.pending.items()}
    ours = sorted(cid_str(c) for c in check.seen)
    roles = _spliced_roles(base_rows, inventory, ours, outside)
    if roles is None:  # not the base's bytes plus the delta's rows: the merge says exactly what differs
        roles, added = _merge(base_rows, inventory, outside)
        if added != set(ours):
            raise BackupInvalid(None, f"{inventory.name} is not {base_rows.name} plus the blocks of {delta.name}")
    edge = _Edge(check, roles)
    _check_events(edge)
    entities = int(base_sidecar.get("entity_count") or 0) if again else _check_entries(edge, root)
    _check_manifests(edge)
    report = _report(check, root, base_sidecar, events=events, entities=entities)
    return report.with_car(car=str(delta), size=delta.stat().st_size, version=1, sha256=sha256,
                           roots=[snapshot_cid]), ours


def _read(delta: Path) -> tuple[DagCheck, str]:
    """Every block hashed against its CID and checked as Arke data; the file's sha256 in the same pass."""
    try:
        with open(delta, "rb", buffering=1 << 20) as fh:
            reader = CarReader(fh, hash_bytes=True)
            check = DagCheck(list(reader.roots))
            for block in reader:
                check.add(block.cid, block.data)
    except CarError as exc:
        raise BackupInvalid(None, f"{delta.name}: {exc}") from None
    return check, reader.sha256


def _spliced_roles(base_rows: Path, inventory: Path, ours: list[str],
                   outside: dict[str, bytes]) -> dict[str, str] | None:
    """The base role of each outside link, when the inventory is the base's bytes with the delta's
    rows put in (as dr/backup/increment.py writes it), else None. One comparison of the two
    files and a search per link, where a merge of their rows costs the whole archive in Python."""
    try:
        base, new = SortedInventory(base_rows), SortedInventory(inventory)
    except (OSError, ValueError):
        return None
    try:
        if not spliced(base, new, ours):
            return None
        roles = {}
        for text, parent in outside.items():
            role = base.role(text)
            if role is None:
                raise _unresolved(text, parent, base_rows)
            roles[text] = role
        return roles
    finally:
        base.close()
        new.close()


def _merge(base_rows: Path, inventory: Path, outside: dict[str, bytes]) -> tuple[dict[str, str], set[str]]:
    """(the base role of each outside link, the rows the inventory adds to the base's), one pass of each file."""
    roles: dict[str, str] = {}
    added: set[str] = set()
    try:
        with open(base_rows) as old, open(inventory) as new:
            old_rows = inventory_rows(old, str(base_rows))
            a = _row(old_rows)
            for line in inventory_rows(new, str(inventory)):
                b = line.split("\t", 1)[0]
                if a is not None and a[0] < b:
                    raise NotAnExtension(a[0], f"in {base_rows.name} but not in {inventory.name}")
                if a is not None and a[0] == b:
                    if b in outside:
                        roles[b] = a[1]
                    a = _row(old_rows)
                else:
                    added.add(b)
            if a is not None:
                raise NotAnExtension(a[0], f"in {base_rows.name} but not in {inventory.name}")
    except OSError as exc:
        raise BackupInvalid(None, f"inventory cannot be read: {exc.strerror or exc}") from None
    for text, parent in outside.items():
        if text not in roles:
            raise _unresolved(text, parent, base_rows)
    return roles, added


def _unresolved(text: str, parent: bytes | None, base_rows: Path) -> BackupInvalid:
    return BackupInvalid(text, f"linked from {cid_str(parent) if parent else 'the root'} but neither "
                               f"in the delta nor in {base_rows.name}")


def _row(rows) -> tuple[str, str] | None:
    for line in rows:
        cid, role, _ = line.split("\t", 2)
        return cid, role
    return None


class _Edge:
    """What a CID is: a block of the delta (and its Arke facts) or a base block of a known role."""

    def __init__(self, check: DagCheck, roles: dict[str, str]):
        self.check = check
        self.roles = roles

    def base_role(self, cid: bytes) -> str | None:
        return self.roles.get(cid_str(cid))

    def need(self, cid: bytes, role: str, what: str) -> None:
        """`cid` must be a `role` block, in the delta (the caller checks its facts) or in the base."""
        check = self.check
        if cid in check.seen:
            ours = {"manifests": check.manifests, "events": check.events}.get(role)
            if not (cid in ours if ours is not None else cid in check.snapshots or cid in check.chunks):
                raise BackupInvalid(cid, f"{what} {check._not_a(cid, 'a block of ' + role)}")
            return
        found = self.base_role(cid)
        if found != role:
            raise BackupInvalid(cid, f"{what} is in the base as {found or 'nothing'}, not among its {role}")


def check_extends(check: DagCheck, root: bytes, base_sidecar: dict) -> int:
    """The new blocks grow out of the base's: new snapshots back through `prev_snapshot` to the base's
    snapshot and new events back to the base's head, exactly. The chain's event count."""
    want = base_sidecar.get("snapshot_cid")
    if cid_str(root) == want:
        return int(base_sidecar.get("event_count") or 0)
    cur: bytes | None = root
    while cur is not None and cur in check.snapshots:
        cur = check.snapshots[cur].prev_snapshot
    if cur is None or cid_str(cur) != want:
        raise NotAnExtension(root, f"does not descend from the base's snapshot {want}")
    head = check.snapshots[root].event_cid
    n, at = 0, parse_cid(head) if head else None
    while at is not None and at in check.events:
        n += 1
        at = check.events[at][2]
    base_head = base_sidecar.get("event_cid")
    if (cid_str(at) if at is not None else None) != base_head:
        raise NotAnExtension(root, f"its event chain does not continue the base's head {base_head}")
    return n + int(base_sidecar.get("event_count") or 0)


def _check_events(edge: _Edge) -> None:
    for cid, (_pi, _ver, prev) in edge.check.events.items():
        if prev is not None:
            edge.need(prev, "events", f"prev of event {cid_str(cid)}")


def _check_entries(edge: _Edge, root: bytes) -> int:
    """Entries in new chunks are checked; a chunk the base holds was checked with the base."""
    check = edge.check
    header = check.snapshots[root]
    chunks = header.chunks or []
    new = [c for c in chunks if c in check.chunks]
    for c in chunks:
        edge.need(c, "snapshots", "snapshot chunk")
    entries = header.entries if header.entries is not None else [e for c in new for e in check.chunks[c]]
    pis: set[str] = set()
    for e in entries:
        if e.pi in pis:
            raise BackupInvalid(root, f"duplicate PI {e.pi}")
        pis.add(e.pi)
        edge.need(e.tip_cid, "manifests", f"tip of {e.pi}")
        edge.need(e.chain_cid, "events", f"chain_cid of {e.pi}")
        for cid, facts, what in ((e.tip_cid, check.manifests, "tip"), (e.chain_cid, check.events, "chain_cid")):
            if cid in facts and facts[cid][:2] != (e.pi, e.ver):
                raise BackupInvalid(cid, f"{what} of {e.pi} ver {e.ver} is {facts[cid][0]} ver {facts[cid][1]}")
    whole = header.entries is not None or len(new) == len(chunks)
    if whole and header.total_count != len(entries):
        raise BackupInvalid(root, f"total_count {header.total_count} but {len(entries)} entries")
    return header.total_count


def _check_manifests(edge: _Edge) -> None:
    manifests = edge.check.manifests
    for cid, (pi, ver, prev) in manifests.items():
        if prev is None:
            if ver != 1:
                raise BackupInvalid(cid, f"manifest {pi} ver {ver} has no prev")
        elif prev in manifests:
            if manifests[prev][:2] != (pi, ver - 1):
                raise BackupInvalid(cid, f"manifest {pi} ver {ver}: prev is {manifests[prev][0]} "
                                         f"ver {manifests[prev][1]}")
        else:
            edge.need(prev, "manifests", f"prev of manifest {pi} ver {ver}")


def _report(check: DagCheck, root: bytes, base: dict, *, events: int, entities: int) -> BackupReport:
    """The chain's totals: the base's sidecar plus the delta's blocks."""
    header = check.snapshots.get(root)

    def plus(key: str, mine: Counter) -> dict[str, int]:
        theirs = base.get(key) or {}
        return {k: int(theirs.get(k) or 0) + mine[k] for k in sorted(set(theirs) | set(mine))}

    by_role = plus("blocks_by_role", check.blocks)
    return BackupReport(
        snapshot_cid=cid_str(root), seq=header.seq if header else int(base.get("seq") or 0),
        schema=header.schema if header else "", event_cid=header.event_cid if header else base.get("event_cid"),
        ts=header.ts if header else None, entity_count=entities, event_count=events,
        manifest_count=int((base.get("blocks_by_role") or {}).get("manifests") or 0) + len(check.manifests),
        block_count=int(base.get("block_count") or 0) + len(check.seen), big_blocks=check.big_blocks,
        blocks_by_role={r: by_role.get(r, 0) for r in ROLES},
        bytes_by_role={r: plus("bytes_by_role", check.bytes).get(r, 0) for r in ROLES},
        blocks_by_codec=plus("blocks_by_codec", check.codecs),
        snapshots={str(h.seq): cid_str(c) for c, h in check.snapshots.items()},
    )
