"""Two things at once: a writer during builds, a CLI build during a Dagster run, two restores."""

import subprocess
import sys
import threading

import pytest

from arke_dr_pipeline.defs import defs
from arke_dr_pipeline.dr.archive import snapshot as snapshot_mod
from arke_dr_pipeline.dr.archive.event_chain import walk_events
from arke_dr_pipeline.dr.archive.pointer import require_pointer
from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.archive.snapshot_base import load_snapshot
from arke_dr_pipeline.dr.plumbing.lock import LockBusy
from arke_dr_pipeline.dr.restore.whole import restore
from arke_dr_pipeline.ipld.cid import cid_str
from arke_dr_pipeline.simulate.testdata import GenSpec, generate, seed_scenario
from arke_dr_pipeline.simulate.writer import ArchiveWriter
from arke_dr_pipeline_tests.defs.test_definitions import resources
from arke_dr_pipeline_tests.helpers import backup, restores_paused_before_verifying


def cli(settings, *args):
    env = {"IPFS_API_URL": settings.api_url, "SNAPSHOTS_DIR": str(settings.snapshots_dir),
           "BACKUPS_DIR": str(settings.backups_dir), "INDEX_POINTER_PATH": settings.index_pointer_path,
           "ARKE_PROGRESS": "0", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "arke_dr_pipeline.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_writer_appending_1000_events_loses_none(client, settings):
    generate(client, settings, GenSpec(entities=500, events=2000, seed=6, image_fraction=0.0))
    writer = ArchiveWriter(client, settings, seed=1)
    thread = threading.Thread(target=writer.run, args=(1000,))
    thread.start()
    builds = 0
    while thread.is_alive():
        build_snapshot(client, settings, check_tips=False)
        builds += 1
    thread.join()
    final = build_snapshot(client, settings, check_tips=False)
    pointer = require_pointer(client, settings.index_pointer_path)
    chain = [cid_str(c) for c, _ in walk_events(client, pointer.event_head)]
    assert len(writer.appended) == 1000 and set(writer.appended) <= set(chain)
    assert pointer.event_count == 3000 == len(chain) and builds >= 2
    _, entries = load_snapshot(client, final.snapshot_cid)
    assert len(entries) == pointer.total_count


def test_cli_build_during_a_dagster_snapshot_run(client, settings, monkeypatch):
    seed_scenario(client, settings)
    inside, release = threading.Event(), threading.Event()
    real = snapshot_mod.walk_events

    def slow_walk(*a, **kw):
        inside.set()
        release.wait(60)
        yield from real(*a, **kw)

    monkeypatch.setattr(snapshot_mod, "walk_events", slow_walk)
    job = defs.resolve_job_def("snapshot_job")
    results = []
    run = threading.Thread(target=lambda: results.append(job.execute_in_process(resources=resources(settings))))
    run.start()
    try:
        assert inside.wait(60)
        refused = cli(settings, "build-snapshot")
        assert refused.returncode == 3 and "already running" in refused.stderr
        assert refused.stderr.count("\n") == 1
        waiting = subprocess.Popen(
            [sys.executable, "-m", "arke_dr_pipeline.cli", "--api", settings.api_url, "build-snapshot", "--wait"],
            env={"SNAPSHOTS_DIR": str(settings.snapshots_dir), "INDEX_POINTER_PATH": settings.index_pointer_path,
                 "ARKE_PROGRESS": "0", "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        release.set()
        run.join(120)
    out, err = waiting.communicate(timeout=120)
    assert results[0].success and waiting.returncode == 0, err
    pointer = require_pointer(client, settings.index_pointer_path)
    assert pointer.snapshot_seq == 1 and out.strip() == pointer.latest_snapshot_cid
    assert sorted(p.name for p in settings.snapshots_dir.glob("snapshot-*.json")) == ["snapshot-1.json"]


def test_two_restores_at_once(client, settings, monkeypatch):
    seed_scenario(client, settings)
    car = backup(client, settings)
    inside, release = restores_paused_before_verifying(monkeypatch)
    errors = []

    def first():
        try:
            restore(client, settings, car)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert inside.wait(60)
        with pytest.raises(LockBusy, match="a restore, snapshot build or backup is using this archive"):
            restore(client, settings, car)
        second = cli(settings, "restore", car)
        assert second.returncode == 3 and "is using this archive" in second.stderr
    finally:
        release.set()
        thread.join(120)
    assert errors == []
