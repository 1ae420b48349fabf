"""Decoding refuses bad objects, naming the object and the field."""

import cbrrr
import pytest

from arke_dr_pipeline.arke.models import (
    ArkeDecodeError,
    Event,
    IndexPointer,
    Manifest,
    SnapshotEntry,
    SnapshotHeader,
    tip_path,
    valid_pi,
)
from arke_dr_pipeline.arke.snapshot_codec import decode_snapshot, encode_snapshot, snapshot_entries
from arke_dr_pipeline.ipld.cid import DAG_CBOR, DAG_JSON, make_cid, parse_cid
from arke_dr_pipeline.ipld.links import decode_block

LINK = cbrrr.CID(make_cid(DAG_CBOR, b"x"))


def manifest(**over):
    m = {"schema": "arke/manifest@v1", "pi": "01K75GZSKKSP2K6TP05JBFNV09", "ver": 2, "ts": "t",
         "prev": LINK, "components": {"meta": LINK}, "children_pi": [], "note": ""}
    m.update(over)
    return m


def test_pis_and_tip_paths():
    assert valid_pi("01K75GZSKKSP2K6TP05JBFNV09") and valid_pi("ENTITY_A00000000000000")
    assert not valid_pi("../etc/passwd") and not valid_pi("")
    for bad in ("ENTITY_A00000000000000\n", "01K75GZSKKSP2K6TP05JBFNV09\n", "ENTITY_A0000\n0000000000"):
        assert not valid_pi(bad)  # a whole-string match: `$` also matched before a final newline
        with pytest.raises(ValueError):
            tip_path(bad)
    assert tip_path("ENTITY_A00000000000000") == "/arke/index/EN/TI/ENTITY_A00000000000000.tip"
    assert tip_path("01K75GZSKKSP2K6TP05JBFNV09") == "/arke/index/01/K7/01K75GZSKKSP2K6TP05JBFNV09.tip"
    with pytest.raises(ValueError):
        tip_path("a/b")


def test_manifest_roundtrip():
    m = Manifest.decode(manifest())
    assert m.ver == 2 and m.components == {"meta": LINK.cid_bytes}
    assert Manifest.decode(m.to_ipld()) == m


@pytest.mark.parametrize("over, field, words", [
    ({"ver": "2"}, "ver", "type str"),
    ({"pi": 5}, "pi", "type int"),
    ({"prev": {"/": "bafyfake"}}, "prev", "link-shaped map whose value is not a CID: 'bafyfake'"),
    ({"components": {"meta": {"/": "bafyfake"}}}, "components.meta", "link-shaped map whose value is not a CID"),
    ({"schema": "other"}, "schema", "is 'other', expected arke/manifest@v1 or arke/manifest/v1"),
])
def test_bad_manifest_names_field(over, field, words):
    with pytest.raises(ArkeDecodeError) as err:
        Manifest.decode(manifest(**over), "manifest M")
    assert err.value.field == field and words in str(err.value) and "manifest M" in str(err.value)


def test_missing_key_named():
    m = manifest()
    del m["ts"]
    with pytest.raises(ArkeDecodeError, match="field 'ts' is missing"):
        Manifest.decode(m)


def test_event_and_pointer_refusals():
    ev = {"schema": "arke/event@v1", "type": "delete", "pi": "ENTITY_A00000000000000", "ver": 1,
          "tip_cid": LINK, "ts": "t", "prev": None}
    with pytest.raises(ArkeDecodeError, match="'type'"):
        Event.decode(ev)
    with pytest.raises(ArkeDecodeError, match="'event_head' is not a CID"):
        IndexPointer.decode(b'{"schema": "arke/index-pointer@v2", "event_head": "nope"}')
    p = IndexPointer.decode(b'{"schema": "arke/index-pointer@v2", "event_head": null, "custom": 1}')
    assert b'"custom": 1' in p.encode()


def _entries(n):
    return [SnapshotEntry(f"ENTITY_{i:015d}", 1, LINK.cid_bytes, "2025-01-01T00:00:00Z", LINK.cid_bytes)
            for i in range(n)]


def test_snapshot_v1_below_one_mib_v2_above():
    root, blocks = encode_snapshot(seq=1, ts="t", event_cid="bafkqaaa", prev_snapshot=None,
                                   entries=_entries(10))
    assert len(blocks) == 1
    header = decode_snapshot(blocks[0][1])
    assert header.schema == "arke/snapshot@v1" and len(header.entries) == 10

    entries = _entries(8000)
    root, blocks = encode_snapshot(seq=2, ts="t", event_cid="bafkqaaa", prev_snapshot=root,
                                   entries=entries)
    assert len(blocks) > 2 and all(len(d) < 1 << 20 for _, d in blocks)
    header = decode_snapshot(blocks[-1][1])
    assert header.schema == "arke-dr/snapshot-chunked@v1" and header.total_count == 8000
    store = dict(blocks)
    assert list(snapshot_entries(header, store.__getitem__)) == entries
    legacy = decode_block(DAG_JSON, blocks[-1][1])
    legacy["schema"] = "arke/snapshot@v2"  # what we wrote before upstream took the name
    assert list(snapshot_entries(SnapshotHeader.decode(legacy), store.__getitem__)) == entries


def test_every_upstream_snapshot_format_decodes():
    link = cbrrr.CID(parse_cid("bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"))
    entry = {"pi": "ENTITY_A00000000000000", "ver": 1, "tip_cid": link, "ts": "t", "chain_cid": link}
    v0 = {"schema": "arke/snapshot@v0", "seq": 4, "ts": "t", "prev_snapshot": link, "total_count": 1,
          "entries": [entry]}
    v2 = {**v0, "schema": "arke/snapshot@v2", "event_cid": "bafkqaaa", "merkle_root": "ab", "cid_count": 2,
          "all_cids": ["x", "y"], "consistency": None}
    for doc in (v0, {**v0, "schema": "arke/snapshot@v1"}, v2):
        header = SnapshotHeader.decode(doc)
        assert header.entries[0].pi == "ENTITY_A00000000000000" and header.prev_snapshot == link.cid_bytes
    assert SnapshotHeader.decode(v0).event_cid == ""
    assert SnapshotHeader.decode(v2).extra == {"merkle_root": "ab", "cid_count": 2}


def test_snapshot_header_refuses_plain_map_chunks():
    with pytest.raises(ArkeDecodeError, match="chunks"):
        SnapshotHeader.decode({"schema": "arke/snapshot@v2", "seq": 1, "ts": "t", "event_cid": "bafkqaaa",
                               "total_count": 0, "prev_snapshot": None, "chunks": [{"/": "x"}]})
