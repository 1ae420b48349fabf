"""Locks follow the conflicts: a restore excludes builds, backups and other
restores however they are started; backups take turns; a failed step leaves
nothing staged; a paused node fails a build within the RPC timeout."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import pytest

from arke_dr_pipeline.defs import defs
from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.backup import inventory as inventory_mod
from arke_dr_pipeline.dr.backup.run import backup
from arke_dr_pipeline.dr.plumbing.files import WriteFailed
from arke_dr_pipeline.dr.plumbing.lock import LockBusy
from arke_dr_pipeline.dr.restore import whole as restore_mod
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.kubo.errors import KuboUnreachable
from arke_dr_pipeline.simulate.testdata import GenSpec, generate, seed_scenario
from arke_dr_pipeline_tests.conftest import make_settings
from arke_dr_pipeline_tests.defs.test_definitions import resources
from arke_dr_pipeline_tests.helpers import backup as full_backup
from arke_dr_pipeline_tests.helpers import restores_paused_before_verifying


def holder(lock_dir: Path, what: str) -> subprocess.Popen:
    """Another process holding a lock, as a CLI run would; it prints once it holds it."""
    code = (f"from pathlib import Path\nfrom arke_dr_pipeline.dr.plumbing import lock\n"
            f"with lock.{what}:\n    print('held', flush=True)\n    input()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_forced_restore_and_a_snapshot_build_never_interleave(client, settings):
    seed_scenario(client, settings, "api")
    car = full_backup(client, settings)
    before = client.files_stat("/")["Hash"]
    build = holder(settings.lock_dir, f"reading_archive(Path({str(settings.lock_dir)!r}), 'snapshot-build')")
    try:
        with pytest.raises(LockBusy, match="is using this archive"):
            restore_mod.restore(client, settings, car, force=True)
        assert client.files_stat("/")["Hash"] == before
    finally:
        build.kill()
        build.wait()
    restoring = holder(settings.lock_dir, f"replacing_archive(Path({str(settings.lock_dir)!r}))")
    try:
        with pytest.raises(LockBusy, match="a restore is replacing this archive"):
            build_snapshot(client, settings)
        with pytest.raises(LockBusy, match="a restore is replacing this archive"):
            backup(client, settings, "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", wait=False)
    finally:
        restoring.kill()
        restoring.wait()


def test_a_dagster_restore_and_a_cli_restore_never_interleave(client, settings, monkeypatch):
    seed_scenario(client, settings, "api")
    car = full_backup(client, settings)
    before = client.files_stat("/")["Hash"]
    job = defs.resolve_job_def("restore_job")
    # a CLI restore holds the lock: the Dagster run fails before any step touches the node
    cli = holder(settings.lock_dir, f"replacing_archive(Path({str(settings.lock_dir)!r}))")
    try:
        result = job.execute_in_process(run_config={"car_path": car.name, "force": True},
                                        resources=resources(settings), raise_on_error=False)
        assert not result.success
        assert client.files_stat("/")["Hash"] == before
    finally:
        cli.kill()
        cli.wait()
    # a Dagster run is inside its steps: a CLI restore is refused until it ends
    inside, release = restores_paused_before_verifying(monkeypatch)
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(job.execute_in_process(
        run_config={"car_path": car.name, "force": True}, resources=resources(settings), raise_on_error=False)))
    thread.start()
    try:
        assert inside.wait(60)
        env = {**os.environ, "IPFS_API_URL": settings.api_url, "SNAPSHOTS_DIR": str(settings.snapshots_dir),
               "BACKUPS_DIR": str(settings.backups_dir), "INDEX_POINTER_PATH": settings.index_pointer_path}
        out = subprocess.run([sys.executable, "-m", "arke_dr_pipeline.cli", "restore", str(car), "--force"],
                             capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 3 and "is using this archive" in out.stderr, out.stderr
    finally:
        release.set()
        thread.join(120)
    assert outcome and outcome[0].success


def test_two_backup_jobs_launched_together_both_succeed(client, settings):
    generate(client, settings, GenSpec(entities=60, seed=3, image_fraction=0.1, shape="api"))
    job = defs.resolve_job_def("backup_job")
    results = []

    def run():
        with dg.DagsterInstance.ephemeral() as instance:
            results.append(job.execute_in_process(resources=resources(settings), instance=instance,
                                                  raise_on_error=False))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(results) == 2 and all(r.success for r in results), [
        e.message for r in results for e in r.all_events if e.is_failure]
    cars = sorted(settings.backups_dir.glob("arke-*.car"))
    assert cars and not list(settings.backups_dir.glob(".*staging*"))


@pytest.mark.parametrize("where", ["inventory", "sidecar"])
def test_a_failed_write_leaves_nothing_staged_and_names_the_file(client, settings, monkeypatch, where):
    seed_scenario(client, settings, "api")
    snap = build_snapshot(client, settings)
    if where == "inventory":
        real = inventory_mod.atomic_file

        def full_disk(path):
            if str(path).endswith(".inventory.tsv"):
                raise WriteFailed(f"writing {path}: No space left on device")
            return real(path)

        monkeypatch.setattr(inventory_mod, "atomic_file", full_disk)
        match = r"writing .*arke-1-\w{8}\.inventory\.tsv: No space left"
    else:
        from arke_dr_pipeline.dr.backup import export as export_mod

        def full_disk(path, obj):
            raise WriteFailed(f"writing {path}: No space left on device")

        monkeypatch.setattr(export_mod, "atomic_write_json", full_disk)
        match = r"writing .*arke-1-.*\.json: No space left"
    with pytest.raises(WriteFailed, match=match):
        backup(client, settings, snap.snapshot_cid)
    left = sorted(p.name for p in settings.backups_dir.iterdir()) if settings.backups_dir.exists() else []
    assert not [n for n in left if n.startswith(".") or n.endswith(".car")], left


@pytest.mark.timeout(120)
def test_a_node_paused_during_the_chain_walk_fails_within_the_rpc_timeout(fresh_kubo, tmp_path, monkeypatch):
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=200, events=2000, seed=4, image_fraction=0.0, shape="mixed"))
    from arke_dr_pipeline.dr.archive import snapshot as snapshot_mod

    real = snapshot_mod.walk_events

    def pausing(*a, **kw):
        for n, item in enumerate(real(*a, **kw)):
            if n == 300:
                os.kill(fresh_kubo.proc.pid, signal.SIGSTOP)
            yield item

    monkeypatch.setattr(snapshot_mod, "walk_events", pausing)
    try:
        with KuboClient(fresh_kubo.api_url, timeout=2, long_timeout=3600) as client, \
                pytest.raises(KuboUnreachable, match="timed out|stopped answering"):
            build_snapshot(client, settings)
    finally:
        os.kill(fresh_kubo.proc.pid, signal.SIGCONT)


@pytest.mark.timeout(240)
def test_a_terminated_export_removes_its_staged_car_and_a_backup_runs_after_it(fresh_kubo, tmp_path):
    """SIGTERM (`docker stop`) in the middle of a full backup's walk, the node paused so it is there."""
    import time

    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=300, events=3000, seed=6, image_fraction=0.0, shape="api"))
        build_snapshot(client, settings)
    env = {**os.environ, "IPFS_API_URL": settings.api_url, "SNAPSHOTS_DIR": str(settings.snapshots_dir),
           "BACKUPS_DIR": str(settings.backups_dir), "INDEX_POINTER_PATH": settings.index_pointer_path,
           "ARKE_PROGRESS": "0"}
    command = [sys.executable, "-m", "arke_dr_pipeline.cli", "export-car", "--full"]
    cli = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    staged: list[Path] = []
    try:
        deadline = time.monotonic() + 120
        while not staged and cli.poll() is None and time.monotonic() < deadline:
            staged = list(settings.backups_dir.glob(".arke-*")) if settings.backups_dir.exists() else []
            time.sleep(0.002)
        assert staged, "the export ended before its staged CAR was seen"
        os.kill(fresh_kubo.proc.pid, signal.SIGSTOP)
        cli.send_signal(signal.SIGTERM)
        _, err = cli.communicate(timeout=60)
    finally:
        os.kill(fresh_kubo.proc.pid, signal.SIGCONT)
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 143 and "arke-dr: error: terminated" in err, err
    assert not list(settings.backups_dir.glob(".arke-*")) and not list(settings.backups_dir.glob("*.car"))
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    assert len(list(settings.backups_dir.glob("arke-*.car"))) == 1
