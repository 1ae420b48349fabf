"""The restore drill on a production-shaped archive: it proves a good backup,
names what a bad one gets wrong, never touches the production node, and
cleans up after a drill that was killed."""

import json
import os
import subprocess
import sys
import time

from arke_dr_pipeline.arke.models import tip_relpath
from arke_dr_pipeline.dr.archive.dump import dump
from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.backup.run import backup as run_backup
from arke_dr_pipeline.dr.restore.drill import drill, drills_dir
from arke_dr_pipeline.ipld.car import CarReader
from arke_dr_pipeline.ipld.cid import cid_str
from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline_tests.helpers import backup, lossy_snapshot


def cli_env(kubo, settings) -> dict:
    return {**os.environ, "IPFS_API_URL": kubo.api_url, "BACKUPS_DIR": str(settings.backups_dir),
            "SNAPSHOTS_DIR": str(settings.snapshots_dir), "INDEX_POINTER_PATH": settings.index_pointer_path,
            "ARKE_PROGRESS": "0"}


def test_a_good_backup_restores_and_the_production_node_is_untouched(client, settings, tmp_path):
    generate(client, settings, GenSpec(entities=120, seed=4, image_fraction=0.05, shape="api"))
    backup(client, settings)
    before = dump(client, settings, tmp_path / "before.dump")
    result = drill(client, settings)
    after = dump(client, settings, tmp_path / "after.dump")
    assert result.ok, result.differences
    assert result.entities == 120 and result.blocks > 120 and result.bytes > 0
    assert set(result.phases) == {"verify", "import", "rebuild", "pointer"} and result.rto_seconds > 0
    assert result.events_not_in_backup == 0 and result.backup_age_seconds < 600
    assert after.sha256 == before.sha256, "the drill changed the production node"
    assert not any(drills_dir(settings).iterdir())


def test_a_block_altered_after_the_sidecar_fails_the_drill_naming_it(client, settings):
    generate(client, settings, GenSpec(entities=30, seed=5, image_fraction=0.0, shape="api"))
    car = backup(client, settings)
    with open(car, "rb") as fh:
        blocks = list(CarReader(fh))
    victim = blocks[len(blocks) // 2]
    data = bytearray(car.read_bytes())
    at = data.find(victim.data)
    data[at + len(victim.data) // 2] ^= 0x01
    car.write_bytes(bytes(data))
    result = drill(client, settings)
    assert not result.ok
    assert result.differences[0].startswith("the backup does not restore") and cid_str(victim.cid) in \
        result.differences[0]


def test_a_snapshot_missing_a_tip_fails_the_drill_naming_the_tip(client, settings):
    generate(client, settings, GenSpec(entities=25, seed=6, image_fraction=0.0, shape="api"))
    bad, lost = lossy_snapshot(client, build_snapshot(client, settings).snapshot_cid, 3)
    run_backup(client, settings, bad)
    result = drill(client, settings)
    assert not result.ok
    assert any(d.startswith(f"tip {tip_relpath(lost.pi)}: only in expected.dump") for d in result.differences), \
        result.differences


def test_a_killed_drill_leaves_nothing_running_after_the_next(client, settings, kubo):
    generate(client, settings, GenSpec(entities=200, seed=7, image_fraction=0.2, shape="api"))
    backup(client, settings)
    env = cli_env(kubo, settings)
    proc = subprocess.Popen([sys.executable, "-m", "arke_dr_pipeline.cli", "drill"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (pids := list(drills_dir(settings).glob("drill-*/kubo.pid"))):
        assert time.monotonic() < deadline and proc.poll() is None, "the drill never started its node"
        time.sleep(0.05)
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    orphan = int(pids[0].read_text())
    os.kill(orphan, 0)  # the scratch node outlived its drill
    result = drill(client, settings)
    assert result.ok
    try:
        os.kill(orphan, 0)
        alive = os.waitpid(orphan, os.WNOHANG) == (0, 0)
    except (ProcessLookupError, ChildProcessError):
        alive = False
    assert not alive, "the orphaned scratch node is still running"
    assert not any(drills_dir(settings).iterdir())


def test_the_cli_drill_prints_rto_and_rpo(client, settings, kubo):
    generate(client, settings, GenSpec(entities=10, seed=8, image_fraction=0.0, shape="api"))
    backup(client, settings)
    env = cli_env(kubo, settings)
    out = subprocess.run([sys.executable, "-m", "arke_dr_pipeline.cli", "drill"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["restores"] and report["entities"] == 10 and report["rto_seconds"] > 0
    assert report["rpo_events"] == 0 and set(report["phases"]) == {"verify", "import", "rebuild", "pointer"}
