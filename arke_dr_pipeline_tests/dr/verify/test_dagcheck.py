"""A CAR that carries many one-block snapshots (the API's form, each linking the one before)."""

import random
import re

import cbrrr
import pytest

from arke_dr_pipeline.arke.models import Event, Manifest, SnapshotEntry
from arke_dr_pipeline.dr.verify.dagcheck import BackupInvalid, DagCheck
from arke_dr_pipeline.ipld.cid import DAG_CBOR, cid_str, make_cid


def _entry(i: int, seq: int, tip_file: bool) -> SnapshotEntry:
    tip = make_cid(DAG_CBOR, f"manifest {i} of {seq}".encode())
    return SnapshotEntry(pi=f"01K{i:023d}", ver=seq, tip_cid=tip, ts="2026-12-07T00:00:00Z",
                         chain_cid=make_cid(DAG_CBOR, f"event {i} of {seq}".encode()),
                         tip_file=cid_str(tip) + "\n" if tip_file else None)


def _snapshot(seq: int, entries: list[SnapshotEntry], prev: bytes | None) -> tuple[bytes, bytes]:
    value = {"schema": "arke/snapshot@v2", "seq": seq, "ts": "2026-12-07T00:00:00Z",
             "total_count": len(entries), "entries": [e.to_ipld() for e in entries]}
    if prev is not None:
        value["prev_snapshot"] = cbrrr.CID(prev)
    data = cbrrr.encode_dag_cbor(value)
    return make_cid(DAG_CBOR, data), data


def test_older_snapshots_entries_come_back_whole_tip_file_text_and_all():
    """Each older snapshot's entries leave memory as soon as they are read (seven of
    them at 40,000 entities took a full backup to 400 MB), and any one of them can
    still be asked for, as `verify-car --seq` and `restore --seq` do."""
    written, prev, blocks = {}, None, []
    for seq in range(1, 6):
        entries = [_entry(i, seq, tip_file=(i % 3 == 0)) for i in range(40)]
        cid, data = _snapshot(seq, entries, prev)
        written[cid], prev = entries, cid
        blocks.append((cid, data))
    check = DagCheck([prev])
    for cid, data in reversed(blocks):
        assert check.add(cid, data) == "snapshots"
    for cid, entries in written.items():
        back = list(check.iter_entries(cid))
        assert back == entries
        assert [e.tip_text for e in back] == [e.tip_text for e in entries]
    assert check.snapshot_by_seq(prev, 2) == blocks[1][0]
    assert check.snapshots[prev].entries is not None and all(
        check.snapshots[c].entries is None for c in written if c != prev)


def _dag(rng: random.Random, n: int) -> list[tuple[bytes, bytes]]:
    """A random DAG of dag-cbor blocks, parents before children (as a CAR is written), root first."""
    blocks: list[tuple[bytes, bytes]] = []
    unlinked: set[bytes] = set()
    for i in range(n):
        children = [c for c, _ in rng.sample(blocks, min(len(blocks), rng.randrange(4)))]
        if i == n - 1:
            children += sorted(unlinked - set(children))
        data = cbrrr.encode_dag_cbor({"i": i, "links": [cbrrr.CID(c) for c in children]})
        blocks.append((make_cid(DAG_CBOR, data), data))
        unlinked = (unlinked - set(children)) | {blocks[-1][0]}
    return blocks[::-1]


def _verdict(blocks, roots, sorted_refs: bool, declared=frozenset()) -> tuple[str, int | None]:
    check = DagCheck(list(roots), sorted_refs=sorted_refs)
    check.declared = set(declared)
    try:
        for cid, data in blocks:
            check.add(cid, data)
        check._resolve_links()
    except BackupInvalid as exc:
        kind = exc.problem.split(" (")[0].split(";")[0]
        counts = re.findall(r"(\d+) (?:missing )?in all", exc.problem)
        return kind, int(counts[0]) if counts else None
    return "ok", len(check.lost)


@pytest.mark.parametrize("seed", range(12))
def test_links_resolved_by_sorting_give_the_verdict_of_the_lookups(monkeypatch, seed):
    """The offline verification resolves links by sorting (refs.py); the export looks
    them up as it walks. On the same blocks, intact or damaged, both say the same:
    in memory and with every run on disk."""
    from arke_dr_pipeline.dr.plumbing import spill

    rng = random.Random(seed)
    blocks = _dag(rng, 60)
    root = blocks[0][0]
    leaves = [i for i, (_, data) in enumerate(blocks) if i and not cbrrr.decode_dag_cbor(data)["links"]]
    dropped = rng.sample(leaves, min(3, len(leaves)))  # nothing becomes unreferenced
    stray_data = cbrrr.encode_dag_cbor({"stray": seed})
    cases = {
        "intact": (blocks, ()),
        "missing": ([b for i, b in enumerate(blocks) if i not in dropped], ()),
        "declared lost": ([b for i, b in enumerate(blocks) if i not in dropped], {blocks[i][0] for i in dropped}),
        "duplicate": (blocks + [blocks[rng.randrange(60)]], ()),
        "unreferenced": (blocks + [(make_cid(DAG_CBOR, stray_data), stray_data)], ()),
        "root missing": (blocks[1:], ()),
    }
    for limit in (10**9, 7):
        for name in ("CID_LIMIT", "LINK_LIMIT", "FACT_LIMIT"):
            monkeypatch.setattr(spill, name, limit)
        for case, (stream, declared) in cases.items():
            looked_up = _verdict(stream, [root], sorted_refs=False, declared=declared)
            assert _verdict(stream, [root], sorted_refs=True, declared=declared) == looked_up, (case, limit)
            expected = {"intact": "ok", "declared lost": "ok", "duplicate": "duplicate block",
                        "unreferenced": "block that nothing in the CAR links to"}.get(case, "block missing")
            assert looked_up[0] == expected, (case, looked_up)


def _archive(damage: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """An Arke archive as blocks (manifests chained by `prev`, one event chain, a one-block snapshot),
    with one rule of the archive broken, every block still linked."""
    blocks: list[tuple[bytes, bytes]] = []

    def put(value: dict) -> bytes:
        data = cbrrr.encode_dag_cbor(value)
        cid = make_cid(DAG_CBOR, data)
        blocks.append((cid, data))
        return cid

    versions: dict[str, list[bytes]] = {}
    events: dict[tuple[str, int], bytes] = {}
    head = first_manifest = None
    damaged = False
    rng = random.Random(5)
    for _ in range(60):
        pi = f"01K{rng.randrange(9):023d}"
        chain = versions.setdefault(pi, [])
        ver = len(chain) + 1
        prev = chain[-1] if chain else None
        once = not damaged and ver == 3  # one manifest broken, the first at version 3
        if once and damage == "manifest skips a version":
            prev = chain[0]
        if once and damage == "manifest without prev":
            prev = None
        if once and damage == "manifest prev is an event":
            prev = head
        damaged = damaged or once
        manifest = put(Manifest(pi=pi, ver=ver, ts="2026-12-07T00:00:00Z", prev=prev, components={},
                                children_pi=[], note="").to_ipld())
        first_manifest = first_manifest or manifest
        chain.append(manifest)
        event_prev = first_manifest if damage == "event prev is a manifest" and head is None else head
        head = put(Event(type="update" if ver > 1 else "create", pi=pi, ver=ver, tip_cid=manifest,
                         ts="2026-12-07T00:00:00Z", prev=event_prev).to_ipld())
        events[pi, ver] = head
    pis = sorted(versions)
    entries = []
    for i, pi in enumerate(pis):
        ver = len(versions[pi])
        tip, chain_cid = versions[pi][-1], events[pi, ver]
        if damage == "tip of an older version" and i == 3 and ver > 1:
            tip = versions[pi][-2]
        if damage == "chain_cid of another entity" and i == 4:
            chain_cid = events[pis[0], len(versions[pis[0]])]
        entries.append(SnapshotEntry(pi=pis[1] if damage == "duplicate PI" and i == 2 else pi, ver=ver,
                                     tip_cid=tip, ts="2026-12-07T00:00:00Z", chain_cid=chain_cid))
    value = {"schema": "arke/snapshot@v2", "seq": 1, "ts": "2026-12-07T00:00:00Z", "total_count": len(entries),
             "entries": [e.to_ipld() for e in entries],
             "event_cid": cbrrr.CID(first_manifest if damage == "head is a manifest" else head)}
    root = put(value)
    return root, blocks[::-1]


def _finished(root: bytes, blocks, sorted_refs: bool) -> tuple:
    check = DagCheck([root], sorted_refs=sorted_refs)
    try:
        for cid, data in blocks:
            check.add(cid, data)
        report = check.finish(root)
    except BackupInvalid as exc:
        return "refused", exc.problem
    return "ok", report.event_count, report.manifest_count, report.entity_count, report.block_count


@pytest.mark.parametrize("damage", ["none", "manifest skips a version", "manifest without prev",
                                    "manifest prev is an event", "event prev is a manifest",
                                    "tip of an older version", "chain_cid of another entity", "duplicate PI",
                                    "head is a manifest"])
def test_the_archive_rules_as_joins_refuse_what_the_lookups_refuse_in_the_same_words(monkeypatch, damage):
    """Offline, past FACT_LIMIT, the facts of manifests and events are an SQLite table and the rules
    are joins (facts.py); walking the archive, they are looked up. Both give one verdict, worded alike."""
    from arke_dr_pipeline.dr.plumbing import spill

    root, blocks = _archive(damage)
    verdicts = set()
    for limit in (10**9, 5):
        monkeypatch.setattr(spill, "FACT_LIMIT", limit)
        for sorted_refs in (False, True):
            verdicts.add(_finished(root, blocks, sorted_refs))
    assert len(verdicts) == 1, verdicts
    verdict = verdicts.pop()
    if damage == "none":
        assert verdict[:2] == ("ok", 60), verdict
    else:
        assert verdict[0] == "refused", verdict
