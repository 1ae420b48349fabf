"""The archive as the Arke API writes it: plain-map links, dag-cbor events,
`arke/manifest/v1`, upstream's snapshot formats, its stale pointer writes."""

import json

import cbrrr
import pytest

from arke_dr_pipeline.arke.models import Event, Manifest
from arke_dr_pipeline.dr.archive.event_chain import ChainError, walk_events
from arke_dr_pipeline.dr.archive.pointer import require_pointer
from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.archive.snapshot_base import load_snapshot
from arke_dr_pipeline.dr.backup.export import export_car
from arke_dr_pipeline.dr.backup.inventory import build_inventory
from arke_dr_pipeline.dr.backup.pins import pin_set
from arke_dr_pipeline.dr.restore.whole import restore
from arke_dr_pipeline.dr.verify.car import verify_car
from arke_dr_pipeline.dr.verify.dagcheck import BackupInvalid
from arke_dr_pipeline.ipld.cid import DAG_CBOR, DAG_JSON, cid_str, make_cid, parse_cid, split_cid
from arke_dr_pipeline.ipld.links import dag_cbor_value
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.simulate.testdata import GenSpec, encode_event, generate, seed_scenario
from arke_dr_pipeline.simulate.writer import ArchiveWriter
from arke_dr_pipeline_tests.conftest import make_settings
from arke_dr_pipeline_tests.helpers import backup, dump_digest, logical_dump

CID_A = "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


def test_api_blocks_are_what_kubo_stores(client):
    """Our encoding of the API's objects is byte for byte what `dag/put` with
    `input-codec=json` stores, so generated archives are the production shape."""
    m = Manifest("01K75GZSKKSP2K6TP05JBFNV09", 2, "2025-12-01T00:00:00Z", parse_cid(CID_A),
                 {"image": parse_cid(CID_A)}, [], "n", "arke/manifest/v1")
    data = cbrrr.encode_dag_cbor(m.to_ipld(plain=True))
    assert client.dag_put(json.dumps(m.to_ipld(plain=True)).encode(), input_codec="json") == \
        cid_str(make_cid(DAG_CBOR, data))
    e = Event("update", m.pi, 2, parse_cid(CID_A), "2025-12-01T00:00:00Z", parse_cid(CID_A))
    cid, data = encode_event(e, api=True)
    assert client.dag_put(json.dumps(e.to_ipld(plain=True)).encode(), input_codec="json") == cid_str(cid)
    assert split_cid(cid)[1] == DAG_CBOR and b"\xd8\x2a" not in data  # no tag 42 anywhere
    value, real, plain = dag_cbor_value(data)
    assert real == [] and sorted(plain) == sorted([parse_cid(CID_A)] * 2)
    assert Event.decode(value) == e


def test_link_shaped_map_that_is_not_a_cid_is_named():
    bad = {"schema": "arke/manifest/v1", "pi": "01K75GZSKKSP2K6TP05JBFNV09", "ver": 2, "ts": "t",
           "prev": {"/": "not-a-cid"}, "components": {}, "children_pi": [], "note": ""}
    value, _, plain = dag_cbor_value(cbrrr.encode_dag_cbor(bad))
    assert plain == []
    with pytest.raises(ValueError, match=r"field 'prev' is a link-shaped map whose value is not a CID: 'not-a-cid'"):
        Manifest.decode(value, "manifest X")


@pytest.mark.parametrize("shape", ["api", "mixed", "seed"])
def test_nuclear_by_shape_survives_gc(fresh_kubo, tmp_path, shape):
    """Backup, wipe, restore, `ipfs repo gc`: the archive is the same, tip files byte for byte."""
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=150, events=400, seed=5, image_fraction=0.05,
                                           image_min=300_000, image_max=400_000, shape=shape))
        if shape != "seed":
            ArchiveWriter(client, settings, seed=9).run(60)
        before = logical_dump(client, settings)
        codecs = {split_cid(parse_cid(c[0]))[1] for c in before["chain"]}
        schemas = {h["schema"] for hist in before["histories"].values() for h in hist}
        expected = {"api": ({DAG_CBOR}, {"arke/manifest/v1"}),
                    "mixed": ({DAG_CBOR, DAG_JSON}, {"arke/manifest/v1", "arke/manifest@v1"}),
                    "seed": ({DAG_JSON}, {"arke/manifest@v1"})}[shape]
        assert (codecs, schemas) == expected
        assert all(not t.endswith("\n") for t in before["tips"].values())
        car = backup(client, settings)
        expected = dump_digest(client, settings, car)
        assert client.repo_gc() >= 0
        assert logical_dump(client, settings) == before  # the source node's own pins hold too
    fresh_kubo.wipe()
    with KuboClient(fresh_kubo.api_url) as client:
        result = restore(client, settings, car)
        assert result["entity_count"] == len(before["tips"])
        assert logical_dump(client, settings) == before
        assert dump_digest(client, settings) == expected
        client.repo_gc()
        assert logical_dump(client, settings) == before


def test_chain_decode_error_names_the_event(client, settings):
    seed_scenario(client, settings, "api")
    pointer = require_pointer(client, settings.index_pointer_path)
    garbage = client.block_put(b"\xa7not cbor", cid_codec="dag-cbor")
    bad = {"schema": "arke/event@v1", "type": "update", "pi": "ENTITY_A00000000000000", "ver": 4,
           "tip_cid": {"/": CID_A}, "ts": "t", "prev": {"/": garbage}}
    head = client.dag_put(json.dumps(bad).encode(), input_codec="json")
    with pytest.raises(ChainError, match=f"event {garbage}: not dag-cbor"):
        list(walk_events(client, head))
    assert len(list(walk_events(client, pointer.event_head))) == 6


def _upstream_v2(client, settings, entries_from: str) -> str:
    """A snapshot as upstream's builder writes it since 2025-12-27: inline entries, merkle fields,
    JSON put with `store-codec=dag-json`."""
    header, entries = load_snapshot(client, entries_from)
    doc = {
        "schema": "arke/snapshot@v2", "seq": header.seq + 1, "ts": "2026-01-01T00:00:00Z",
        "event_cid": header.event_cid, "total_count": len(entries),
        "entries": [{"pi": e.pi, "ver": e.ver, "tip_cid": {"/": cid_str(e.tip_cid)}, "ts": e.ts,
                     "chain_cid": {"/": cid_str(e.chain_cid)}} for e in entries.values()],
        "prev_snapshot": {"/": entries_from}, "merkle_root": "ab" * 32, "cid_count": 3,
        "all_cids": [CID_A, CID_A, CID_A], "consistency": None,
    }
    return client.dag_put(json.dumps(doc).encode(), store_codec="dag-json", input_codec="json", pin=True)


def test_upstream_v2_snapshot_verifies_restores_and_continues(fresh_kubo, tmp_path):
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        seed_scenario(client, settings, "api")
        ours = build_snapshot(client, settings)
        upstream = _upstream_v2(client, settings, ours.snapshot_cid)
        inv = build_inventory(client, settings, upstream)
        pin_set(client, upstream, inv.path)
        car = export_car(client, settings, upstream, inventory=inv.path).car_path
        report, _ = verify_car(car)
        assert (report.snapshot_cid, report.schema, report.entity_count) == (upstream, "arke/snapshot@v2", 3)
        before = logical_dump(client, settings)
    fresh_kubo.wipe()
    settings.snapshots_dir.joinpath("latest.json").unlink()
    with KuboClient(fresh_kubo.api_url) as client:
        assert restore(client, settings, car)["snapshot_cid"] == upstream
        assert logical_dump(client, settings) == before
        ArchiveWriter(client, settings).run(4)
        nxt = build_snapshot(client, settings)
        assert nxt.incremental and nxt.new_events == 4 and nxt.seq == 3
        header, _ = load_snapshot(client, nxt.snapshot_cid)
        assert header.schema == "arke/snapshot@v2" and header.prev_snapshot == parse_cid(upstream)


def test_unknown_schema_named(fresh_kubo, tmp_path):
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        seed_scenario(client, settings, "api")
        snap = build_snapshot(client, settings)
        header, entries = load_snapshot(client, snap.snapshot_cid)
        odd = client.dag_put(json.dumps({"schema": "arke/manifest@v9", "pi": "ENTITY_A00000000000000"}).encode(),
                             input_codec="json", pin=True)
        doc = {"schema": "arke/snapshot@v1", "seq": 9, "ts": "t", "event_cid": header.event_cid, "total_count": 1,
               "prev_snapshot": None, "entries": [{"pi": "ENTITY_A00000000000000", "ver": 3, "tip_cid": {"/": odd},
                                                   "ts": "t", "chain_cid": {"/": header.event_cid}}]}
        root = client.dag_put(json.dumps(doc).encode(), store_codec="dag-json", input_codec="json")
        named = r"tip of ENTITY_A00000000000000 is not a manifest \(schema 'arke/manifest@v9'\)"
        with pytest.raises(BackupInvalid, match=named):
            build_inventory(client, settings, root)


def test_stale_pointer_write_is_repaired(client, settings):
    """The API writes back the pointer it read before our snapshot: the next build
    notices, repairs without losing the head, and never reuses a seq."""
    seed_scenario(client, settings, "api")
    writer = ArchiveWriter(client, settings, seed=3)
    stale = require_pointer(client, settings.index_pointer_path)
    first = build_snapshot(client, settings)
    versions = [writer.new_version() for _ in range(3)]
    pointer_before_batch = stale.raw  # read before the snapshot, written back after it
    client.files_write(settings.index_pointer_path, json.dumps(pointer_before_batch).encode())
    writer.write_batch(versions)
    reverted = require_pointer(client, settings.index_pointer_path)
    assert reverted.latest_snapshot_cid is None and reverted.event_head == writer.head
    second = build_snapshot(client, settings)
    assert second.pointer_repaired and any("went backwards" in a for a in second.anomalies)
    assert second.seq == first.seq + 1 and second.new_events == 3 and second.entity_count == 6
    header, _ = load_snapshot(client, second.snapshot_cid)
    assert header.prev_snapshot == parse_cid(first.snapshot_cid)
    after = require_pointer(client, settings.index_pointer_path)
    assert (after.latest_snapshot_cid, after.snapshot_seq, after.event_head) == \
        (second.snapshot_cid, second.seq, writer.head)
    assert after.raw["event_count"] == 9 and second.event_count == 9
    assert [c for c, _ in walk_events(client, writer.head)][:3] == [parse_cid(c) for c in reversed(writer.appended)]
