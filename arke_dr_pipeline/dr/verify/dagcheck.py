"""Checking a stream of blocks as a complete, well-formed Arke backup.

One pass, any source (a CAR file, a node's blocks as they are exported):
each block is counted by role and codec, its links are tracked until seen
(or, for a CAR read offline, kept in sorted runs and resolved at the end:
refs.py), and what the archive's semantics need is kept compactly (per
manifest and per event: PI, version, prev; offline, appended to a table and
checked by joins at the end: facts.py). Memory grows with the number of
CIDs, never with the bytes, and only up to the limits of `spill.py`: past
them, the CIDs and facts go to files on disk.
"""

from __future__ import annotations

import itertools
import marshal
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from ...arke.models import (
    CHUNK_SCHEMA,
    EVENT_SCHEMA,
    MANIFEST_SCHEMAS,
    PROOF_LIST,
    SNAPSHOT_SCHEMAS,
    ArkeDecodeError,
    Event,
    Manifest,
    SnapshotEntry,
    SnapshotHeader,
    decode_chunk,
)
from ...errors import ArkeDrError
from ...ipld.cid import CODEC_NAMES, DAG_CBOR, DAG_JSON, DAG_PB, IDENTITY, RAW, CIDError, cid_str, parse_cid, split_cid
from ...ipld.links import BlockDecodeError, dag_cbor_links, dag_json_links, dag_pb_links, inline_links
from ..plumbing.spill import CidMap, CidSet, SpillFile
from .facts import Facts, Violations
from .refs import SortedRefs
from .report import BackupReport

ROLES = ("snapshots", "events", "manifests", "components")
# Kubo imports a block above 1 MiB only with `allow-big-block` (measured on
# 0.39: 1,048,576 bytes pass, one more is refused); restore passes it then.
KUBO_BLOCK_LIMIT = 1 << 20


class BackupInvalid(ArkeDrError, ValueError):
    """The first thing wrong with a backup, naming the CID."""

    def __init__(self, cid: bytes | str | None, problem: str):
        self.cid = cid_str(cid) if isinstance(cid, bytes) else cid
        self.problem = problem
        super().__init__(f"{self.cid}: {problem}" if self.cid else problem)


@dataclass
class DagCheck:
    roots: list[bytes]
    blocks: Counter = field(default_factory=Counter)
    bytes: Counter = field(default_factory=Counter)
    codecs: Counter = field(default_factory=Counter)
    snapshots: dict[bytes, SnapshotHeader] = field(default_factory=dict)
    other_schemas: dict[bytes, str] = field(default_factory=dict)
    big_blocks: int = 0
    # links resolved by sorting at `finish` (refs.py), not looked up as blocks
    # come: for a check that never asks what it has seen (a CAR read offline)
    sorted_refs: bool = False

    def __post_init__(self):
        self._new_links_and_facts()
        self.chunks = _chunk_map(self._disk)
        # an older snapshot's inline entries (the API's one-block form, ~0.5 KB an entity
        # as objects): on disk at once, read back only when that snapshot is asked for
        self.inline = CidMap(self._disk, "inline", encode=_encode_entries, decode=_decode_entries)
        self.lost: dict[bytes, bytes | None] = {}  # a block the node lacks -> the block that first linked it
        self.declared: set[bytes] = set()  # blocks a sidecar says were lost when its backup was taken

    def lose(self, cid: bytes) -> None:
        """A block the node does not have: the backup goes on without it and names it (dr/backup/loss.py)."""
        self.lost[cid] = self.pending.pop(cid, None) or None

    def _new_links_and_facts(self) -> None:
        self._disk = disk = SpillFile()
        if self.sorted_refs:
            self.refs: SortedRefs | None = SortedRefs(self.roots)
        else:
            self.refs = None
            self.seen = CidSet(disk)
            self.pending = CidMap(disk, "links")  # CID -> the block linking to it
            self.unreferenced = CidSet(disk)
            for r in self.roots:
                self.pending[r] = b""
        self.manifests, self.events = self._facts(disk)  # CID -> (PI, ver, prev)

    def _facts(self, disk: SpillFile) -> tuple[CidMap | Facts, CidMap | Facts]:
        """Asked only at `finish` when links are sorted (facts.py); looked up as blocks come otherwise."""
        if self.sorted_refs:
            return Facts(disk, "manifests"), Facts(disk, "events")
        return CidMap(disk), CidMap(disk)

    @property
    def block_count(self) -> int:
        return len(self.refs if self.refs is not None else self.seen)

    def block_cids(self) -> Iterator[bytes]:
        return iter(self.refs if self.refs is not None else self.seen)

    def add(self, cid: bytes, data: bytes) -> str:
        """Account for one block already hashed against its CID; returns its role."""
        refs = self.refs
        if refs is not None:
            refs.block(cid)
        else:
            if not self.seen.add(cid):
                raise BackupInvalid(cid, "duplicate block")
            if self.pending.pop(cid, None) is None:
                self.unreferenced.add(cid)
        if len(data) > KUBO_BLOCK_LIMIT:
            self.big_blocks += 1
        codec = split_cid(cid)[1]
        try:
            role, links = self._classify(cid, codec, data)
        except (BlockDecodeError, ArkeDecodeError) as exc:
            raise BackupInvalid(cid, str(exc)) from None
        self.blocks[role] += 1
        self.bytes[role] += len(data)
        self.codecs[CODEC_NAMES[codec]] += 1
        if refs is not None:
            for link in links:
                refs.link(link, cid)
                if split_cid(link)[2] == IDENTITY:
                    self._inline(cid, link)
            return role
        for link in links:
            if link in self.seen:
                self.unreferenced.discard(link)
            elif split_cid(link)[2] == IDENTITY:
                self._inline(cid, link)
            elif link not in self.lost:
                self.pending.setdefault(link, cid)
        return role

    def _inline(self, cid: bytes, link: bytes) -> None:
        """An identity CID's inline block, decoded and its links followed (ipld/links.py: inline_links)."""
        try:
            inner = inline_links(link)
        except (BlockDecodeError, CIDError) as exc:
            raise BackupInvalid(cid, f"links to inline block {cid_str(link)[:60]}: {exc}") from None
        for target in inner:
            if self.refs is not None:
                self.refs.link(target, cid)
            elif target in self.seen:
                self.unreferenced.discard(target)
            elif target not in self.lost:
                self.pending.setdefault(target, cid)

    def _classify(self, cid: bytes, codec: int, data: bytes) -> tuple[str, list[bytes]]:
        """Arke objects are told by their schema, in either codec: the seed
        writes events as dag-json, the Arke API as dag-cbor."""
        if codec == RAW:
            return "components", []
        if codec == DAG_PB:
            return "components", dag_pb_links(data)
        if codec == DAG_CBOR:
            value, links = dag_cbor_links(data)
        elif codec == DAG_JSON:
            value, links = dag_json_links(data, skip=PROOF_LIST)
        else:
            raise BackupInvalid(cid, f"unknown codec 0x{codec:x}")
        schema = value.get("schema") if isinstance(value, dict) else None
        if schema is None:
            return "components", links
        if schema in MANIFEST_SCHEMAS:
            m = Manifest.decode(value)
            self.manifests[cid] = (sys.intern(m.pi), m.ver, m.prev)
            return "manifests", links
        if schema == EVENT_SCHEMA:
            e = Event.decode(value)
            self.events[cid] = (sys.intern(e.pi), e.ver, e.prev)
            return "events", links
        if schema in SNAPSHOT_SCHEMAS:
            header = SnapshotHeader.decode(value)
            if header.entries is not None and cid not in self.roots:
                self.inline[cid] = header.entries
                header = replace(header, entries=None)
            self.snapshots[cid] = header
            return "snapshots", links
        if schema == CHUNK_SCHEMA:
            self.chunks[cid] = decode_chunk(value)
            return "snapshots", links
        if isinstance(schema, str) and len(self.other_schemas) < 1000:
            self.other_schemas[cid] = schema[:80]
        return "components", links

    def _not_a(self, cid: bytes, what: str) -> str:
        """"is not a manifest", saying what it is when we know."""
        if cid in self.lost:
            return f"is not {what}: the block is missing from the node"
        if cid in self.manifests:
            return f"is not {what}: it is a manifest"
        if cid in self.events:
            return f"is not {what}: it is an event"
        if cid in self.snapshots or cid in self.chunks:
            return f"is not {what}: it is a snapshot block"
        schema = self.other_schemas.get(cid)
        return f"is not {what} (schema {schema!r})" if schema else f"is not {what}"

    def keep_only_blocks(self) -> None:
        """Drop the facts (after `finish`) when only the CIDs seen are still
        needed: the export lists them as text, and at 10x the facts held in
        memory beside that list took it past 300 MB."""
        disk = self._disk
        self.manifests, self.events = self._facts(disk)
        self.chunks = _chunk_map(disk)
        self.inline = CidMap(disk, "inline", encode=_encode_entries, decode=_decode_entries)

    def keep_only_snapshots(self) -> None:
        """Drop all but the snapshot blocks (after `finish`): a restore then
        holds 300,000 entries at 10x, not those beside every CID checked."""
        self._new_links_and_facts()

    def iter_entries(self, snap: bytes) -> Iterator[SnapshotEntry]:
        header = self.snapshots[snap]
        if header.entries is not None:
            yield from header.entries
            return
        if header.chunks is None:
            yield from self.inline[snap]
            return
        for c in header.chunks or []:
            entries = self.chunks.get(c)
            if entries is None:
                raise BackupInvalid(c, "snapshot chunk missing or not a chunk")
            yield from entries

    def chain_length(self, head: bytes, sql: Violations | None = None) -> int:
        if sql is not None:
            n, stop = sql.chain(head)
            if stop is not None:
                raise BackupInvalid(stop, "event chain broken: block missing or not an event")
            return n
        n, cur = 0, head
        while cur is not None:
            ev = self.events.get(cur)
            if ev is None:
                raise BackupInvalid(cur, "event chain broken: block missing or not an event")
            n += 1
            cur = ev[2]
        return n

    def snapshot_by_seq(self, root: bytes, seq: int) -> bytes:
        cur: bytes | None = root
        while cur is not None:
            header = self.snapshots.get(cur)
            if header is None:
                raise BackupInvalid(cur, "not a snapshot in this CAR")
            if header.seq == seq:
                return cur
            cur = header.prev_snapshot
        raise BackupInvalid(root, f"no snapshot with seq {seq} through prev_snapshot")

    def _resolve_links(self) -> None:
        """Every link's target a block, every block but the roots linked: a DAG
        has no cycles, so every block is then reachable from the roots."""
        if self.refs is not None:
            found = self.refs.resolve(self._excused)
            if found.duplicate is not None:
                raise BackupInvalid(found.duplicate, "duplicate block")
            missing, count = found.first_missing, found.missing
            unreferenced, unreferenced_count = found.first_unreferenced, found.unreferenced
        else:
            for cid in [c for c in self.declared if c in self.pending]:
                self.lose(cid)
            missing, count = next(iter(self.pending.items()), None), len(self.pending)
            unreferenced, unreferenced_count = next(iter(self.unreferenced), None), len(self.unreferenced)
        if missing is not None:
            who = f"linked from {cid_str(missing[1])}" if missing[1] else "a root"
            raise BackupInvalid(missing[0], f"block missing ({who}); {count} missing in all")
        if unreferenced is not None:
            raise BackupInvalid(unreferenced, (
                f"block that nothing in the CAR links to ({unreferenced_count} in all): not part of this backup"))

    def _excused(self, target: bytes, parent: bytes) -> bool:
        """A missing block that may be: inline in its CID, or lost by the node before the backup."""
        if split_cid(target)[2] == IDENTITY:
            return True
        if target in self.lost or target in self.declared:
            self.lost.setdefault(target, parent or None)
            return True
        return False

    def finish(self, snapshot: bytes) -> BackupReport:
        """Semantic checks of one snapshot; the report for it."""
        self._resolve_links()
        if snapshot not in self.snapshots:
            if snapshot in (self.refs if self.refs is not None else self.seen):
                raise BackupInvalid(snapshot, f"root {self._not_a(snapshot, 'an Arke snapshot')}")
            raise BackupInvalid(snapshot, "snapshot not in the CAR")
        header = self.snapshots[snapshot]
        sql = None
        if self.refs is not None and (self.manifests.on_disk or self.events.on_disk):
            sql = Violations(self._disk, self.manifests, self.events)
        pis: set[str] = set()

        def entries() -> Iterator[SnapshotEntry]:
            for e in self.iter_entries(snapshot):
                if e.pi in pis:
                    raise BackupInvalid(snapshot, f"duplicate PI {e.pi}")
                pis.add(e.pi)
                yield e

        if sql is None:
            for e in entries():
                self._check_entry(e)
        else:
            bad = sql.entries((e.pi, e.ver, e.tip_cid, e.chain_cid) for e in entries())
            if bad is not None:
                self._check_entry(next(itertools.islice(self.iter_entries(snapshot), bad, None)))
                raise BackupInvalid(snapshot, f"entry {bad} does not match its manifest or event")
        if header.total_count != len(pis):
            raise BackupInvalid(snapshot, f"total_count {header.total_count} but {len(pis)} entries")
        if sql is None:
            self._check_prevs()
        else:
            self._check_prevs_sql(sql)
        event_count = self.chain_length(parse_cid(header.event_cid), sql) if header.event_cid else 0
        prev = header.prev_snapshot
        while prev is not None:
            if prev not in self.snapshots:
                raise BackupInvalid(prev, "prev_snapshot is not a snapshot")
            prev = self.snapshots[prev].prev_snapshot
        return BackupReport(
            snapshot_cid=cid_str(snapshot), seq=header.seq, schema=header.schema,
            event_cid=header.event_cid, ts=header.ts, entity_count=len(pis),
            event_count=event_count, manifest_count=len(self.manifests),
            block_count=self.block_count, big_blocks=self.big_blocks,
            blocks_by_role={r: self.blocks[r] for r in ROLES},
            bytes_by_role={r: self.bytes[r] for r in ROLES},
            blocks_by_codec=dict(sorted(self.codecs.items())),
            snapshots={str(h.seq): cid_str(c) for c, h in self.snapshots.items()},
            lost=self.lost_report(),
        )

    def _check_prevs(self) -> None:
        for cid, (pi, ver, prev) in self.manifests.items():
            if prev is None:
                if ver != 1:
                    raise BackupInvalid(cid, f"manifest {pi} ver {ver} has no prev")
                continue
            older = self.manifests.get(prev)
            if older is None:
                raise BackupInvalid(prev, f"prev of manifest {pi} ver {ver} {self._not_a(prev, 'a manifest')}")
            if older[0] != pi or older[1] != ver - 1:
                raise BackupInvalid(cid, f"manifest {pi} ver {ver}: prev is {older[0]} ver {older[1]}")
        for cid, (_pi, _ver, prev) in self.events.items():
            if prev is not None and prev not in self.events:
                raise BackupInvalid(prev, f"prev of event {cid_str(cid)} is not an event")

    def _check_prevs_sql(self, sql: Violations) -> None:
        """The rules of `_check_prevs`, as joins; the refusals in the same words."""
        if row := sql.manifest_without_prev():
            raise BackupInvalid(row[0], f"manifest {row[1]} ver {row[2]} has no prev")
        if row := sql.manifest_prev():
            cid, pi, ver, prev, older_pi, older_ver = row
            if older_pi is None:
                raise BackupInvalid(prev, f"prev of manifest {pi} ver {ver} {self._not_a(prev, 'a manifest')}")
            raise BackupInvalid(cid, f"manifest {pi} ver {ver}: prev is {older_pi} ver {older_ver}")
        if row := sql.event_prev():
            raise BackupInvalid(row[1], f"prev of event {cid_str(row[0])} is not an event")

    def lost_report(self) -> list[dict]:
        """Each lost block with the block that linked it and, when that is a manifest, its entity and version."""
        out = []
        for cid, parent in sorted(self.lost.items()):
            owner = self.manifests.get(parent) if parent else None
            out.append({"cid": cid_str(cid), "linked_from": cid_str(parent) if parent else None,
                        "pi": owner[0] if owner else None, "ver": owner[1] if owner else None})
        return out

    def _check_entry(self, e: SnapshotEntry) -> None:
        m = self.manifests.get(e.tip_cid)
        if m is None:
            raise BackupInvalid(e.tip_cid, f"tip of {e.pi} {self._not_a(e.tip_cid, 'a manifest')}")
        if m[0] != e.pi or m[1] != e.ver:
            raise BackupInvalid(e.tip_cid, f"tip of {e.pi} ver {e.ver} is {m[0]} ver {m[1]}")
        ev = self.events.get(e.chain_cid)
        if ev is None:
            raise BackupInvalid(e.chain_cid, f"chain_cid of {e.pi} {self._not_a(e.chain_cid, 'an event')}")
        if ev[0] != e.pi or ev[1] != e.ver:
            raise BackupInvalid(e.chain_cid, f"chain_cid of {e.pi} ver {e.ver} is {ev[0]} ver {ev[1]}")


def _chunk_map(disk: SpillFile) -> CidMap:
    return CidMap(disk, "chunks", encode=_encode_entries, decode=_decode_entries)


def _encode_entries(entries: list[SnapshotEntry]) -> bytes:
    return marshal.dumps([(e.pi, e.ver, e.tip_cid, e.ts, e.chain_cid, None, e.tip_file) for e in entries])


def _decode_entries(data: bytes) -> list[SnapshotEntry]:
    return [SnapshotEntry(*t) for t in marshal.loads(data)]
