"""Retention: the GFS policy keeps what it says, never a base a kept delta
needs, and a prune cut short leaves every listed backup restorable."""

import json
import unittest.mock as mock
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.backup.export import export_car
from arke_dr_pipeline.dr.backup.inventory import build_inventory
from arke_dr_pipeline.dr.backup.pins import pin_set
from arke_dr_pipeline.dr.backup.run import backup as run_backup
from arke_dr_pipeline.dr.catalog.chains import ChainPolicy, chain_of
from arke_dr_pipeline.dr.catalog.order import STAMP
from arke_dr_pipeline.dr.catalog.retention import Backup, RetentionPolicy, choose, prune, prune_local
from arke_dr_pipeline.dr.verify.car import verify_car
from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline.simulate.writer import ArchiveWriter


def _b(name, days_ago, kind="full", base=None, hour=2):
    t = datetime(2026, 11, 29, hour, tzinfo=UTC) - timedelta(days=days_ago)
    return Backup(name=name, time=t, seq=1000 - days_ago, kind=kind, base=base, size=1, inventory=None)


def test_gfs_keeps_last_daily_weekly_monthly_and_every_base_a_kept_delta_needs():
    daily = [_b(f"d{i}", i, kind="delta" if i % 7 else "full", base=f"d{i - i % 7 + 7}" if i % 7 else None)
             for i in range(0, 400)]
    keep = choose(daily, RetentionPolicy(last=3, daily=5, weekly=4, monthly=3))
    names = {f"d{i}" for i in range(5)}  # last 3 and 5 days
    assert names <= keep
    by_name = {b.name: b for b in daily}
    for name in keep:  # every kept delta has its whole chain
        cur = by_name[name]
        while cur.base:
            assert cur.base in keep
            cur = by_name[cur.base]
    assert len(keep) < 40 and "d399" not in keep


@pytest.fixture
def week_of_backups(client, settings):
    """A full and six deltas, their sidecars dated a day apart."""
    generate(client, settings, GenSpec(entities=40, seed=2, image_fraction=0.0, shape="api"))
    writer = ArchiveWriter(client, settings, seed=5)
    cars = []
    for day in range(7):
        snap = build_snapshot(client, settings)
        inv = build_inventory(client, settings, snap.snapshot_cid)
        pin_set(client, snap.snapshot_cid, inv.path)
        car = export_car(client, settings, snap.snapshot_cid, inventory=inv.path,
                         policy=ChainPolicy(max_chain=10, max_ratio=10))
        sidecar = Path(car.sidecar_path)
        meta = json.loads(sidecar.read_text())
        meta["timestamp"] = (datetime(2026, 11, 23, 2, tzinfo=UTC) + timedelta(days=day)).strftime(STAMP)
        sidecar.write_text(json.dumps(meta))
        cars.append(Path(car.car_path))
        writer.run(4)
    return cars


def _listed_are_restorable(backups_dir: Path) -> None:
    for sidecar in backups_dir.glob("arke-*.json"):
        car = sidecar.with_suffix(".car")
        assert car.exists(), f"{sidecar.name} lists a CAR that is gone"
        verify_car(car)  # the whole chain present and intact


def test_prune_keeps_the_chain_the_newest_delta_needs(week_of_backups, settings, client):
    cars = week_of_backups
    result = prune_local(settings.backups_dir, RetentionPolicy(last=1, daily=0, weekly=0, monthly=0))
    assert set(result.kept) == {c.name for c in chain_of(cars[-1])} == {c.name for c in cars}
    assert result.deleted == []
    _listed_are_restorable(settings.backups_dir)


def test_prune_deletes_a_whole_old_chain_newest_first(client, settings, week_of_backups):
    cars = week_of_backups
    snap = build_snapshot(client, settings)
    inv = build_inventory(client, settings, snap.snapshot_cid)
    pin_set(client, snap.snapshot_cid, inv.path)
    fresh = export_car(client, settings, snap.snapshot_cid, inventory=inv.path, full=True)
    unlisted = []
    unlink, rename = Path.unlink, Path.rename

    def watched_unlink(path, missing_ok=False):
        _listed_are_restorable(settings.backups_dir)  # at every moment
        return unlink(path, missing_ok=missing_ok)

    def watched_rename(path, target):
        unlisted.append(path.name)
        return rename(path, target)

    with mock.patch.object(Path, "unlink", watched_unlink), mock.patch.object(Path, "rename", watched_rename):
        out = prune(client, settings, RetentionPolicy(last=1, daily=0, weekly=0, monthly=0))
    assert out["local"]["deleted"] == [c.name for c in reversed(cars)]
    assert unlisted == [c.with_suffix(".json").name for c in reversed(cars)]  # newest first: deltas before bases
    assert {p.name for p in settings.backups_dir.glob("arke-*.car")} == {Path(fresh.car_path).name}
    assert out["pins_removed"] >= 1
    assert {n for n in client.pin_names().values() if n.startswith("arke-dr ")} == {f"arke-dr {snap.snapshot_cid}"}
    _listed_are_restorable(settings.backups_dir)


def test_a_prune_cut_short_leaves_every_listed_backup_restorable_and_the_next_completes(
        client, settings, week_of_backups):
    snap = build_snapshot(client, settings)
    inv = build_inventory(client, settings, snap.snapshot_cid)
    export_car(client, settings, snap.snapshot_cid, inventory=inv.path, full=True)
    calls = {"n": 0}
    original = Path.unlink

    def dies(path, missing_ok=False):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # killed midway
        return original(path, missing_ok=missing_ok)

    policy = RetentionPolicy(last=1, daily=0, weekly=0, monthly=0)
    with mock.patch.object(Path, "unlink", dies), pytest.raises(KeyboardInterrupt):
        prune_local(settings.backups_dir, policy)
    _listed_are_restorable(settings.backups_dir)
    prune_local(settings.backups_dir, policy)
    assert len(list(settings.backups_dir.glob("arke-*.car"))) == 1
    _listed_are_restorable(settings.backups_dir)


def test_prune_keeps_the_last_backup_holding_a_block_newer_ones_lack(client, settings):
    """A block the archive lost after the first backup: the newer full lacks it,
    and the older backup, its last copy, is held back and named."""
    generate(client, settings, GenSpec(entities=30, seed=4, image_fraction=0.0, shape="api"))
    writer = ArchiveWriter(client, settings, seed=6)
    cars = []
    for _ in range(2):
        snap = build_snapshot(client, settings)
        cars.append(Path(run_backup(client, settings, snap.snapshot_cid, full=True).car.car_path))
        writer.run(3)
    newest_inv = settings.backups_dir / json.loads(cars[1].with_suffix(".json").read_text())["inventory"]
    rows = newest_inv.read_text().splitlines(keepends=True)
    lost = next(r for r in rows if "\tmanifests\t" in r)
    newest_inv.write_text("".join(r for r in rows if r != lost))  # as if the node had lost that manifest
    result = prune_local(settings.backups_dir, RetentionPolicy(last=1, daily=0, weekly=0, monthly=0))
    assert result.deleted == [] and cars[0].exists()
    assert result.held == {cars[0].name: f"holds {lost.split()[0]}, which no newer backup holds: kept"}
    newest_inv.write_text("".join(rows))  # repaired: the old backup goes
    assert prune_local(settings.backups_dir, RetentionPolicy(last=1, daily=0, weekly=0, monthly=0)).deleted == \
        [cars[0].name]


def test_a_backup_stamped_a_year_ahead_does_not_stay_newest(client, settings):
    """The clock jumped while the second backup was made: later backups still extend the newest,
    prune keeps the newest, and the skewed stamp is named."""
    from arke_dr_pipeline.dr.catalog.freshness import newest_backup, stamped_ahead

    generate(client, settings, GenSpec(entities=30, seed=12, image_fraction=0.0, shape="api"))
    writer = ArchiveWriter(client, settings, seed=6)
    cars = []
    for i in range(4):
        cars.append(Path(run_backup(client, settings, build_snapshot(client, settings).snapshot_cid).car.car_path))
        if i == 1:
            sidecar = cars[-1].with_suffix(".json")
            meta = json.loads(sidecar.read_text())
            meta["timestamp"] = (datetime.now(UTC) + timedelta(days=365)).strftime(STAMP)
            sidecar.write_text(json.dumps(meta))
        writer.run(3)
    assert newest_backup(settings.backups_dir)[0] == cars[-1]
    kinds = [json.loads(c.with_suffix(".json").read_text())["kind"] for c in cars]
    assert kinds == ["full", "delta", "delta", "delta"]  # each extends the one made before it
    assert stamped_ahead(settings.backups_dir) == [f"{cars[1].name} (stamped "
                                                   f"{json.loads(cars[1].with_suffix('.json').read_text())['timestamp']})"]
    result = prune(client, settings, RetentionPolicy(last=1, daily=0, weekly=0, monthly=0))
    assert result["local"]["deleted"] == []  # the newest is a delta: its whole chain stays
    assert all(c.exists() for c in cars)
    _listed_are_restorable(settings.backups_dir)


def test_prune_never_deletes_the_backup_of_the_newest_snapshot(client, settings):
    """Even when the policy would: a second backup of an older snapshot made later ranks newer."""
    generate(client, settings, GenSpec(entities=20, seed=13, image_fraction=0.0, shape="api"))
    first = build_snapshot(client, settings).snapshot_cid
    ArchiveWriter(client, settings, seed=7).run(3)
    newest = build_snapshot(client, settings).snapshot_cid
    mine = Path(run_backup(client, settings, newest, full=True).car.car_path)
    older = Path(run_backup(client, settings, first, full=True).car.car_path)
    result = prune(client, settings, RetentionPolicy(last=1, daily=0, weekly=0, monthly=0))
    assert mine.exists() and older.exists() and result["local"]["deleted"] == []
