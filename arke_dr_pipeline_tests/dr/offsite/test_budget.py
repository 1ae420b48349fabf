"""ARKE_LOCAL_BUDGET_GB: past the budget, the oldest chains leave the folder, but only the ones
whose every backup has a verified offsite copy; the newest chain and the only copies stay."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.backup.run import backup as run_backup
from arke_dr_pipeline.dr.catalog.freshness import listed_backups
from arke_dr_pipeline.dr.catalog.retention import RetentionPolicy, prune
from arke_dr_pipeline.dr.offsite.copy import OffsiteTarget, S3Config, upload_backup
from arke_dr_pipeline.dr.offsite.reread import list_copies
from arke_dr_pipeline.dr.restore.fetch import discard, fetch
from arke_dr_pipeline.dr.verify.car import verify_car
from arke_dr_pipeline.errors import BadInput
from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline.simulate.writer import ArchiveWriter
from arke_dr_pipeline_tests.helpers import backup

KEEP_ALL = RetentionPolicy(last=50)


@pytest.fixture
def three_backups(client, settings, s3, bucket):
    """A full and its delta, then a newer full: (full, delta, newest), and settings that copy offsite."""
    generate(client, settings, GenSpec(entities=30, seed=21, image_fraction=0.1))
    full = backup(client, settings)
    ArchiveWriter(client, settings, seed=4, shape="api").run(20)
    delta = backup(client, settings)
    ArchiveWriter(client, settings, seed=5, shape="api").run(20)
    newest = Path(run_backup(client, settings, build_snapshot(client, settings).snapshot_cid, full=True).car.car_path)
    assert [p.name for p, _ in sorted(listed_backups(settings.backups_dir))] == \
        sorted([full.name, delta.name, newest.name])
    return full, delta, newest, replace(settings, offsite_url=f"s3://{bucket}/daily")


def _offsite(s3, settings) -> S3Config:
    return S3Config.from_env(s3.env())


def test_over_budget_the_oldest_chain_is_kept_offsite_only(client, s3, three_backups, monkeypatch, tmp_path):
    full, delta, newest, settings = three_backups
    target = OffsiteTarget.parse(settings.offsite_url)
    for car in (full, delta):
        upload_backup(_offsite(s3, settings), target, car)
    snapshot_of_delta = json.loads(delta.with_suffix(".json").read_text())["snapshot_cid"]
    monkeypatch.setenv("ARKE_LOCAL_BUDGET_GB", "0.000001")  # 1 kB: everything is over

    planned = prune(client, settings, KEEP_ALL, s3=_offsite(s3, settings), dry_run=True)
    assert planned["local"]["offsite_only"] == [delta.name, full.name] and full.exists() and delta.exists()

    out = prune(client, settings, KEEP_ALL, s3=_offsite(s3, settings))
    assert out["local"]["offsite_only"] == [delta.name, full.name]  # a delta leaves before its base
    assert not full.exists() and not delta.exists() and not full.with_suffix(".json").exists()
    assert newest.exists() and {p.name for p, _ in listed_backups(settings.backups_dir)} == {newest.name}
    assert out["local"]["budget"]["used_bytes"] > out["local"]["budget"]["after_bytes"]
    assert out["local"]["deleted"] == [] and out["offsite"]["deleted"] == []

    copies = {row["url"].rsplit("/", 1)[-1]: row for row in list_copies(_offsite(s3, settings), target)}
    assert copies[delta.name]["verified"] and copies[full.name]["verified"]
    elsewhere = tmp_path / "restore-here"
    elsewhere.mkdir()
    staged = fetch(_offsite(s3, settings), target.url(target.key(delta.name)), elsewhere)
    report, _ = verify_car(staged)  # the chain restores from offsite alone
    assert report.snapshot_cid == snapshot_of_delta
    discard(staged)


def test_a_chain_without_every_copy_offsite_stays_and_is_named(client, s3, three_backups, monkeypatch):
    full, delta, newest, settings = three_backups
    upload_backup(_offsite(s3, settings), OffsiteTarget.parse(settings.offsite_url), full)  # not the delta
    monkeypatch.setenv("ARKE_LOCAL_BUDGET_GB", "0.000001")
    out = prune(client, settings, KEEP_ALL, s3=_offsite(s3, settings))
    assert out["local"]["offsite_only"] == [] and full.exists() and delta.exists() and newest.exists()
    assert out["local"]["budget"]["stuck"] == {full.name: f"{delta.name} has no verified offsite copy"}


def test_without_offsite_nothing_leaves_and_a_bad_budget_is_one_line(client, three_backups, monkeypatch):
    full, delta, newest, settings = three_backups
    monkeypatch.setenv("ARKE_LOCAL_BUDGET_GB", "0.000001")
    out = prune(client, replace(settings, offsite_url=None), KEEP_ALL)
    assert out["local"]["offsite_only"] == [] and all(p.exists() for p in (full, delta, newest))
    assert "no verified offsite copy" in out["local"]["budget"]["stuck"][full.name]
    monkeypatch.setenv("ARKE_LOCAL_BUDGET_GB", "lots")
    with pytest.raises(BadInput, match="ARKE_LOCAL_BUDGET_GB"):
        prune(client, settings, KEEP_ALL)
    monkeypatch.setenv("ARKE_LOCAL_BUDGET_GB", "off")
    assert prune(client, settings, KEEP_ALL)["local"]["budget"] == {}
