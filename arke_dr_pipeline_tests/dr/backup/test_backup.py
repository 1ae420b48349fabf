"""Snapshot, inventory, pinned set, CAR: against a real node, checked by outcome."""

import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from arke_dr_pipeline.arke.models import tip_path
from arke_dr_pipeline.arke.snapshot_codec import decode_snapshot, snapshot_all_cids
from arke_dr_pipeline.arke.upstream_proof import merkle_root
from arke_dr_pipeline.dr.archive.criteria import verify_snapshot
from arke_dr_pipeline.dr.archive.event_chain import walk_events
from arke_dr_pipeline.dr.archive.pointer import require_pointer
from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.archive.snapshot_base import load_snapshot
from arke_dr_pipeline.dr.backup.export import export_car
from arke_dr_pipeline.dr.backup.inventory import build_inventory, inventory_cids
from arke_dr_pipeline.dr.backup.run import backup as run_backup
from arke_dr_pipeline.dr.plumbing.lock import LockBusy, exclusive
from arke_dr_pipeline.dr.verify.car import verify_car
from arke_dr_pipeline.dr.verify.dagcheck import BackupInvalid
from arke_dr_pipeline.ipld.car import CarReader, car_header, car_section
from arke_dr_pipeline.ipld.cid import cid_str, parse_cid
from arke_dr_pipeline.simulate.testdata import SEED_PIS, GenSpec, generate, seed_scenario
from arke_dr_pipeline.simulate.writer import ArchiveWriter


def backup(client, settings):
    snap = build_snapshot(client, settings)
    result = run_backup(client, settings, snap.snapshot_cid)
    return snap, result.inventory, result.car


def test_seed_snapshot_entries_exactly(client, settings):
    gen = seed_scenario(client, settings)
    snap = build_snapshot(client, settings)
    header, entries = load_snapshot(client, snap.snapshot_cid)
    assert header.schema == "arke/snapshot@v2" and header.seq == 1  # upstream's, published in the pointer
    assert sorted(entries) == sorted(SEED_PIS)
    proven = snapshot_all_cids(client.block_get(snap.snapshot_cid))
    assert header.extra == {"merkle_root": merkle_root(sorted(proven)), "cid_count": len(proven)}
    assert {cid_str(e.tip_cid) for e in entries.values()} | {cid_str(e.chain_cid) for e in entries.values()} <= proven

    assert {pi: (e.ver, cid_str(e.tip_cid)) for pi, e in entries.items()} == {
        SEED_PIS[0]: (3, gen.tips[SEED_PIS[0]]), SEED_PIS[1]: (2, gen.tips[SEED_PIS[1]]),
        SEED_PIS[2]: (1, gen.tips[SEED_PIS[2]])}
    pointer = require_pointer(client, settings.index_pointer_path)
    assert pointer.latest_snapshot_cid == snap.snapshot_cid and pointer.snapshot_seq == 1
    assert (settings.snapshots_dir / "snapshot-1.json").exists()
    assert (settings.snapshots_dir / "latest.json").exists()
    report = verify_snapshot(client, settings.index_pointer_path)
    assert report["ok"] and report["entity_count"] == 3 and report["bytes_per_entity"] < 500
    assert snap.anomalies == []


@pytest.mark.parametrize("shape, chunked", [("seed", False), ("mixed", False), ("api", False), ("api", True)])
def test_incremental_equals_full(client, settings, monkeypatch, shape, chunked):
    if chunked:  # chunks of ~10 entries: the incremental build reuses the bytes of unchanged entries
        from arke_dr_pipeline.arke import snapshot_codec

        settings = replace(settings, publish="record")  # chunked snapshots stay in our record

        monkeypatch.setattr(snapshot_codec, "BLOCK_LIMIT", 8192)
        monkeypatch.setattr(snapshot_codec, "CHUNK_TARGET", 2048)
    generate(client, settings, GenSpec(entities=150, events=400, seed=11, image_fraction=0.0, shape=shape))
    first = build_snapshot(client, settings)
    ArchiveWriter(client, settings, seed=3, shape="seed" if shape == "seed" else "api").run(120)
    from arke_dr_pipeline.dr.archive import snapshot_base

    with monkeypatch.context() as m:
        if chunked:  # every entry of the previous snapshot is taken as its bytes, none decoded
            m.setattr(snapshot_base, "decode_chunk_block", None)
        second = build_snapshot(client, settings)
    assert second.incremental and second.new_events == 120 and second.seq == 2
    # a full build of the same chain, from scratch, in a copy of the archive
    name = f"/arke-full-{shape}{'-chunked' if chunked else ''}"
    full_settings = replace(settings, index_pointer_path=f"{name}/index-pointer",
                            snapshots_dir=settings.snapshots_dir / "full")
    pointer = require_pointer(client, settings.index_pointer_path)
    pointer.raw.update({"latest_snapshot_cid": None})
    client.files_cp(settings.index_root, full_settings.index_root)
    client.files_write(full_settings.index_pointer_path, pointer.encode())
    full = build_snapshot(client, full_settings)
    assert not full.incremental and full.new_events == 520
    inc_header, inc_entries = load_snapshot(client, second.snapshot_cid)
    full_header, full_entries = load_snapshot(client, full.snapshot_cid)
    assert inc_entries == full_entries and len(full_entries) == pointer.total_count
    assert inc_header.chunks == full_header.chunks and (len(full_header.chunks) > 10 if chunked else True)
    assert first.snapshot_cid != second.snapshot_cid


def test_car_holds_exactly_the_inventory(client, settings):
    generate(client, settings, GenSpec(entities=200, seed=4, image_fraction=0.05))
    snap, inv, car = backup(client, settings)
    with open(car.car_path, "rb") as fh:
        reader = CarReader(fh)
        cids = sorted(cid_str(b.cid) for b in reader)
    assert cids == list(inventory_cids(inv.path))
    assert inv.blocks_by_role["events"] == inv.event_count
    assert inv.blocks_by_role["snapshots"] == 1 and inv.entity_count == 200
    report, _ = verify_car(car.car_path)
    assert report.snapshot_cid == snap.snapshot_cid
    assert report.sha256 == car.sha256 and report.block_count == len(cids)
    assert not list(Path(settings.backups_dir).glob("*.partial"))
    client.repo_gc()  # the pinned set keeps every block of the inventory, whatever its links
    assert len(list(client.get_blocks(cids))) == len(cids)
    # the second inventory only grows
    ArchiveWriter(client, settings).run(10)
    snap2 = build_snapshot(client, settings)
    inv2 = build_inventory(client, settings, snap2.snapshot_cid)
    assert inv2.removed == 0 and inv2.added >= 21


def _blocks(path):
    with open(path, "rb") as fh:
        reader = CarReader(fh, verify=False)
        return reader.roots, [(b.cid, b.data) for b in reader]


def _write(path, roots, blocks):
    with open(path, "wb") as fh:
        fh.write(car_header(roots))
        for cid, data in blocks:
            fh.write(car_section(cid, data))


@pytest.fixture
def seed_car(client, settings):
    seed_scenario(client, settings)
    _, _, car = backup(client, settings)
    return Path(car.car_path)


def _role_index(blocks, role):
    from arke_dr_pipeline.dr.verify.dagcheck import DagCheck

    check = DagCheck([])
    for i, (cid, data) in enumerate(blocks):
        if check.add(cid, data) == role and (role != "components" or cid[1] == 0x55):
            return i
    raise AssertionError(role)


def test_verify_car_names_the_bad_block(seed_car, tmp_path):
    roots, blocks = _blocks(seed_car)
    size = seed_car.stat().st_size
    cut = tmp_path / "cut.car"
    cut.write_bytes(seed_car.read_bytes()[: size - 100])
    with pytest.raises(BackupInvalid, match="truncated CAR"):
        verify_car(cut, use_sidecar=False)

    i = _role_index(blocks, "manifests")
    flipped = list(blocks)
    data = bytearray(flipped[i][1])
    data[len(data) // 2] ^= 0x01
    flipped[i] = (flipped[i][0], bytes(data))
    _write(tmp_path / "flip.car", roots, flipped)
    with pytest.raises(BackupInvalid, match=cid_str(blocks[i][0])):
        verify_car(tmp_path / "flip.car", use_sidecar=False)

    for role in ("components", "events"):
        i = _role_index(blocks, role)
        _write(tmp_path / f"no-{role}.car", roots, blocks[:i] + blocks[i + 1:])
        with pytest.raises(BackupInvalid, match=f"{cid_str(blocks[i][0])}: block missing"):
            verify_car(tmp_path / f"no-{role}.car", use_sidecar=False)


def test_second_build_refused_and_kill9_leaves_no_stale_lock(client, settings, tmp_path):
    seed_scenario(client, settings)
    with exclusive(settings.lock_dir, "snapshot-build"), pytest.raises(LockBusy, match="already running"):
        build_snapshot(client, settings)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from arke_dr_pipeline.dr.plumbing.lock import exclusive\n"
        f"with exclusive(Path({str(settings.lock_dir)!r}), 'snapshot-build'):\n"
        "    print('held', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(LockBusy):
        build_snapshot(client, settings)
    holder.kill()
    holder.wait()
    assert build_snapshot(client, settings).seq == 1


def test_events_appended_during_build_stay_reachable(client, settings):
    generate(client, settings, GenSpec(entities=300, events=1500, seed=8, image_fraction=0.0))
    writer = ArchiveWriter(client, settings, seed=12)
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(400,), kwargs={"stop": stop})
    thread.start()
    built = []
    try:
        time.sleep(0.2)
        for _ in range(3):
            built.append(build_snapshot(client, settings, check_tips=False))
            car = export_car(client, settings, built[-1].snapshot_cid)
            assert car.snapshot_cid == built[-1].snapshot_cid  # the snapshot it was handed, not a re-read pointer
    finally:
        thread.join(120)
    # the writer rewrote the pointer it read before our builds: snapshot fields may be stale now
    final = build_snapshot(client, settings, check_tips=False)
    seqs = [b.seq for b in [*built, final] if b.created]
    assert seqs == sorted(set(seqs)) and final.seq == max(b.seq for b in built) + (1 if final.created else 0)
    pointer = require_pointer(client, settings.index_pointer_path)
    assert pointer.latest_snapshot_cid == final.snapshot_cid and pointer.event_head == writer.head
    reachable = {cid_str(c) for c, _ in walk_events(client, final.event_cid)}
    assert set(writer.appended) <= reachable and len(writer.appended) == 400
    report, _ = verify_car(backup(client, settings)[2].car_path)
    assert report.event_count == 1900 and report.snapshot_cid == final.snapshot_cid


def test_big_archive_snapshot_is_chunked(client, settings, capfd):
    settings = replace(settings, publish="auto", inline_max_entities=4999)
    generate(client, settings, GenSpec(entities=5000, seed=2, image_fraction=0.0))
    snap = build_snapshot(client, settings, check_tips=False)
    assert snap.schema == "arke-dr/snapshot-chunked@v1" and snap.entity_count == 5000 and not snap.published
    assert snap.anomalies == [] and "past ARKE_INLINE_MAX_ENTITIES (4999)" in capfd.readouterr().err
    assert require_pointer(client, settings.index_pointer_path).latest_snapshot_cid is None
    header = decode_snapshot(client.block_get(snap.snapshot_cid))
    assert len(header.chunks) >= 2
    assert verify_snapshot(client, settings.index_pointer_path, snap.snapshot_cid)["ok"]


def test_disagreements_are_reported_not_chosen(client, settings):
    gen = seed_scenario(client, settings)
    wrong = gen.tips[SEED_PIS[1]]
    client.files_write(f"{settings.index_root}/EN/TI/{SEED_PIS[0]}.tip", (wrong + "\n").encode())
    snap = build_snapshot(client, settings)
    assert snap.anomalies == [
        f"{SEED_PIS[0]}: tip file says {wrong}, newest event says {gen.tips[SEED_PIS[0]]}: "
        f"a manifest of {SEED_PIS[1]}"]
    _, entries = load_snapshot(client, snap.snapshot_cid)
    assert cid_str(entries[SEED_PIS[0]].tip_cid) == gen.tips[SEED_PIS[0]]


def test_incremental_audits_the_touched_tips_and_full_rebuild_matches(client, settings):
    generate(client, settings, GenSpec(entities=200, events=500, seed=12, image_fraction=0.0))
    first = build_snapshot(client, settings)
    writer = ArchiveWriter(client, settings, seed=4)
    writer.run(50)
    touched = sorted({e.pi for _, e in walk_events(client, require_pointer(
        client, settings.index_pointer_path).event_head, first.event_cid)})
    _, before = load_snapshot(client, first.snapshot_cid)
    untouched = next(pi for pi in sorted(before) if pi not in touched)
    wrong = cid_str(before[untouched].tip_cid)
    client.files_write(tip_path(touched[0], settings.index_root), (wrong + "\n").encode())
    client.files_rm(tip_path(touched[1], settings.index_root))
    second = build_snapshot(client, settings)
    assert second.incremental and second.new_events == 50
    _, entries = load_snapshot(client, second.snapshot_cid)
    assert second.anomalies == [
        f"{touched[0]}: tip file says {wrong}, newest event says {cid_str(entries[touched[0]].tip_cid)}: "
        f"a manifest of {untouched}",
        f"{touched[1]}: no tip file"]

    full = build_snapshot(client, settings, full=True)
    assert not full.incremental and full.seq == 3 and full.new_events == 550 and full.event_count == 550
    _, rebuilt = load_snapshot(client, full.snapshot_cid)
    assert rebuilt == entries
    assert decode_snapshot(client.block_get(full.snapshot_cid)).prev_snapshot == parse_cid(second.snapshot_cid)
    # the full build audits every tip file, and finds the same two
    assert sorted(full.anomalies) == sorted(second.anomalies)
