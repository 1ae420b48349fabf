"""A delta checked as a delta when it is written; pins that cost the change;
an archive that no longer grows out of the newest backup gets a full."""

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.backup.delta import verify_delta
from arke_dr_pipeline.dr.backup.inventory import inventory_cids
from arke_dr_pipeline.dr.backup.pins import cover_name
from arke_dr_pipeline.dr.backup.run import backup as run_backup
from arke_dr_pipeline.dr.catalog.retention import RetentionPolicy, prune
from arke_dr_pipeline.dr.catalog.sidecar import read_sidecar
from arke_dr_pipeline.dr.restore.whole import restore
from arke_dr_pipeline.dr.verify.car import verify_car
from arke_dr_pipeline.dr.verify.dagcheck import BackupInvalid
from arke_dr_pipeline.ipld.car import CarReader
from arke_dr_pipeline.ipld.cid import parse_cid
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline.simulate.writer import ArchiveWriter
from arke_dr_pipeline_tests.conftest import make_settings
from arke_dr_pipeline_tests.helpers import dump_digest

TEST_DATA_PIN = "arke archive (test data)"


def _backup(client, settings, **kw):
    snap = build_snapshot(client, settings)
    return run_backup(client, settings, snap.snapshot_cid, **kw)


@pytest.fixture(params=["in-memory", "spilled"])
def delta(client, settings, tmp_path, request):
    """A full and a delta of it, copied aside to be spoiled: (delta, base, inventory, snapshot CID).
    Spilled: every backup and check with its CIDs on disk, as at 10x."""
    if request.param == "spilled":
        request.getfixturevalue("spilled")
    generate(client, settings, GenSpec(entities=40, seed=21, image_fraction=0.05, shape="api"))
    full = _backup(client, settings).car
    ArchiveWriter(client, settings, seed=22).run(8)
    d = _backup(client, settings)
    assert d.car.kind == "delta"
    aside = tmp_path / "aside"
    aside.mkdir()
    for p in [Path(full.car_path), Path(d.car.car_path)]:
        for f in (p, p.with_suffix(".json"), settings.backups_dir / read_sidecar(p)["inventory"]):
            shutil.copy(f, aside / f.name)
    car, base = aside / Path(d.car.car_path).name, aside / Path(full.car_path).name
    return car, base, aside / Path(d.inventory.path).name, d.car.snapshot_cid


def _rows(path):
    """The rows, without the header line (`#arke-dr inventory format 1 ...`)."""
    header, *rows = path.read_text().splitlines(keepends=True)
    assert header.startswith("#arke-dr inventory format 1")
    return rows


HEADER = "#arke-dr inventory format 1\tcid\trole\tcodec\tsize\n"


def test_a_sound_delta_reports_the_chain_it_completes(delta, monkeypatch):
    car, base, inventory, snapshot = delta
    from arke_dr_pipeline.dr.backup import delta as module

    monkeypatch.setattr(module, "_merge", None)  # the inventory is the base's bytes plus the delta's: no merge
    report, new = verify_delta(car, base, inventory, snapshot_cid=snapshot)
    assert report.block_count == len(_rows(inventory)) == read_sidecar(base)["block_count"] + len(new)
    assert (report.sha256, report.size) == (read_sidecar(car)["sha256"], car.stat().st_size)
    assert report.event_count == read_sidecar(car)["event_count"] == read_sidecar(base)["event_count"] + 8


@pytest.mark.parametrize("where", ["base", "base and inventory"])
def test_a_link_to_a_block_the_base_does_not_hold_is_refused(delta, where):
    """Gone from the base alone, the inventory is no longer its bytes plus the delta's (the merge
    answers); gone from both, it still is, and the search of the base answers."""
    car, base, inventory, snapshot = delta
    with open(car, "rb") as fh:
        linked = {c for b in CarReader(fh) for c in _links(b)}
    base_rows = base.parent / read_sidecar(base)["inventory"]
    rows = _rows(base_rows)
    gone = next(r for r in rows if parse_cid(r.split("\t")[0]) in linked)
    base_rows.write_text(HEADER + "".join(r for r in rows if r != gone))
    if where == "base and inventory":
        inventory.write_text(HEADER + "".join(r for r in _rows(inventory) if r != gone))
    with pytest.raises(BackupInvalid, match=f"neither in the delta nor in {base_rows.name}"):
        verify_delta(car, base, inventory, snapshot_cid=snapshot)


def _links(block):
    from arke_dr_pipeline.ipld.cid import split_cid
    from arke_dr_pipeline.ipld.links import block_links

    return block_links(split_cid(block.cid)[1], block.data)


def test_an_inventory_that_is_not_base_plus_delta_is_refused(delta):
    car, base, inventory, snapshot = delta
    with open(car, "rb") as fh:
        ours = next(iter(CarReader(fh))).cid
    inventory.write_text(HEADER + "".join(r for r in _rows(inventory) if parse_cid(r.split("\t")[0]) != ours))
    with pytest.raises(BackupInvalid, match="is not .* plus the blocks of"):
        verify_delta(car, base, inventory, snapshot_cid=snapshot)


def test_an_altered_block_of_the_delta_is_refused(delta):
    car, base, inventory, snapshot = delta
    data = bytearray(car.read_bytes())
    data[-10] ^= 0x01
    car.write_bytes(bytes(data))
    with pytest.raises(BackupInvalid, match=car.name):
        verify_delta(car, base, inventory, snapshot_cid=snapshot)


def test_delta_covers_keep_every_block_through_gc_and_prune(fresh_kubo, tmp_path):
    """With the generator's own pin gone, only our covers hold the archive: a delta's cover
    names its own blocks and leans on its chain's, and prune keeps what the newest chain needs."""
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=50, seed=23, image_fraction=0.05, shape="api"))
        writer = ArchiveWriter(client, settings, seed=24)
        backups = [_backup(client, settings)]
        for _ in range(2):
            writer.run(6)
            backups.append(_backup(client, settings))
        assert [b.pins["kind"] for b in backups] == ["full", "delta", "delta"]
        assert backups[2].pins["present"] == backups[2].car.sidecar["delta_block_count"]
        for cid, name in client.pin_names().items():
            if name == TEST_DATA_PIN:
                client.pin_rm(cid)

        def all_held(b):
            client.repo_gc()
            cids = [parse_cid(t) for t in inventory_cids(b.inventory.path)]
            return len(list(client.get_blocks(cids))) == len(cids)

        assert all_held(backups[2])
        keep_one = RetentionPolicy(last=1, daily=0, weekly=0, monthly=0)
        assert prune(client, settings, keep_one)["pins_removed"] == 0  # the newest delta needs its chain's covers
        assert all_held(backups[2])
        writer.run(3)
        fresh = _backup(client, settings, full=True)
        out = prune(client, settings, keep_one)
        assert out["pins_removed"] == 3 and len(out["local"]["deleted"]) == 3
        assert {n for n in client.pin_names().values() if n.startswith("arke-dr ")} == {
            cover_name(fresh.car.snapshot_cid)}
        assert all_held(fresh)


def test_an_archive_restored_from_an_older_backup_gets_a_full(fresh_kubo, tmp_path):
    """The newest backup is of a snapshot the archive no longer grows out of: a delta of it would
    restore blocks nothing links to, so the backup is a full, and it restores."""
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=40, seed=25, image_fraction=0.05, shape="api"))
        old = _backup(client, settings).car
        ArchiveWriter(client, settings, seed=26).run(5)
        assert _backup(client, settings).car.kind == "delta"
        restore(client, settings, old.car_path, force=True)
        ArchiveWriter(client, settings, seed=27).run(5)
        after = _backup(client, settings).car
        assert after.kind == "full" and "does not descend from the base's snapshot" in after.full_reason
        expected = dump_digest(client, settings)
        assert verify_car(after.car_path)[0].snapshot_cid == after.snapshot_cid
    fresh_kubo.wipe()
    with KuboClient(fresh_kubo.api_url) as client:
        restore(client, replace(settings, api_url=fresh_kubo.api_url), after.car_path)
        assert dump_digest(client, settings) == expected


def test_a_link_into_the_delta_must_name_a_block_of_the_role_it_needs(delta):
    """A tip naming one of the delta's events, not a manifest, is refused even though the block is there."""
    from arke_dr_pipeline.dr.backup.delta import _Edge, _read

    car, *_ = delta
    check, _sha = _read(car)
    event = next(iter(check.events))
    edge = _Edge(check, {})
    edge.need(event, "events", "chain_cid of X")
    with pytest.raises(BackupInvalid, match="tip of X is not a block of manifests: it is an event"):
        edge.need(event, "manifests", "tip of X")


def test_a_backup_with_nothing_new_writes_nothing(client, settings):
    """It used to write an empty delta at the same seq, using up a slot of the chain."""
    generate(client, settings, GenSpec(entities=20, seed=17, image_fraction=0.0, shape="api"))
    snapshot = build_snapshot(client, settings).snapshot_cid
    first = run_backup(client, settings, snapshot).car
    files = sorted(p.name for p in settings.backups_dir.iterdir())
    again = run_backup(client, settings, build_snapshot(client, settings).snapshot_cid).car
    assert again.unchanged and again.car_path == first.car_path and again.sha256 == first.sha256
    assert sorted(p.name for p in settings.backups_dir.iterdir()) == files
    forced = run_backup(client, settings, snapshot, full=True).car  # asked for: a second full is made
    assert not forced.unchanged and forced.car_path != first.car_path and forced.kind == "full"
