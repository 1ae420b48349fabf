"""Running beside the live Arke API: its snapshot builder, `/snapshot/latest`, its proofs.

The API's builder is the stand-in `simulate/api_builder.py`; the API's
event writes (and their stale pointer writes) are `simulate/writer.py`.
Whatever order they run in with our builds, the snapshot the pointer names
reads whole with one `dag/get`, upstream's consistency never reports a
deletion, and our backups restore the archive.
"""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from arke_dr_pipeline.arke.snapshot_codec import encode_snapshot
from arke_dr_pipeline.arke.upstream_proof import merkle_root
from arke_dr_pipeline.dr.archive.pointer import require_pointer
from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.archive.snapshot_base import load_snapshot
from arke_dr_pipeline.dr.archive.tips import read_tips
from arke_dr_pipeline.dr.backup.run import backup
from arke_dr_pipeline.dr.restore.whole import restore
from arke_dr_pipeline.dr.verify.car import verify_car
from arke_dr_pipeline.ipld.cid import cid_str
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.simulate.api_builder import ApiSnapshotBuilder
from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline.simulate.writer import ArchiveWriter
from arke_dr_pipeline_tests.conftest import make_settings
from arke_dr_pipeline_tests.helpers import dump_digest, logical_dump


def published(client, settings) -> dict:
    """What `GET /snapshot/latest` serves: one `dag/get` of the pointer's snapshot."""
    cid = require_pointer(client, settings.index_pointer_path).latest_snapshot_cid
    return json.loads(client.dag_get(cid))


def assert_serves_everything(client, settings) -> dict:
    """The pointer's snapshot names every entity with a tip file, its event is
    the head it claims, and upstream's proof fields hold together."""
    doc = published(client, settings)
    tips = read_tips(client, settings.index_root) or {}
    pis = {e["pi"] for e in doc["entries"]}
    chain_pis = _pis_up_to(client, doc["event_cid"])
    assert pis == chain_pis, f"{len(chain_pis - pis)} entities missing from the published snapshot"
    assert pis <= set(tips)
    assert doc["total_count"] == len(doc["entries"])
    assert doc["merkle_root"] == merkle_root(doc["all_cids"]) and doc["cid_count"] == len(doc["all_cids"])
    assert doc["all_cids"] == sorted(set(doc["all_cids"]))
    if doc.get("consistency"):
        assert doc["consistency"]["deleted_count"] == 0 and doc["consistency"]["is_append_only"]
    return doc


def _pis_up_to(client, head: str) -> set[str]:
    from arke_dr_pipeline.dr.archive.event_chain import walk_events

    return {e.pi for _, e in walk_events(client, head)}


def _archive(client, settings, entities: int, events: int) -> ArchiveWriter:
    generate(client, settings, GenSpec(entities=entities, events=events, seed=11, image_fraction=0.02,
                                       image_min=2_000, image_max=4_000, shape="api"))
    return ArchiveWriter(client, settings, seed=12)


def _stale_write(client, settings, writer, before: dict) -> None:
    """An event batch of the API that read the pointer before the last build
    and writes it back after, old snapshot fields and all."""
    versions = [writer.new_version() for _ in range(3)]
    now = require_pointer(client, settings.index_pointer_path).raw
    stale = {**before, "event_head": now["event_head"], "event_count": now.get("event_count", 0)}
    client.files_write(settings.index_pointer_path, json.dumps(stale).encode())
    writer.write_batch(versions)


INTERLEAVINGS = [
    "ours api ours",
    "api ours api ours",
    "ours stale api ours",
    "api stale ours api stale ours",
    "ours ours api api ours",
]


@pytest.mark.parametrize("steps", INTERLEAVINGS)
def test_any_interleaving_with_the_api_builder_is_safe(client, settings, steps):
    writer = _archive(client, settings, 300, 900)
    api = ApiSnapshotBuilder(client, settings)
    before = require_pointer(client, settings.index_pointer_path).raw
    deletions = []
    for step in steps.split():
        if step == "stale":
            _stale_write(client, settings, writer, before)
            continue
        before = require_pointer(client, settings.index_pointer_path).raw
        writer.run(25, update_share=0.6)
        if step == "ours":
            result = build_snapshot(client, settings)
            assert not result.base_refused
        else:
            assert api.build() is not None
            deletions += [line for line in api.log if "'deleted_count': 0" not in line and "consistency" in line
                          and "None" not in line]
        assert_serves_everything(client, settings)
    assert deletions == []
    assert all("Loaded 0 entries" not in line for line in api.log)
    ours = build_snapshot(client, settings)
    car = backup(client, settings, ours.snapshot_cid).car.car_path
    report, _ = verify_car(car)
    assert report.entity_count == len(read_tips(client, settings.index_root))


def test_a_pointer_snapshot_the_api_built_from_a_chunked_one_is_refused_and_repaired(client, settings):
    """The release before this one published chunked snapshots past 1 MiB; the
    API's builder read one as empty and published 20-odd entities."""
    writer = _archive(client, settings, 8_200, 8_400)
    first = build_snapshot(client, settings)
    header, entries = load_snapshot(client, first.snapshot_cid)
    root, blocks = encode_snapshot(seq=first.seq, ts=header.ts, event_cid=header.event_cid, prev_snapshot=None,
                                   entries=sorted(entries.values(), key=lambda e: e.pi))
    assert len(blocks) > 1  # chunked: the API's builder sees no entries in it
    for _, data in blocks:
        client.block_put(data, cid_codec="dag-json")
    pointer = require_pointer(client, settings.index_pointer_path)
    pointer.raw["latest_snapshot_cid"] = cid_str(root)
    client.files_write(settings.index_pointer_path, pointer.encode())
    writer.run(20)
    api = ApiSnapshotBuilder(client, settings)
    damaged = api.build()
    assert "Loaded 0 entries from previous snapshot" in api.log
    assert len(published(client, settings)["entries"]) < 30

    repaired = build_snapshot(client, settings)
    assert repaired.base_refused and "names" in repaired.base_refused
    assert any(damaged in a and "not taken as a base" in a for a in repaired.anomalies)
    doc = assert_serves_everything(client, settings)
    assert len(doc["entries"]) == repaired.entity_count >= 8_200
    assert doc["prev_snapshot"] == {"/": damaged}
    writer.run(10)
    assert api.build() is not None and "Loaded 0 entries" not in api.log[-2]
    assert_serves_everything(client, settings)
    final = build_snapshot(client, settings)
    car = backup(client, settings, final.snapshot_cid).car.car_path
    assert verify_car(car)[0].entity_count == final.entity_count >= repaired.entity_count


def test_at_8000_entities_published_inline_then_restored_equal(fresh_kubo, tmp_path):
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url, timeout=120) as client:
        writer = _archive(client, settings, 8_100, 8_300)
        ours = build_snapshot(client, settings)
        assert ours.published and ours.schema == "arke/snapshot@v2" and ours.block_bytes > 1 << 20
        doc = assert_serves_everything(client, settings)
        assert len(doc["entries"]) == 8_100
        writer.run(30)
        api = ApiSnapshotBuilder(client, settings)
        api.build()
        assert "Loaded 8100 entries from previous snapshot" in api.log
        writer.run(30)
        final = build_snapshot(client, settings)
        assert_serves_everything(client, settings)
        car = backup(client, settings, final.snapshot_cid).car.car_path
        before = logical_dump(client, settings)
    fresh_kubo.wipe()
    with KuboClient(fresh_kubo.api_url, timeout=120) as client:
        assert restore(client, settings, car)["entity_count"] == final.entity_count
        after = logical_dump(client, settings)
        assert after == before
        assert_serves_everything(client, settings)


def test_record_mode_leaves_the_pointer_to_the_api(client, settings):
    settings = replace(settings, publish="record")
    writer = _archive(client, settings, 300, 700)
    ours = build_snapshot(client, settings)
    assert not ours.published and ours.schema == "arke/snapshot@v1"
    assert require_pointer(client, settings.index_pointer_path).latest_snapshot_cid is None
    api = ApiSnapshotBuilder(client, settings)
    assert api.build() is not None
    writer.run(20)
    nxt = build_snapshot(client, settings)
    assert nxt.incremental and nxt.new_events == 20
    assert require_pointer(client, settings.index_pointer_path).latest_snapshot_cid != nxt.snapshot_cid
    car = backup(client, settings, nxt.snapshot_cid).car.car_path
    assert verify_car(car)[0].snapshot_cid == nxt.snapshot_cid


def test_a_chunked_snapshot_left_in_the_pointer_is_cleared_for_the_api(client, settings, monkeypatch):
    """A restore of a chunked snapshot names it in the pointer; the next build
    (which does not publish) clears it, and the API's builder walks the chain."""
    from arke_dr_pipeline.arke import snapshot_codec

    monkeypatch.setattr(snapshot_codec, "BLOCK_LIMIT", 8192)
    monkeypatch.setattr(snapshot_codec, "CHUNK_TARGET", 2048)
    settings = replace(settings, publish="record")
    writer = _archive(client, settings, 200, 500)
    ours = build_snapshot(client, settings)
    assert ours.schema == "arke-dr/snapshot-chunked@v1"
    pointer = require_pointer(client, settings.index_pointer_path)
    pointer.raw.update(latest_snapshot_cid=ours.snapshot_cid, snapshot_event_cid=ours.event_cid)
    client.files_write(settings.index_pointer_path, pointer.encode())
    writer.run(10)
    build_snapshot(client, settings)
    assert require_pointer(client, settings.index_pointer_path).latest_snapshot_cid is None
    api = ApiSnapshotBuilder(client, settings)
    api.build()
    assert not any("Loaded" in line for line in api.log)  # a full walk, not 0 entries
    assert_serves_everything(client, settings)


def test_entries_end_with_the_head_so_upstreams_restore_keeps_the_chain(client, settings):
    """Upstream's `restore_from_car.py` takes the event head from the last entry's `chain_cid`."""
    writer = _archive(client, settings, 120, 400)
    for _ in range(3):
        snap = build_snapshot(client, settings)
        doc = published(client, settings)
        head_by_upstream_rule = doc["entries"][-1]["chain_cid"]["/"]
        assert head_by_upstream_rule == doc["event_cid"] == snap.event_cid
        from arke_dr_pipeline.dr.archive.event_chain import walk_events

        assert sum(1 for _ in walk_events(client, head_by_upstream_rule)) == snap.event_count
        writer.run(15)


def test_tips_written_with_a_newline_restore_byte_for_byte(fresh_kubo, tmp_path):
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        writer = _archive(client, settings, 300, 600)
        tips = read_tips(client, settings.index_root)
        echoed = sorted(tips)[:8]
        from arke_dr_pipeline.arke.models import tip_path

        for pi in echoed:  # `echo CID | ipfs files write`, as upstream's walkthrough shows
            client.files_write(tip_path(pi, settings.index_root), (tips[pi] + "\n").encode())
        build_snapshot(client, settings)
        pi, mcid, _ = writer.new_version(echoed[0])  # a new version, written with a newline too
        client.files_write(tip_path(pi, settings.index_root), (mcid + "\n").encode())
        writer.write_batch([(pi, mcid, _)])
        snap = build_snapshot(client, settings)
        car = backup(client, settings, snap.snapshot_cid).car.car_path
        before = logical_dump(client, settings)
        assert sum(t.endswith("\n") for t in before["tips"].values()) == 8
        expected = dump_digest(client, settings, Path(car))  # `dump --at-snapshot`, what the drill compares
    fresh_kubo.wipe()
    with KuboClient(fresh_kubo.api_url) as client:
        restore(client, settings, car)
        after = logical_dump(client, settings)
        assert after["tips"] == before["tips"] and after == before
        assert dump_digest(client, settings) == expected


def test_a_tip_ahead_of_the_chain_is_quiet_within_the_window(client, settings):
    writer = _archive(client, settings, 50, 120)
    build_snapshot(client, settings)
    pi = sorted(read_tips(client, settings.index_root))[0]
    writer.append(pi)
    versions = [writer.new_version(pi)]  # its next tip is written, the event still in the API's queue

    import threading

    batch = threading.Timer(0.3, writer.write_batch, [versions])
    batch.start()
    quiet = build_snapshot(client, replace(settings, tip_grace=1.5))
    batch.join()
    assert not [a for a in quiet.anomalies if "tip file" in a], quiet.anomalies

    ahead = writer.new_version(pi)  # never batched
    writer.append()  # an event of a new entity, so the build has something to walk
    loud = build_snapshot(client, replace(settings, tip_grace=0.2))
    assert any(a.startswith(f"{pi}: tip file says {ahead[1]}") and "ahead of every event for more than" in a
               for a in loud.anomalies), loud.anomalies


def test_a_tip_pointing_backwards_is_reported_at_once(client, settings):
    writer = _archive(client, settings, 40, 100)
    build_snapshot(client, settings)
    pi = sorted(read_tips(client, settings.index_root))[0]
    old = client.files_read(f"{settings.index_root}/{pi[:2]}/{pi[2:4]}/{pi}.tip").decode()
    writer.append(pi)
    from arke_dr_pipeline.arke.models import tip_path

    client.files_write(tip_path(pi, settings.index_root), old.encode())
    result = build_snapshot(client, settings)
    assert any(a.startswith(f"{pi}: tip file says {old}") and "points backwards" in a for a in result.anomalies)
