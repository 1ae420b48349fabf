"""The generated archives are what production looks like, checked on the node."""

import json
import random

import cbrrr

from arke_dr_pipeline.arke.models import Manifest
from arke_dr_pipeline.arke.snapshot_codec import encode_dag_json
from arke_dr_pipeline.dr.archive.event_chain import walk_events
from arke_dr_pipeline.dr.archive.pointer import require_pointer
from arke_dr_pipeline.dr.archive.tips import read_tips
from arke_dr_pipeline.ipld.cid import DAG_CBOR, cid_str, make_cid, parse_cid
from arke_dr_pipeline.ipld.links import dag_cbor_links
from arke_dr_pipeline.ipld.unixfs import file_blocks
from arke_dr_pipeline.simulate.testdata import SEED_PIS, GenSpec, generate, seed_scenario
from arke_dr_pipeline.simulate.writer import ArchiveWriter


def test_seed_scenario_counts(client, settings):
    result = seed_scenario(client, settings)
    pointer = require_pointer(client, settings.index_pointer_path)
    assert pointer.event_count == 6 and pointer.total_count == 3
    events = list(walk_events(client, pointer.event_head))
    assert len(events) == 6
    assert [(e.type, e.pi, e.ver) for _, e in reversed(events)] == [
        ("create", SEED_PIS[0], 1), ("update", SEED_PIS[0], 2), ("update", SEED_PIS[0], 3),
        ("create", SEED_PIS[1], 1), ("update", SEED_PIS[1], 2), ("create", SEED_PIS[2], 1),
    ]
    tips = read_tips(client, settings.index_root)
    assert set(tips) == set(SEED_PIS) and tips == result.tips
    # A's history down to v1, with its components in v3
    cur, versions = tips[SEED_PIS[0]], []
    while cur:
        m = Manifest.decode(dag_cbor_links(client.block_get(cur))[0])
        versions.append((m.ver, sorted(m.components)))
        for comp in m.components.values():
            assert client.cat(cid_str(comp))
        cur = cid_str(m.prev) if m.prev else None
    assert versions == [(3, ["image", "metadata"]), (2, []), (1, [])]
    # the seed's own read path works
    raw = client.files_read(f"{settings.index_root}/EN/TI/ENTITY_A00000000000000.tip")
    assert raw.decode().strip() == tips[SEED_PIS[0]]


def test_generated_archive_walks_back_exactly(client, settings):
    result = generate(client, settings, GenSpec(entities=300, events=900, seed=3, image_fraction=0.02))
    pointer = require_pointer(client, settings.index_pointer_path)
    assert pointer.event_count == 900 == result.event_count and pointer.total_count == 300
    events = list(walk_events(client, pointer.event_head))
    assert len(events) == 900 and len({c for c, _ in events}) == 900
    assert events[-1][1].prev is None and events[-1][1].type == "create"
    newest = {}
    for _cid, ev in events:
        newest.setdefault(ev.pi, ev)
    tips = read_tips(client, settings.index_root)
    assert len(tips) == 300
    assert {pi: cid_str(ev.tip_cid) for pi, ev in newest.items()} == tips
    versions = sorted(ev.ver for ev in newest.values())
    assert versions[len(versions) // 2] <= 3 and versions[-1] > 5  # mostly few, a long tail


def test_generation_is_deterministic(client, settings, tmp_path):
    from dataclasses import replace

    spec = GenSpec(entities=40, seed=9, image_fraction=0.0)
    a = generate(client, settings, spec)
    b = generate(client, replace(settings, index_pointer_path="/arke-det2/index-pointer"), spec)
    assert a.head == b.head and a.tips == b.tips


def test_local_cids_equal_kubos(client):
    rng = random.Random(5)
    for size in (0, 100, 262_144, 262_145, 3_000_000):
        data = rng.randbytes(size)
        assert cid_str(file_blocks(data)[0]) == client.add_bytes(data), size
    link = make_cid(DAG_CBOR, b"y")
    m = Manifest("ENTITY_A00000000000000", 1, "t", None, {"meta": link}, ["ENTITY_B00000000000000"], "n")
    local = make_cid(DAG_CBOR, cbrrr.encode_dag_cbor(m.to_ipld()))
    as_json = json.dumps({**m.to_ipld(), "components": {"meta": {"/": cid_str(link)}}}).encode()
    assert client.dag_put(as_json, store_codec="dag-cbor", input_codec="dag-json") == cid_str(local)
    event = {"schema": "arke/event@v1", "type": "create", "pi": "ENTITY_A00000000000000", "ver": 1,
             "tip_cid": cbrrr.CID(local), "ts": "t", "prev": None}
    cid, data = encode_dag_json(event)
    assert client.dag_put(data, store_codec="dag-json", input_codec="dag-json") == cid_str(cid)


def test_writer_simulator_appends_like_the_api(client, settings):
    seed_scenario(client, settings)
    writer = ArchiveWriter(client, settings)
    appended = writer.run(20, update_share=0.5)
    pointer = require_pointer(client, settings.index_pointer_path)
    assert pointer.event_head == appended[-1] and pointer.event_count == 26
    chain = [cid_str(c) for c, _ in walk_events(client, pointer.event_head)]
    assert chain[:20] == list(reversed(appended)) and len(chain) == 26
    tips = read_tips(client, settings.index_root)
    assert len(tips) == pointer.total_count
    assert parse_cid(pointer.event_head)
