"""Offsite copies against a real S3 server (versitygw) the suite builds and starts:
the nuclear test from the bucket alone, and every fault one line, nothing lost."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest

from arke_dr_pipeline.dr.catalog.freshness import listed_backups
from arke_dr_pipeline.dr.offsite import copy as offsite
from arke_dr_pipeline.dr.offsite.copy import OffsiteError, OffsiteTarget, S3Config, upload_backup
from arke_dr_pipeline.dr.offsite.reread import list_copies, verify_copy
from arke_dr_pipeline.dr.restore.fetch import fetch, promote
from arke_dr_pipeline.dr.restore.whole import restore
from arke_dr_pipeline.dr.verify.car import verify_car
from arke_dr_pipeline.dr.verify.dagcheck import BackupInvalid
from arke_dr_pipeline.errors import BadInput
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.simulate.testdata import GenSpec, generate, seed_scenario
from arke_dr_pipeline_tests.conftest import make_settings
from arke_dr_pipeline_tests.helpers import backup, logical_dump
from arke_dr_pipeline_tests.s3server import SECRET, S3Server


def config(s3: S3Server, **kw) -> S3Config:
    return S3Config.from_env(s3.env(), **kw)


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "arke_dr_pipeline.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600)


def test_nuclear_from_the_offsite_copy_alone(fresh_kubo, tmp_path, s3, bucket):
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    env = {**s3.env(), "IPFS_API_URL": fresh_kubo.api_url, "BACKUPS_DIR": str(settings.backups_dir),
           "SNAPSHOTS_DIR": str(settings.snapshots_dir), "ARKE_OFFSITE_URL": f"s3://{bucket}/daily",
           "ARKE_PROGRESS": "0"}
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=300, seed=5, image_fraction=0.05))
        assert cli(env, "build-snapshot").returncode == 0
        out = cli(env, "export-car")  # the CLI backup goes offsite when ARKE_OFFSITE_URL is set
        assert out.returncode == 0, out.stderr
        before = logical_dump(client, settings)
    listed = cli(env, "offsite", "list")
    assert listed.returncode == 0, listed.stderr
    (row,) = listed.stdout.splitlines()
    seq, _time, size, verified, url = row.split("\t")
    assert verified.startswith("verified 20") and url.startswith(f"s3://{bucket}/daily/arke-") and int(size) > 0
    shutil.rmtree(settings.backups_dir)  # the host is gone: no local backup, an empty node
    fresh_kubo.wipe()
    env["IPFS_API_URL"] = fresh_kubo.api_url
    restored = cli(env, "restore", url)
    assert restored.returncode == 0, restored.stderr
    with KuboClient(fresh_kubo.api_url) as client:
        assert logical_dump(client, replace(settings, api_url=fresh_kubo.api_url)) == before
    assert not list(settings.backups_dir.glob(".*download")), "a temporary download was left behind"
    assert SECRET not in restored.stdout + restored.stderr + listed.stdout + listed.stderr


def test_upload_verifies_lists_and_reruns_do_nothing(s3, bucket, local_backup):
    target = OffsiteTarget(bucket, "p")
    first = upload_backup(config(s3), target, local_backup)
    assert not first.already_there and first.bytes == local_backup.stat().st_size
    again = upload_backup(config(s3), target, local_backup)
    assert again.already_there
    (row,) = list_copies(config(s3), target)
    assert row["verified"] and row["size"] == first.bytes
    assert verify_copy(config(s3), row["url"])["verified"]
    keys = {o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {f"p/{local_backup.name}", f"p/{local_backup.stem}.json", f"p/{local_backup.stem}.inventory.tsv"}


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_a_damaged_copy_is_refused_by_verify_and_restore(s3, bucket, local_backup, client, settings, damage):
    target = OffsiteTarget(bucket, "")
    upload_backup(config(s3), target, local_backup)
    url = target.url(local_backup.name)
    stored = s3.object_path(bucket, local_backup.name)
    data = bytearray(stored.read_bytes())
    if damage == "truncated":
        del data[len(data) // 2:]
    else:
        data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    with pytest.raises(OffsiteError, match=local_backup.name):
        verify_copy(config(s3), url)
    elsewhere = settings.backups_dir.parent / "restore-here"
    with pytest.raises(OffsiteError, match="refused"):
        fetch(config(s3), url, elsewhere)
    assert list(elsewhere.iterdir()) == [], "a damaged download was kept"


def _tamper(s3, bucket: str, car_name: str) -> str:
    """A copy altered with its sidecar to match: the download's hash check passes, verification does not."""
    import hashlib

    stored = s3.object_path(bucket, car_name)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    side = s3.object_path(bucket, car_name[: -len(".car")] + ".json")
    meta = json.loads(side.read_text())
    meta.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    side.write_text(json.dumps(meta))
    return meta["sha256"]


def test_a_tampered_copy_never_replaces_the_local_backup(s3, bucket, local_backup, client, settings):
    target = OffsiteTarget(bucket, "")
    upload_backup(config(s3), target, local_backup)
    theirs = _tamper(s3, bucket, local_backup.name)
    car_bytes, sidecar_bytes = local_backup.read_bytes(), local_backup.with_suffix(".json").read_bytes()
    ours = json.loads(sidecar_bytes)["sha256"]
    with pytest.raises(OffsiteError, match=f"sha256 {ours[:16]}.*sha256 {theirs[:16]}.*differ"):
        fetch(config(s3), target.url(local_backup.name), settings.backups_dir)
    assert local_backup.read_bytes() == car_bytes and local_backup.with_suffix(".json").read_bytes() == sidecar_bytes
    verify_car(local_backup)
    assert not list(settings.backups_dir.glob(".offsite-fetch-*"))


def test_a_failed_restore_from_s3_leaves_nothing_listed(fresh_kubo, s3, bucket, local_backup, tmp_path):
    target = OffsiteTarget(bucket, "")
    upload_backup(config(s3), target, local_backup)
    _tamper(s3, bucket, local_backup.name)
    elsewhere = make_settings(fresh_kubo.api_url, tmp_path / "new-host")
    env = {**s3.env(), "IPFS_API_URL": fresh_kubo.api_url, "BACKUPS_DIR": str(elsewhere.backups_dir),
           "SNAPSHOTS_DIR": str(elsewhere.snapshots_dir), "ARKE_PROGRESS": "0"}
    out = cli(env, "restore", target.url(local_backup.name))
    assert out.returncode == 5 and "do not hash to their CID" in out.stderr, out.stderr
    assert list(listed_backups(elsewhere.backups_dir)) == []
    assert [p.name for p in elsewhere.backups_dir.iterdir()] == []
    with KuboClient(fresh_kubo.api_url) as node:
        assert node.files_stat("/arke") is None


def test_restore_from_s3_with_the_same_local_copy_downloads_nothing_and_lists_it_once(
        fresh_kubo, s3, bucket, local_backup, settings):
    target = OffsiteTarget(bucket, "")
    upload_backup(config(s3), target, local_backup)
    before = sorted(p.name for p in settings.backups_dir.iterdir())
    env = {**s3.env(), "IPFS_API_URL": fresh_kubo.api_url, "BACKUPS_DIR": str(settings.backups_dir),
           "SNAPSHOTS_DIR": str(settings.snapshots_dir), "INDEX_POINTER_PATH": settings.index_pointer_path}
    out = cli(env, "restore", target.url(local_backup.name))
    assert out.returncode == 0, out.stderr
    assert "not downloaded" in out.stderr and json.loads(out.stdout)["car"] == str(local_backup)
    assert sorted(p.name for p in settings.backups_dir.iterdir()) == before


def test_a_copy_without_its_sidecar_is_named_by_the_sidecar(s3, bucket, local_backup, settings):
    """It used to read `...car: no such object`, while the CAR was there."""
    target = OffsiteTarget(bucket, "")
    upload_backup(config(s3), target, local_backup)
    s3.client().delete_object(Bucket=bucket, Key=local_backup.stem + ".json")
    with pytest.raises(OffsiteError, match=rf"{local_backup.stem}\.json: no such sidecar"):
        fetch(config(s3), target.url(local_backup.name), settings.backups_dir.parent / "elsewhere")


def test_verified_means_a_re_read_matched_and_an_upload_repairs_a_damaged_copy(s3, bucket, local_backup):
    """`list` used to say verified after comparing sizes; `upload` answered already_there over a damaged copy."""
    target = OffsiteTarget(bucket, "")
    upload_backup(config(s3), target, local_backup)
    (row,) = list_copies(config(s3), target)
    assert row["verified"] and row["verified_at"]
    stored = s3.object_path(bucket, local_backup.name)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    with pytest.raises(OffsiteError, match="is not its sidecar's CAR"):
        verify_copy(config(s3), row["url"])
    again = upload_backup(config(s3), target, local_backup)
    assert not again.already_there  # replaced, after saying so
    assert stored.read_bytes() == local_backup.read_bytes()
    assert verify_copy(config(s3), row["url"])["verified"]


def test_a_delta_whose_base_is_not_offsite_is_not_verified(fresh_kubo, tmp_path, s3, bucket):
    from arke_dr_pipeline.simulate.writer import ArchiveWriter

    settings = make_settings(fresh_kubo.api_url, tmp_path)
    target = OffsiteTarget(bucket, "d")
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=30, seed=23, image_fraction=0.0, shape="api"))
        full = backup(client, settings)
        ArchiveWriter(client, settings, seed=3).run(5)
        delta = backup(client, settings)
    assert json.loads(delta.with_suffix(".json").read_text())["kind"] == "delta"
    upload_backup(config(s3), target, delta)  # its base never went
    (row,) = list_copies(config(s3), target)
    assert not row["verified"] and f"{full.name} is not offsite" in row["problem"]
    with pytest.raises(OffsiteError, match="no such sidecar"):
        verify_copy(config(s3), row["url"])
    assert verify_copy(config(s3), row["url"], chain=False)["chain"] == [row["url"]]  # a slice reads the CAR alone
    upload_backup(config(s3), target, full)
    assert all(r["verified"] for r in list_copies(config(s3), target))
    assert verify_copy(config(s3), row["url"])["chain"] == [row["url"], target.url(target.key(full.name))]


def test_only_a_car_that_verifies_goes_offsite(s3, bucket, local_backup, tmp_path):
    forged = tmp_path / local_backup.name
    forged.write_bytes(b"not a CAR at all")
    meta = json.loads(local_backup.with_suffix(".json").read_text())
    import hashlib

    meta.update(sha256=hashlib.sha256(forged.read_bytes()).hexdigest(), size=forged.stat().st_size)
    forged.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(BackupInvalid):
        upload_backup(config(s3), OffsiteTarget(bucket, ""), forged)
    assert "Contents" not in s3.client().list_objects_v2(Bucket=bucket)


def test_keys_with_question_marks_and_hashes_round_trip(s3, bucket, local_backup, settings):
    target = OffsiteTarget.parse(f"s3://{bucket}/we?ird#prefix")
    assert target.prefix == "we?ird#prefix"
    upload_backup(config(s3), target, local_backup)
    (row,) = list_copies(config(s3), target)
    assert row["url"] == f"s3://{bucket}/we?ird#prefix/{local_backup.name}"
    assert verify_copy(config(s3), row["url"])["verified"]
    staged = fetch(config(s3), row["url"], settings.backups_dir.parent / "elsewhere")
    assert staged.read_bytes() == local_backup.read_bytes()
    for bad in ("s3://", "s3:///key", "s3://UPPER/x", "http://b/x", "s3://b\n/x", "s3://bucket/a\nb"):
        with pytest.raises(BadInput):
            OffsiteTarget.parse(bad)


def test_a_subset_verify_rotates_over_every_copy_and_records_each_result(s3, bucket, local_backup, settings):
    from arke_dr_pipeline.dr.offsite.sampling import RECORD, verify_subset

    target = OffsiteTarget(bucket, "sub")
    upload_backup(config(s3), target, local_backup)
    other = local_backup.with_name(local_backup.name.replace(".car", "-2.car"))
    shutil.copy(local_backup, other)
    shutil.copy(local_backup.with_suffix(".json"), other.with_suffix(".json"))
    upload_backup(config(s3), target, other)
    seen = []
    for n in (1, 2, 3):
        result = verify_subset(config(s3), target, n, 3, settings.backups_dir)
        assert result["failed"] == []
        seen += [json.loads(line)["url"] for line in (settings.backups_dir / RECORD).read_text().splitlines()]
        (settings.backups_dir / RECORD).unlink()
    assert sorted(seen) == sorted(r["url"] for r in list_copies(config(s3), target))  # each copy once in 3 runs
    stored = s3.object_path(bucket, f"sub/{other.name}")
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    env = {**s3.env(), "BACKUPS_DIR": str(settings.backups_dir), "ARKE_PROGRESS": "0"}
    outcomes = [cli(env, "offsite", "verify", f"s3://{bucket}/sub", "--subset", f"{n}/3") for n in (1, 2, 3)]
    assert sorted(o.returncode for o in outcomes) == [0, 0, 7]
    (bad,) = [o for o in outcomes if o.returncode == 7]
    assert other.name in bad.stderr and "do not verify" in bad.stderr
    records = [json.loads(line) for line in (settings.backups_dir / RECORD).read_text().splitlines()]
    assert sorted(r["ok"] for r in records) == [False, True] and all(r["time"] for r in records)


def test_object_lock_keeps_copies_and_chains_from_deletion_and_prune_says_so(tmp_path, client, settings):
    """ARKE_OFFSITE_LOCK_DAYS: every object locked; a delta's base retained as long as the delta;
    a version cannot be deleted; prune keeps what is still locked and names it."""
    from datetime import UTC, datetime

    from botocore.exceptions import ClientError

    from arke_dr_pipeline.dr.catalog.retention import RetentionPolicy, prune_offsite
    from arke_dr_pipeline.dr.offsite.objectlock import LockPolicy
    from arke_dr_pipeline.simulate.writer import ArchiveWriter

    server = S3Server(tmp_path / "locked-s3", versioning=True).start()
    try:
        s3c = server.client()
        s3c.create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
        cfg = S3Config.from_env(server.env())
        target = OffsiteTarget("locked", "p")
        generate(client, settings, GenSpec(entities=30, seed=27, image_fraction=0.0, shape="api"))
        full = backup(client, settings)
        ArchiveWriter(client, settings, seed=4).run(5)
        delta = backup(client, settings)
        ArchiveWriter(client, settings, seed=5).run(5)
        from pathlib import Path

        from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
        from arke_dr_pipeline.dr.backup.run import backup as run_backup

        newest = Path(run_backup(client, settings, build_snapshot(client, settings).snapshot_cid, full=True)
                      .car.car_path)  # a full: the policy (last=1) would drop the older chain
        assert json.loads(delta.with_suffix(".json").read_text())["kind"] == "delta"
        upload_backup(cfg, target, full, lock=LockPolicy(days=1))
        upload_backup(cfg, target, delta, lock=LockPolicy(days=3))
        upload_backup(cfg, target, newest, lock=LockPolicy(days=1))
        heads = {c.name: s3c.head_object(Bucket="locked", Key=f"p/{c.name}") for c in (full, delta)}
        assert heads[full.name]["ObjectLockMode"] == "GOVERNANCE"
        assert heads[full.name]["ObjectLockRetainUntilDate"] >= heads[delta.name]["ObjectLockRetainUntilDate"]
        remote = json.loads(s3c.get_object(Bucket="locked", Key=f"p/{delta.stem}.json")["Body"].read())
        assert remote["offsite"]["lock_mode"] == "GOVERNANCE" and remote["offsite"]["retain_until"]
        with pytest.raises(ClientError, match="AccessDenied|object lock"):
            s3c.delete_object(Bucket="locked", Key=f"p/{full.name}", VersionId=heads[full.name]["VersionId"])
        pruned = prune_offsite(cfg, target, RetentionPolicy(last=1, daily=0, weekly=0, monthly=0))
        assert pruned.deleted == [] and set(pruned.held) == {full.name, delta.name}, pruned
        assert all("locked offsite until" in why for why in pruned.held.values())
        assert {r["url"].rsplit("/", 1)[1] for r in list_copies(cfg, target)} == {full.name, delta.name, newest.name}
        assert all(r["verified"] for r in list_copies(cfg, target))
        assert datetime.now(UTC) < heads[full.name]["ObjectLockRetainUntilDate"]
    finally:
        server.stop()
    prune_cfg = S3Config.from_env(server.env()).for_prune({"ARKE_PRUNE_AWS_ACCESS_KEY_ID": "pruner",
                                                         "ARKE_PRUNE_AWS_SECRET_ACCESS_KEY": "other"})
    assert prune_cfg.access_key_id == "pruner" and prune_cfg.endpoint_url == server.endpoint


def test_one_catalog_over_the_folder_and_the_prefix(s3, bucket, client, settings):
    """The same backups, the same order and chains, from either store; dry-run and read-only wrap both."""
    from arke_dr_pipeline.dr.catalog.stores import Catalog, DryRun, LocalStore, ReadOnly, S3Store, StoreRefused
    from arke_dr_pipeline.simulate.writer import ArchiveWriter

    generate(client, settings, GenSpec(entities=20, seed=29, image_fraction=0.0, shape="api"))
    cars = []
    for i in range(3):
        cars.append(backup(client, settings))
        upload_backup(config(s3), OffsiteTarget(bucket, "cat"), cars[-1])
        ArchiveWriter(client, settings, seed=30 + i).run(3)
    local = Catalog(LocalStore(settings.backups_dir))
    remote = Catalog(S3Store(config(s3), OffsiteTarget(bucket, "cat")))
    assert [b.name for b in local.backups()] == [b.name for b in remote.backups()] == [c.name for c in cars]
    assert local.newest().name == remote.newest().name == cars[-1].name
    assert [b.name for b in remote.chain(cars[-1].name)] == [c.name for c in cars]  # a full and two deltas
    newest = local.newest()
    with pytest.raises(StoreRefused, match="read-only"):
        Catalog(ReadOnly(LocalStore(settings.backups_dir))).store.remove(newest)
    assert DryRun(S3Store(config(s3), OffsiteTarget(bucket, "cat"))).remove(newest) > newest.size  # + inventory
    assert DryRun(LocalStore(settings.backups_dir)).remove(newest) == newest.size
    assert [b.name for b in remote.backups()] == [c.name for c in cars] and cars[-1].exists()


def test_bad_credentials_missing_bucket_and_no_server_are_one_line_each(s3, bucket, local_backup, tmp_path):
    before = local_backup.read_bytes()
    cases = {
        "wrong secret": (config(s3, secret_access_key="wrong"), OffsiteTarget(bucket, ""), "refused the credentials"),
        "missing bucket": (config(s3), OffsiteTarget("no-such-bucket", ""), "bucket does not exist"),
        "no server": (config(s3, endpoint_url="http://127.0.0.1:9"), OffsiteTarget(bucket, ""), "unreachable"),
    }
    for name, (cfg, target, says) in cases.items():
        with pytest.raises(OffsiteError, match=says) as exc:
            upload_backup(cfg, target, local_backup)
        assert "\n" not in str(exc.value) and SECRET not in str(exc.value) and "wrong" not in str(exc.value), name
    assert local_backup.read_bytes() == before
    env = {**s3.env(), "AWS_SECRET_ACCESS_KEY": "wrong-secret-value", "ARKE_PROGRESS": "0"}
    out = cli(env, "offsite", "upload", str(local_backup), "--to", f"s3://{bucket}/x")
    assert out.returncode == 7 and out.stderr.count("\n") == 1 and "refused the credentials" in out.stderr
    assert "wrong-secret-value" not in out.stderr + out.stdout
    out = cli(s3.env(), "restore", f"s3://{bucket}/nothing-here.car")
    assert out.returncode == 7 and out.stderr.count("\n") == 1, out.stderr


def test_server_killed_mid_upload_leaves_no_object_and_the_next_run_uploads(tmp_path, client, settings,
                                                                           monkeypatch):
    generate(client, settings, GenSpec(entities=60, seed=12, image_fraction=0.5, image_min=400_000,
                                       image_max=900_000))
    car = backup(client, settings)
    assert car.stat().st_size > 20_000_000, "the CAR must be big enough to be cut mid-upload"
    server = S3Server(tmp_path / "s3").start()
    server.client().create_bucket(Bucket="killed")
    target = OffsiteTarget("killed", "k")
    failure: list[BaseException] = []

    def upload():
        try:
            upload_backup(S3Config.from_env(server.env()), target, car)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failure.append(exc)

    monkeypatch.setattr(offsite, "PART", 5 << 20)  # many parts: the kill lands mid-upload
    worker = threading.Thread(target=upload)
    worker.start()
    uploads = server.data / "killed" / ".sgwtmp"
    deadline = time.monotonic() + 60
    while not any(server.data.rglob("*part*")) and not (uploads.exists() and any(uploads.rglob("*"))):
        assert time.monotonic() < deadline, "the upload never started"
        time.sleep(0.01)
    server.stop(signal.SIGKILL)
    worker.join(300)
    assert failure and isinstance(failure[0], OffsiteError), failure
    server = S3Server(server.root).start()  # the same folder, a new port
    keys = {o["Key"] for o in server.client().list_objects_v2(Bucket="killed").get("Contents", [])}
    assert f"k/{car.name}" not in keys and f"k/{car.stem}.json" not in keys, keys
    done = upload_backup(S3Config.from_env(server.env()), target, car)
    assert not done.already_there and verify_copy(S3Config.from_env(server.env()), target.url(done.car_key))
    assert not server.client().list_multipart_uploads(Bucket="killed").get("Uploads")
    server.stop()


def test_restore_job_restores_from_s3(fresh_kubo, tmp_path, s3, bucket):
    from arke_dr_pipeline.defs import defs
    from arke_dr_pipeline.defs.resources import OffsiteResource
    from arke_dr_pipeline_tests.defs.test_definitions import resources

    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        seed_scenario(client, settings)
        car = backup(client, settings)
        before = logical_dump(client, settings)
    target = OffsiteTarget(bucket, "job")
    upload_backup(config(s3), target, car)
    shutil.rmtree(settings.backups_dir)
    fresh_kubo.wipe()
    settings = replace(settings, api_url=fresh_kubo.api_url)
    env = s3.env()
    offsite = OffsiteResource(endpoint_url=env["AWS_ENDPOINT_URL"], access_key_id=env["AWS_ACCESS_KEY_ID"],
                              secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    result = defs.resolve_job_def("restore_job").execute_in_process(
        run_config={"car_path": target.url(target.key(car.name))},
        resources={**resources(settings), "offsite": offsite})
    assert result.success
    with KuboClient(fresh_kubo.api_url) as client:
        assert logical_dump(client, settings) == before


def test_backup_job_copies_offsite_and_checks_the_copy(s3, bucket, client, settings):
    import dagster as dg

    from arke_dr_pipeline.defs import defs
    from arke_dr_pipeline.defs.resources import OffsiteResource
    from arke_dr_pipeline_tests.defs.test_definitions import check_results, resources

    generate(client, settings, GenSpec(entities=30, seed=3, image_fraction=0.1))
    env = s3.env()
    offsite = OffsiteResource(url=f"s3://{bucket}/dagster", endpoint_url=env["AWS_ENDPOINT_URL"],
                              access_key_id=env["AWS_ACCESS_KEY_ID"], secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    result = defs.resolve_job_def("backup_job").execute_in_process(
        resources={**resources(settings), "offsite": offsite}, instance=dg.DagsterInstance.ephemeral())
    assert result.success and check_results(result)["offsite_matches_local"]
    meta = result.asset_materializations_for_node("offsite_copy")[0].metadata
    car = result.asset_materializations_for_node("car_file")[0].metadata
    assert meta["bytes"].value == car["bytes"].value and meta["mb_per_s"].value > 0
    assert meta["car_key"].value.startswith(f"s3://{bucket}/dagster/arke-")
    assert SECRET not in str({k: v.value for k, v in meta.items()})
    assert verify_copy(config(s3), meta["car_key"].value)["verified"]
    from arke_dr_pipeline.dr.offsite.sampling import RECORD

    sliced = defs.resolve_job_def("offsite_verify_job").execute_in_process(
        resources={**resources(settings), "offsite": offsite}, run_config={}, raise_on_error=False)
    assert sliced.success, sliced.all_events
    checked = sliced.output_for_node("verify_offsite_slice")["checked"]
    assert checked in (0, 1) and len((settings.backups_dir / RECORD).read_text().splitlines()) == checked


def test_a_delta_restores_from_offsite_with_its_chain_and_prune_keeps_chains(fresh_kubo, tmp_path, s3, bucket):
    from arke_dr_pipeline.dr.catalog.retention import RetentionPolicy, prune_offsite
    from arke_dr_pipeline.simulate.writer import ArchiveWriter
    from arke_dr_pipeline_tests.helpers import dump_digest

    settings = make_settings(fresh_kubo.api_url, tmp_path)
    target = OffsiteTarget(bucket, "chain")
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=60, seed=21, image_fraction=0.05, shape="api"))
        cars = []
        for _ in range(3):
            cars.append(backup(client, settings))
            upload_backup(config(s3), target, cars[-1])
            ArchiveWriter(client, settings, seed=len(cars)).run(10)
        expected = dump_digest(client, settings, cars[-1])
    assert [json.loads(c.with_suffix(".json").read_text())["kind"] for c in cars] == ["full", "delta", "delta"]
    shutil.rmtree(settings.backups_dir)
    fresh_kubo.wipe()
    settings = replace(settings, api_url=fresh_kubo.api_url)
    with KuboClient(fresh_kubo.api_url) as client:
        staged = fetch(config(s3), target.url(target.key(cars[-1].name)), settings.backups_dir)
        assert list(listed_backups(settings.backups_dir)) == []  # staged, not listed, until it restores
        restore(client, settings, staged)
        promote(staged, settings.backups_dir)
        assert dump_digest(client, settings) == expected
    assert {p.name for p in settings.backups_dir.glob("arke-*.car")} == {c.name for c in cars}
    kept = prune_offsite(config(s3), target, RetentionPolicy(last=1, daily=0, weekly=0, monthly=0))
    assert set(kept.kept) == {c.name for c in cars} and kept.deleted == []  # the newest delta needs them all
