"""Faults against the real node: killed, paused, a full disk. Nothing lost, nothing half-written."""

import resource
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from arke_dr_pipeline.dr.archive import snapshot as snapshot_mod
from arke_dr_pipeline.dr.archive.pointer import require_pointer
from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.backup import traverse as traverse_mod
from arke_dr_pipeline.dr.backup.export import export_car
from arke_dr_pipeline.dr.backup.inventory import build_inventory
from arke_dr_pipeline.dr.backup.loss import read_loss
from arke_dr_pipeline.dr.backup.pins import pin_set
from arke_dr_pipeline.dr.backup.translog import CIDS, HASHES, STATE
from arke_dr_pipeline.dr.catalog.hashed import RECORD
from arke_dr_pipeline.dr.restore.whole import restore
from arke_dr_pipeline.dr.verify.car import verify_car
from arke_dr_pipeline.dr.verify.dagcheck import BackupInvalid
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.kubo.errors import KuboError, KuboUnreachable
from arke_dr_pipeline.simulate.testdata import GenSpec, generate, seed_scenario
from arke_dr_pipeline.simulate.writer import ArchiveWriter
from arke_dr_pipeline_tests.conftest import make_settings
from arke_dr_pipeline_tests.helpers import backup


def files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def restarted(daemon, settings):
    daemon.start()
    return KuboClient(daemon.api_url), replace(settings, api_url=daemon.api_url)


def _dying(real, daemon, after):
    def wrapper(*args, **kwargs):
        for n, item in enumerate(real(*args, **kwargs)):
            if n == after:
                daemon.kill()
            yield item
    return wrapper


@pytest.mark.parametrize("shape", ["seed", "api"])
def test_node_killed_mid_snapshot(fresh_kubo, tmp_path, monkeypatch, shape):
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=200, events=3000, seed=1, image_fraction=0.0, shape=shape))
        before = require_pointer(client, settings.index_pointer_path).raw
        monkeypatch.setattr(snapshot_mod, "walk_events", _dying(snapshot_mod.walk_events, fresh_kubo, 500))
        with pytest.raises(KuboError):
            build_snapshot(client, settings)
    monkeypatch.undo()
    assert files(settings.snapshots_dir) == [".archive.lock", ".snapshot-build.lock"]
    client, settings = restarted(fresh_kubo, settings)
    with client:
        assert require_pointer(client, settings.index_pointer_path).raw == before
        result = build_snapshot(client, settings)
        assert result.seq == 1 and result.new_events == 3000
    assert "snapshot-1.json" in files(settings.snapshots_dir)


@pytest.mark.parametrize("shape", ["seed", "api"])
def test_node_killed_mid_inventory_and_mid_export(fresh_kubo, tmp_path, monkeypatch, shape):
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=300, seed=2, image_fraction=0.05, shape=shape))
        snap = build_snapshot(client, settings)
        monkeypatch.setattr(traverse_mod, "dag_blocks", _dying(traverse_mod.dag_blocks, fresh_kubo, 200))
        with pytest.raises(KuboError):
            build_inventory(client, settings)
    monkeypatch.undo()
    assert files(settings.backups_dir) == []  # no inventory, no staged CAR, no .partial
    client, settings = restarted(fresh_kubo, settings)
    with client:
        inv = build_inventory(client, settings)
        pin_set(client, snap.snapshot_cid, inv.path)
        # without an inventory the export reads the node itself: killed there too
        monkeypatch.setattr(traverse_mod, "dag_blocks", _dying(traverse_mod.dag_blocks, fresh_kubo, 200))
        with pytest.raises(KuboError):
            export_car(client, settings)
    monkeypatch.undo()
    assert files(settings.backups_dir) == [".arke-1.staging.car", Path(inv.path).name]
    client, settings = restarted(fresh_kubo, settings)
    with client:
        car = export_car(client, settings, inventory=inv.path)
    assert sorted(files(settings.backups_dir)) == sorted(
        [Path(inv.path).name, car.car_path.rsplit("/", 1)[1], car.sidecar_path.rsplit("/", 1)[1],
         CIDS, HASHES, STATE, RECORD])  # the CID log, appended with the backup; the CAR's hash, recorded
    assert verify_car(car.car_path)[0].block_count == inv.block_count


def test_a_staged_car_that_is_not_the_inventorys_is_not_used(client, settings):
    generate(client, settings, GenSpec(entities=40, seed=9, image_fraction=0.0))
    snap = build_snapshot(client, settings)
    inv = build_inventory(client, settings)
    pin_set(client, snap.snapshot_cid, inv.path)
    staged = settings.backups_dir / ".arke-1.staging.car"
    lines = open(inv.path).read().splitlines()
    assert lines[0].startswith("#arke-dr inventory format 1")
    open(inv.path, "w").write("\n".join(lines[:1] + lines[2:]) + "\n")  # the inventory lost a block
    with pytest.raises(BackupInvalid, match="not the inventory's"):
        export_car(client, settings, inventory=inv.path)
    assert not staged.exists() and not list(settings.backups_dir.glob("*.car"))


@pytest.mark.timeout(180)
def test_paused_node_fails_every_operation_with_a_clear_error(fresh_kubo, tmp_path):
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        seed_scenario(client, settings)
        car = backup(client, settings)
        snap_cid = require_pointer(client, settings.index_pointer_path).latest_snapshot_cid
    fresh_kubo.pause()
    try:
        with KuboClient(fresh_kubo.api_url, timeout=1.0, retries=1, backoff=0.01) as client:
            operations = {
                "build-snapshot": lambda: build_snapshot(client, settings),
                "inventory": lambda: build_inventory(client, settings, snap_cid),
                "export": lambda: export_car(client, settings, snap_cid),
                "restore": lambda: restore(client, settings, car, wait_timeout=2),
                "id": client.id,
            }
            for name, op in operations.items():
                with pytest.raises(KuboUnreachable, match="timed out|not ready|stopped answering") as err:
                    op()
                assert str(err.value).count("\n") == 0, name
        out = subprocess.run([sys.executable, "-m", "arke_dr_pipeline.cli", "--api", fresh_kubo.api_url,
                              "--timeout", "1", "doctor"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 4 and out.stderr.count("\n") == 1 and "timed out" in out.stderr
    finally:
        fresh_kubo.resume()
    assert not [p for p in settings.backups_dir.iterdir() if p.name.endswith(".partial")]


def _limit_file_size(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_disk_full_while_writing_the_car(kubo, client, settings):
    generate(client, settings, GenSpec(entities=30, seed=4, image_fraction=0.5))
    build_snapshot(client, settings)
    env = {"IPFS_API_URL": kubo.api_url, "BACKUPS_DIR": str(settings.backups_dir),
           "SNAPSHOTS_DIR": str(settings.snapshots_dir), "INDEX_POINTER_PATH": settings.index_pointer_path,
           "ARKE_PROGRESS": "0", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "arke_dr_pipeline.cli", "export-car"], env=env,
                         capture_output=True, text=True, timeout=120, preexec_fn=_limit_file_size(1 << 20))
    assert out.returncode == 1, out.stderr
    assert out.stderr.count("\n") == 1 and "File too large" in out.stderr
    assert ".car.partial: File too large" in out.stderr  # the file the disk could not take is named
    assert [p.name for p in settings.backups_dir.iterdir() if p.suffix in (".car", ".partial", ".json")] == []
    ok = subprocess.run([sys.executable, "-m", "arke_dr_pipeline.cli", "export-car"], env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.strip().endswith(".car")


def test_a_staged_car_of_another_snapshot_is_passed_over(client, settings):
    generate(client, settings, GenSpec(entities=30, seed=10, image_fraction=0.0))
    first = build_snapshot(client, settings)
    build_inventory(client, settings)
    older = (settings.backups_dir / ".arke-1.staging.car").read_bytes()
    ArchiveWriter(client, settings, seed=3).run(5)
    second = build_snapshot(client, settings)
    inv = build_inventory(client, settings)
    pin_set(client, second.snapshot_cid, inv.path)
    # an older snapshot's staged CAR under this seq's name: not used, the node is read instead
    (settings.backups_dir / f".arke-{second.seq}.staging.car").write_bytes(older)
    car = export_car(client, settings, inventory=inv.path)
    report = verify_car(car.car_path)[0]
    assert report.snapshot_cid == second.snapshot_cid != first.snapshot_cid
    assert report.block_count == inv.block_count


def test_a_lost_image_chunk_is_named_with_the_image_that_links_it(fresh_kubo, tmp_path):
    """An image's chunks are read by Kubo's own walk below its root, which stops at the lost one;
    the rest are asked one by one, and the chunk's image and entity are named (dr/backup/loss.py)."""
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=400, seed=31, image_fraction=0.05, shape="api"))
        build_snapshot(client, settings)
        inventory = build_inventory(client, settings)
        rows = [line.split("\t") for line in Path(inventory.path).read_text().splitlines()[1:]]
        victim = next(cid for cid, kind, codec, size in rows if codec == "raw" and int(size) >= 100_000)
        for cid in client.pin_ls():
            client.request("pin/rm", cid)
        client.request("block/rm", victim)
        for staged in settings.backups_dir.iterdir():
            staged.unlink()
        again = build_inventory(client, settings)
        assert again.block_count == len(rows) - 1
        lost = read_loss(again.path)
        assert [e["cid"] for e in lost] == [victim]
        image = lost[0]["linked_from"]
        assert image and client.block_stat(image) and dict((r[0], r[2]) for r in rows)[image] == "dag-pb"
