"""A CAR that carries many one-block snapshots (the API's form, each linking the one before)."""

import cbrrr

from arke_dr_pipeline.arke.models import SnapshotEntry
from arke_dr_pipeline.dr.verify.dagcheck import DagCheck
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
