"""A logical dump: a canonical, sorted description of the archive on a node,
so that "the restored archive equals the original" is one comparison of two
files, not a comparison of a head and two counts.

One line per fact, tab-separated `kind, key, JSON value`, sorted bytewise
(`LC_ALL=C sort`, which spills to disk, so the dump's memory does not grow
with the archive's), then a last `digest` line: the sha256 of every line
before it.

- `pointer`: every field of the index pointer but the ones a restore
  legitimately rewrites (`POINTER_REWRITTEN`);
- `snapshot`: the snapshot chain through `prev_snapshot`;
- `event`: the whole event chain from the head;
- `tip`: every tip file's path and exact text;
- `version`: every version of every entity through `prev`, with its
  components and the size of each component's root block (read; a block
  the node lost is `null`, so a restore that loses one more differs).

`at_snapshot` describes the archive a restore of that snapshot must give,
derived from the event chain as of the snapshot, not from the snapshot's
entries: a snapshot that lost an entity then shows as a difference.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ...arke.models import POINTER_SCHEMA, Manifest, tip_relpath
from ...arke.snapshot_codec import decode_snapshot, snapshot_entries
from ...ipld.cid import cid_str, parse_cid, split_cid
from ...ipld.links import dag_cbor_links
from ...kubo.client import KuboClient
from ...kubo.errors import KuboError, KuboUnreachable
from ..plumbing.config import Settings
from ..plumbing.files import atomic_file
from .event_chain import walk_events
from .pointer import ArchiveError, require_pointer
from .tips import iter_tips

POINTER_REWRITTEN = ("last_updated", "last_snapshot_trigger")
BATCH = 2000


_CONTROL = {c: f"\\u{c:04x}" for c in [*range(0x20), 0x7F, 0x85, 0x2028, 0x2029]}


def _line(kind: str, key: str, value) -> str:
    """One fact, one line: a key's fields are tab-separated, and a control character in any of them
    (a pointer key the API never wrote, say) is escaped, so no data can add or split a line."""
    key = "\t".join(part.translate(_CONTROL) for part in key.split("\t"))
    return f"{kind}\t{key}\t{json.dumps(value, sort_keys=True, separators=(',', ':'), ensure_ascii=True)}"


@dataclass(frozen=True, kw_only=True)
class DumpResult:
    path: str
    lines: int
    sha256: str


def dump(client: KuboClient, settings: Settings, out: Path, *, at_snapshot: str | None = None) -> DumpResult:
    """Write the dump to `out` (whole or not at all); its digest and line count."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".dump-", dir=out.parent) as tmp:
        raw, ordered = Path(tmp) / "raw", Path(tmp) / "sorted"
        with open(raw, "w", encoding="utf-8") as fh:
            facts = _at_snapshot(client, at_snapshot) if at_snapshot else _live(client, settings)
            for line in facts:
                fh.write(line + "\n")
        subprocess.run(["sort", "-S", "64M", "-T", tmp, "-o", str(ordered), str(raw)], check=True,
                       env={**os.environ, "LC_ALL": "C"})
        sha = hashlib.sha256()
        count = 0
        with open(ordered, "rb") as src, atomic_file(out) as dst:
            for line in src:
                sha.update(line)
                dst.write(line)
                count += 1
            dst.write(_line("~digest", "sha256", sha.hexdigest()).encode() + b"\n")
    return DumpResult(path=str(out), lines=count, sha256=sha.hexdigest())


def _live(client: KuboClient, settings: Settings) -> Iterator[str]:
    pointer = require_pointer(client, settings.index_pointer_path)
    for k, v in pointer.raw.items():
        if k not in POINTER_REWRITTEN:
            yield _line("pointer", k, v)
    if pointer.latest_snapshot_cid:
        yield from _snapshots(client, pointer.latest_snapshot_cid)
    if pointer.event_head:
        for cid, event in walk_events(client, pointer.event_head):
            yield _event(cid, event)
    roots: list[tuple[str, bytes]] = []
    yield from _tips_and_roots(iter_tips(client, settings.index_root, exact=True) or (), roots)
    yield from _versions(client, roots)


def _at_snapshot(client: KuboClient, snapshot_cid: str) -> Iterator[str]:
    raw = parse_cid(snapshot_cid)
    header = decode_snapshot(client.block_get(raw), f"snapshot {snapshot_cid}", split_cid(raw)[1])
    yield from _snapshots(client, snapshot_cid)
    newest: dict[str, str] = {}
    count = 0
    if header.event_cid:
        for cid, event in walk_events(client, header.event_cid):
            count += 1
            yield _event(cid, event)
            newest.setdefault(event.pi, cid_str(event.tip_cid))
    for e in snapshot_entries(header, client.block_get):  # a tip file's exact text, kept by the snapshot
        if e.tip_file is not None and newest.get(e.pi) == cid_str(e.tip_cid):
            newest[e.pi] = e.tip_file
    roots: list[tuple[str, bytes]] = []
    yield from _tips_and_roots(newest.items(), roots)
    fields = {
        "schema": POINTER_SCHEMA, "event_head": header.event_cid, "event_count": count,
        "latest_snapshot_cid": snapshot_cid, "snapshot_event_cid": header.event_cid, "snapshot_seq": header.seq,
        "snapshot_count": len(newest), "snapshot_ts": header.ts, "total_count": len(newest),
        "snapshot_event_count": count,
    }
    for k, v in fields.items():
        yield _line("pointer", k, v)
    newest.clear()
    yield from _versions(client, roots)


def _snapshots(client: KuboClient, cid: str) -> Iterator[str]:
    cur: bytes | None = parse_cid(cid)
    while cur is not None:
        header = decode_snapshot(client.block_get(cur), f"snapshot {cid_str(cur)}", split_cid(cur)[1])
        yield _line("snapshot", f"{header.seq:012d}", {
            "cid": cid_str(cur), "schema": header.schema, "event_cid": header.event_cid, "ts": header.ts,
            "total_count": header.total_count,
            "prev_snapshot": cid_str(header.prev_snapshot) if header.prev_snapshot else None})
        cur = header.prev_snapshot


def _event(cid: bytes, event) -> str:
    return _line("event", cid_str(cid), {"type": event.type, "pi": event.pi, "ver": event.ver,
                                         "tip": cid_str(event.tip_cid), "ts": event.ts,
                                         "prev": cid_str(event.prev) if event.prev else None})


def _tips_and_roots(tips, roots: list[tuple[str, bytes]]) -> Iterator[str]:
    """A line per tip file, each tip's CID kept in `roots` for the version walk.
    The dump is sorted afterwards, so the tips come in any order, streamed."""
    for pi, text in tips:
        yield _line("tip", tip_relpath(pi), text)
        try:
            roots.append((pi, parse_cid(text.strip())))
        except ValueError:
            yield _line("version", f"{pi}\t-", {"error": f"tip file reads {text!r}, not a CID"})


def _root_sizes(client: KuboClient, cids: list[bytes]) -> dict[bytes, int | None]:
    """Each component root's size; None for one the node lost (dr/backup/loss.py), so the live node and a
    restore of a backup taken without it agree, and a restore that loses one more differs."""
    try:
        return {c: len(data) for c, data in client.get_blocks(cids)}
    except (KuboError, KuboUnreachable):
        pass
    sizes: dict[bytes, int | None] = {}
    for cid in cids:
        try:
            sizes[cid] = len(client.request("block/get", cid, {"offline": True}).content)
        except KuboError as exc:
            if "not found" not in exc.kubo_message and "could not find" not in exc.kubo_message:
                raise
            sizes[cid] = None
    return sizes


def _versions(client: KuboClient, frontier: list[tuple[str, bytes]]) -> Iterator[str]:
    """Every version of every entity, a level of `prev` at a time, pipelined."""
    while frontier:
        following: list[tuple[str, bytes]] = []
        for start in range(0, len(frontier), BATCH):
            batch = frontier[start:start + BATCH]
            blocks = dict(client.get_blocks([cid for _, cid in batch]))
            manifests = {cid: Manifest.decode(dag_cbor_links(blocks[cid])[0], f"manifest {cid_str(cid)}")
                         for _, cid in batch}
            components = {c for m in manifests.values() for c in m.components.values()}
            sizes = _root_sizes(client, sorted(components))
            for pi, cid in batch:
                m = manifests[cid]
                if m.pi != pi:
                    raise ArchiveError(f"history of {pi} reaches manifest {cid_str(cid)} of {m.pi}")
                yield _line("version", f"{pi}\t{m.ver:09d}", {
                    "cid": cid_str(cid), "schema": m.schema, "ts": m.ts, "note": m.note,
                    "children_pi": m.children_pi, "prev": cid_str(m.prev) if m.prev else None,
                    "components": {k: {"cid": cid_str(c), "root_bytes": sizes[c]} for k, c in m.components.items()}})
                if m.prev:
                    following.append((pi, m.prev))
        frontier = following


def diff(a: Path, b: Path, *, limit: int = 10) -> list[str]:
    """The first differences between two dumps, in order; [] when they are equal."""
    out: list[str] = []
    with open(a, encoding="utf-8") as fa, open(b, encoding="utf-8") as fb:
        la, lb = _facts(fa), _facts(fb)
        x, y = next(la, None), next(lb, None)
        while (x or y) and len(out) < limit:
            if x and y and x[0] == y[0]:
                if x[1] != y[1]:
                    out.append(f"{_shown(x[0])}: {a.name} has {x[1]}, {b.name} has {y[1]}")
                x, y = next(la, None), next(lb, None)
            elif y is None or (x is not None and x[0] < y[0]):
                out.append(f"{_shown(x[0])}: only in {a.name} ({x[1]})")
                x = next(la, None)
            else:
                out.append(f"{_shown(y[0])}: only in {b.name} ({y[1]})")
                y = next(lb, None)
    return out


def _facts(fh) -> Iterator[tuple[str, str]]:
    for line in fh:
        if line.startswith("~digest\t"):
            continue
        key, _, value = line.rstrip("\n").rpartition("\t")
        yield key, value


def _shown(key: str) -> str:
    return key.replace("\t", " ")
