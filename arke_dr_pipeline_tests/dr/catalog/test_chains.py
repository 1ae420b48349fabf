"""Delta backups: each holds only what its snapshot adds; a chain verifies and
restores as one archive, and a missing or altered link refuses the restore."""

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.backup.export import export_car
from arke_dr_pipeline.dr.backup.inventory import build_inventory
from arke_dr_pipeline.dr.backup.run import backup as run_backup
from arke_dr_pipeline.dr.catalog.chains import ChainPolicy, chain_of
from arke_dr_pipeline.dr.restore.whole import restore
from arke_dr_pipeline.dr.verify.car import verify_car
from arke_dr_pipeline.dr.verify.dagcheck import BackupInvalid
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline.simulate.writer import ArchiveWriter
from arke_dr_pipeline_tests.conftest import make_settings
from arke_dr_pipeline_tests.helpers import dump_digest


def _backup(client, settings, **kw):
    snap = build_snapshot(client, settings)
    return run_backup(client, settings, snap.snapshot_cid, **kw).car


@pytest.fixture
def chain(fresh_kubo, tmp_path):
    """A full and two deltas of a production-shaped archive; the digest each restore must give."""
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    cars, expected = [], []
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=120, seed=3, image_fraction=0.05, shape="api"))
        writer = ArchiveWriter(client, settings, seed=4)
        for _ in range(3):
            car = _backup(client, settings)
            cars.append(car)
            expected.append(dump_digest(client, settings, _path(car)))
            writer.run(25)
    return fresh_kubo, settings, cars, expected


def _path(car):
    return Path(car.car_path)


def test_deltas_hold_only_what_changed_and_the_chain_restores(chain):
    node, settings, cars, expected = chain
    full, d1, d2 = cars
    assert [c.kind for c in cars] == ["full", "delta", "delta"]
    assert d1.size < full.size / 5 and d2.size < full.size / 5
    assert d2.sidecar["base"]["file"] == _path(d1).name and d1.sidecar["base"]["file"] == _path(full).name
    assert [p.name for p in chain_of(_path(d2))] == [_path(c).name for c in cars]
    report, _ = verify_car(d2.car_path)  # a delta verifies with its chain
    assert report.block_count == d2.block_count and report.snapshot_cid == d2.snapshot_cid
    node.wipe()
    settings = replace(settings, api_url=node.api_url)
    with KuboClient(node.api_url) as client:
        restore(client, settings, d2.car_path)
        assert dump_digest(client, settings) == expected[2]
        restore(client, settings, d2.car_path, seq=d1.seq, force=True)  # an older snapshot across the chain
        assert dump_digest(client, settings) == expected[1]


@pytest.mark.parametrize("fault", ["missing", "altered", "no sidecar"])
def test_a_broken_link_refuses_the_restore_naming_it(chain, fault):
    node, settings, cars, _ = chain
    full, d1, d2 = (_path(c) for c in cars)
    if fault == "missing":
        shutil.move(d1, d1.with_name("elsewhere.car"))
        says = f"extends {d1.name}, which is missing"
    elif fault == "no sidecar":  # it used to say only "block missing ...; 751 missing in all"
        d2.with_suffix(".json").unlink()
        says = f"block missing .*; {d2.with_suffix('.json').name} is missing, and a delta's sidecar is what names"
    else:
        data = bytearray(full.read_bytes())
        data[len(data) // 2] ^= 0xFF
        full.write_bytes(bytes(data))
        says = f"{full.name} is not the backup {d1.name} extends"
    node.wipe()
    with KuboClient(node.api_url) as client:
        with pytest.raises(BackupInvalid, match=says):
            restore(client, replace(settings, api_url=node.api_url), d2)
        assert client.files_stat("/arke") is None


def test_choosing_a_base_hashes_each_car_once_and_reading_the_chain_hashes_every_byte(chain, monkeypatch):
    """Restic's trade: the choice of a delta's base trusts a hash of the same file (inode, size, time)
    taken as it was written; a rewritten CAR is hashed again, and any read of the chain as data hashes
    all of it, so a flip that keeps the file's time is refused where it would do harm."""
    from arke_dr_pipeline.dr.catalog import hashed
    from arke_dr_pipeline.dr.catalog.chains import full_due

    _node, _settings, cars, _ = chain
    full, _d1, d2 = (_path(c) for c in cars)
    hashes: list[str] = []
    real = hashed.sha256_file
    monkeypatch.setattr(hashed, "sha256_file", lambda p: hashes.append(p.name) or real(p))
    assert full_due(d2, ChainPolicy()) is None and hashes == []  # recorded as each backup wrote its CAR
    data = bytearray(full.read_bytes())
    data[len(data) // 2] ^= 0xFF
    before = full.stat()
    with open(full, "r+b") as fh:  # in place, its time put back: a disk's rot, not a rewrite
        fh.write(data)
    os.utime(full, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert full_due(d2, ChainPolicy()) is None and hashes == []
    with pytest.raises(BackupInvalid, match=f"{full.name} is not the backup"):
        verify_car(d2)
    full.write_bytes(bytes(data))  # rewritten: a new time
    assert f"{full.name} is not the backup" in full_due(d2, ChainPolicy()) and hashes == [full.name]


def test_a_full_when_asked_or_when_the_chain_is_long(client, settings):
    generate(client, settings, GenSpec(entities=30, seed=8, image_fraction=0.0, shape="api"))
    writer = ArchiveWriter(client, settings, seed=1)
    kinds = []
    policy = ChainPolicy(max_chain=2, max_ratio=10.0)
    for i in range(5):
        snap = build_snapshot(client, settings)
        inv = build_inventory(client, settings, snap.snapshot_cid)
        car = export_car(client, settings, snap.snapshot_cid, inventory=inv.path, full=i == 4, policy=policy)
        kinds.append((car.kind, car.full_reason))
        writer.run(3)
    assert [k for k, _ in kinds] == ["full", "delta", "delta", "full", "full"]
    assert "no earlier backup" in kinds[0][1] and "2 deltas" in kinds[3][1] and kinds[4][1] == "asked for"
    sidecars = sorted(settings.backups_dir.glob("arke-*.json"))
    assert [json.loads(p.read_text())["kind"] for p in sidecars] == [k for k, _ in kinds]
    assert not list(settings.backups_dir.glob(".*")), "a staged or temporary file was left behind"


def test_a_delta_killed_midway_lists_nothing_and_the_next_run_completes(client, settings, monkeypatch):
    from arke_dr_pipeline.dr.backup import export

    generate(client, settings, GenSpec(entities=30, seed=9, image_fraction=0.0, shape="api"))
    full = _backup(client, settings)
    ArchiveWriter(client, settings, seed=2).run(5)

    def killed(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "verify_delta", killed)  # after the delta CAR is written, before its sidecar
    with pytest.raises(KeyboardInterrupt):
        _backup(client, settings)
    monkeypatch.undo()
    assert [p.name for p in settings.backups_dir.glob("arke-*.json")] == [_path(full).with_suffix(".json").name]
    leftovers = [settings.backups_dir / ".arke-2-20261129T000000Z.delta.car", settings.backups_dir /
                 ".arke-2.staging.car", settings.backups_dir / ".arke-2-20261129T000000Z.car"]
    for p in leftovers:  # what a SIGKILL would have left
        p.write_bytes(b"x" * 1000)
    delta = _backup(client, settings)
    assert delta.kind == "delta" and verify_car(delta.car_path)[0].snapshot_cid == delta.snapshot_cid
    assert not any(p.exists() for p in leftovers)


def test_a_delta_inventory_reads_only_new_blocks_and_equals_a_full_pass(client, settings, tmp_path):
    from arke_dr_pipeline.dr.backup.run import take_inventory

    generate(client, settings, GenSpec(entities=80, seed=10, image_fraction=0.05, shape="api"))
    _backup(client, settings)
    ArchiveWriter(client, settings, seed=3).run(12)
    snap = build_snapshot(client, settings)
    calls = dict(client.calls)
    inc = take_inventory(client, settings, snap.snapshot_cid)
    read = client.calls.get("block/get", 0) - calls.get("block/get", 0)
    assert inc.base is not None and inc.new_blocks < 80 and read < 200, (inc.new_blocks, read)
    incremental = Path(inc.path).read_text()
    full = build_inventory(client, settings, snap.snapshot_cid)  # the same file, by the whole walk
    assert Path(full.path).read_text() == incremental and full.block_count == inc.block_count
    assert (full.entity_count, full.event_count) == (inc.entity_count, inc.event_count)
    for totals in ("blocks_by_role", "bytes_by_role", "blocks_by_codec"):  # the base's counted from its sidecar
        theirs, ours = getattr(full, totals), getattr(inc, totals)
        assert {k: v for k, v in theirs.items() if v} == {k: v for k, v in ours.items() if v}, totals


def test_a_full_asked_after_a_delta_inventory_reads_the_node_and_leaves_nothing_staged(client, settings):
    from arke_dr_pipeline.dr.backup.run import take_inventory

    generate(client, settings, GenSpec(entities=20, seed=13, image_fraction=0.0, shape="api"))
    _backup(client, settings)
    ArchiveWriter(client, settings, seed=6).run(4)
    snap = build_snapshot(client, settings)
    inv = take_inventory(client, settings, snap.snapshot_cid)
    assert inv.base is not None
    car = export_car(client, settings, snap.snapshot_cid, inventory=inv.path, full=True)
    assert car.kind == "full" and verify_car(car.car_path)[0].block_count == inv.block_count
    assert not list(settings.backups_dir.glob(".*")), "a staged delta was left behind"
