"""The whole Definitions object, run against a real node."""

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from arke_dr_pipeline.defs import defs
from arke_dr_pipeline.defs.automation import snapshot_sensor
from arke_dr_pipeline.defs.resources import KuboResource, RestoreLock, StorageResource
from arke_dr_pipeline.dr.archive.pointer import require_pointer
from arke_dr_pipeline.ipld.cid import parse_cid, split_cid
from arke_dr_pipeline.simulate.testdata import GenSpec, generate, seed_scenario
from arke_dr_pipeline.simulate.writer import ArchiveWriter

ROOT = Path(__file__).resolve().parents[2]


def resources(settings):
    storage = StorageResource(snapshots_dir=str(settings.snapshots_dir), backups_dir=str(settings.backups_dir),
                              index_pointer_path=settings.index_pointer_path)
    return {"kubo": KuboResource(api_url=settings.api_url), "storage": storage,
            "restore_lock": RestoreLock(storage=storage)}


def run_backup(settings, instance=None):
    job = defs.resolve_job_def("backup_job")
    return job.execute_in_process(resources=resources(settings), instance=instance, raise_on_error=False)


def check_results(result):
    return {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def test_definitions_load_everything():
    repo = defs.get_repository_def()
    assert {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()} == {
        "event_chain_head", "snapshot", "cid_inventory", "pinned_set", "car_file", "offsite_copy", "retention",
        "restore_drill"}
    assert {j for j in repo.job_names if not j.startswith("__")} == {"backup_job", "snapshot_job", "restore_job",
                                                                     "freshness_job", "drill_job",
                                                                     "offsite_verify_job"}
    assert {s.name for s in repo.sensor_defs} == {"snapshot_sensor", "dr_failure_alert", "drill_after_backup"}
    assert sorted(s.name for s in repo.schedule_defs) == ["daily_backup", "daily_offsite_verify", "hourly_freshness",
                                                           "weekly_drill"]


def test_backup_job_materializes_with_checks_and_metadata(client, settings):
    generate(client, settings, GenSpec(entities=60, seed=2, image_fraction=0.05))
    result = run_backup(settings)
    assert result.success
    checks = check_results(result)
    assert checks == {"no_duplicate_pis": True, "cids_valid": True, "under_500_bytes_per_entity": True,
                      "pointer_snapshot_complete": True, "inventory_complete": True, "inventory_only_grows": True,
                      "car_verified_complete": True, "newest_backup_is_fresh": True,
                      "events_not_in_any_backup": True, "offsite_matches_local": True,
                      "no_unacknowledged_loss": True}
    offsite = result.asset_materializations_for_node("offsite_copy")[0].metadata
    assert offsite["configured"].value == 0 and "ARKE_OFFSITE_URL" in offsite["offsite"].value
    mats = {m.asset_key.to_user_string(): m.metadata for m in result.asset_materializations_for_node("car_file")}
    car = mats["car_file"]
    assert car["entities"].value == 60 and car["bytes"].value > 0 and car["seconds"].value >= 0
    assert Path(car["path"].value).exists()
    snap = result.asset_materializations_for_node("snapshot")[0].metadata
    assert snap["entities"].value == 60 and snap["new_events"].value == snap["events"].value


def _flatfs_path(repo: Path, cid: str) -> Path:
    raw = parse_cid(cid)
    _, _, _, start, length = split_cid(raw)
    mh = raw[start - 2 : start + length]
    key = base64.b32encode(mh).decode().rstrip("=")
    return repo / "blocks" / key[-3:-1] / f"{key}.data"


def test_a_pointer_snapshot_missing_entities_fails_its_check_and_the_backup_goes_on(client, settings):
    """The Arke API's builder published a snapshot that dropped entities: the
    run warns, the check fails, and the backup of our own snapshot completes."""
    generate(client, settings, GenSpec(entities=30, seed=8, image_fraction=0.0))
    assert run_backup(settings).success
    pointer = require_pointer(client, settings.index_pointer_path)
    ours = json.loads(client.dag_get(pointer.latest_snapshot_cid))
    theirs = {**ours, "seq": ours["seq"] + 1, "entries": ours["entries"][:2], "total_count": 2,
              "prev_snapshot": {"/": pointer.latest_snapshot_cid}}
    pointer.raw["latest_snapshot_cid"] = client.dag_put(json.dumps(theirs).encode(), store_codec="dag-json",
                                                        input_codec="json", allow_big_block=True)
    client.files_write(settings.index_pointer_path, pointer.encode())
    ArchiveWriter(client, settings, seed=2).run(5)
    result = run_backup(settings)
    assert check_results(result)["pointer_snapshot_complete"] is False
    snap = result.asset_materializations_for_node("snapshot")[0].metadata
    assert "names 2 entities" in snap["pointer_snapshot_refused"].value and snap["entities"].value >= 30
    car = result.asset_materializations_for_node("car_file")[0].metadata
    assert car["entities"].value == snap["entities"].value
    assert len(json.loads(client.dag_get(require_pointer(client, settings.index_pointer_path)
                                         .latest_snapshot_cid))["entries"]) == snap["entities"].value


def test_corrupted_block_fails_the_check_and_stops_the_car(kubo, client, settings):
    gen = generate(client, settings, GenSpec(entities=20, seed=3, image_fraction=0.0))
    tip = next(iter(gen.tips.values()))
    path = _flatfs_path(kubo.repo, tip)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    try:
        result = run_backup(settings)
        checks = check_results(result)
        assert checks["inventory_complete"] is False
        assert not result.asset_materializations_for_node("car_file")
        assert not list(settings.backups_dir.glob("*.car"))
    finally:
        data[-3] ^= 0xFF
        path.write_bytes(bytes(data))


def test_snapshot_sensor(client, settings, monkeypatch):
    monkeypatch.setenv("ARKE_SNAPSHOT_THRESHOLD", "10")
    seed_scenario(client, settings)
    res = resources(settings)
    with dg.build_sensor_context(resources=res) as ctx:
        out = snapshot_sensor(ctx)
    assert isinstance(out, dg.SkipReason) and "6 events since the latest snapshot, threshold 10" in out.skip_message
    ArchiveWriter(client, settings).run(5)
    head = require_pointer(client, settings.index_pointer_path).event_head
    with dg.build_sensor_context(resources=res) as ctx:
        out = snapshot_sensor(ctx)
    assert [r.run_key for r in out.run_requests] == [head] and out.cursor == head
    with dg.build_sensor_context(resources=res, cursor=head) as ctx:
        again = snapshot_sensor(ctx)
    assert isinstance(again, dg.SkipReason) and "already" in again.skip_message


def test_schedule_requests_backup_job():
    schedule = defs.resolve_schedule_def("daily_backup")
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "UTC"
    with dg.build_schedule_context() as ctx:
        request = schedule.evaluate_tick(ctx).run_requests[0]
    assert schedule.job_name == "backup_job" and request.tags["arke/trigger"] == "schedule"


def test_dagster_validates_the_workspace():
    out = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate",
                          "-w", "workspace.yaml"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "All code locations passed validation" in out.stderr + out.stdout


def test_dg_sees_a_project_whose_definitions_load():
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "VIRTUAL_ENV": str(bin_dir.parent), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    out = subprocess.run([str(bin_dir / "dg"), "check", "defs"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (out.stdout + out.stderr)[-2000:]
    assert "All definitions loaded successfully" in out.stdout + out.stderr
    listed = subprocess.run([str(bin_dir / "dg"), "list", "defs", "--json"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert {a["asset_key"] for a in json.loads(listed.stdout)["assets"]} == {
        "event_chain_head", "snapshot", "cid_inventory", "pinned_set", "car_file", "offsite_copy",
        "retention", "restore_drill"}


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/hostname"])
def test_restore_job_refuses_paths_outside_backups(client, settings, bad):
    seed_scenario(client, settings)
    before = client.files_stat("/")["Hash"]
    result = defs.resolve_job_def("restore_job").execute_in_process(
        run_config={"car_path": bad},
        resources=resources(settings), raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("verify_backup")
    assert "outside the backups folder" in failure.user_failure_data.description
    assert client.files_stat("/")["Hash"] == before


def test_restore_job_refusal_speaks_dagster(client, settings, tmp_path):
    """A valid backup of another archive: refused in the run config's words, the node untouched."""
    from arke_dr_pipeline_tests.ipld.test_hostile_cars import api_archive, write_car

    seed_scenario(client, settings)
    settings.backups_dir.mkdir(parents=True, exist_ok=True)
    write_car(settings.backups_dir / "other.car", *api_archive())
    before = client.files_stat("/")["Hash"]
    result = defs.resolve_job_def("restore_job").execute_in_process(
        run_config={"car_path": "other.car"},
        resources=resources(settings), raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("import_backup").user_failure_data.description
    assert "set `force: true` in the run config" in failure and "--force" not in failure
    assert client.files_stat("/")["Hash"] == before


@pytest.mark.parametrize("bad, says", [("arke\0.car", "NUL byte"), ("x" * 10_000, "File name too long")])
def test_restore_job_refuses_odd_paths_in_one_line(client, settings, bad, says):
    result = defs.resolve_job_def("restore_job").execute_in_process(
        run_config={"car_path": bad},
        resources=resources(settings), raise_on_error=False)
    failure = result.failure_data_for_node("verify_backup").user_failure_data.description
    assert says in failure and "\n" not in failure


def test_a_second_backup_job_writes_a_delta_and_retention_keeps_its_chain(client, settings, monkeypatch):
    generate(client, settings, GenSpec(entities=25, seed=14, image_fraction=0.0, shape="api"))
    instance = dg.DagsterInstance.ephemeral()
    assert run_backup(settings, instance).success
    ArchiveWriter(client, settings).run(6)
    monkeypatch.setenv("ARKE_KEEP_LAST", "1")
    monkeypatch.setenv("ARKE_KEEP_DAILY", "0")
    monkeypatch.setenv("ARKE_KEEP_WEEKLY", "0")
    monkeypatch.setenv("ARKE_KEEP_MONTHLY", "0")
    result = run_backup(settings, instance)
    assert result.success and all(check_results(result).values())
    car = result.asset_materializations_for_node("car_file")[0].metadata
    assert car["kind"].value == "delta" and car["delta"].value == 1
    kept = result.asset_materializations_for_node("retention")[0].metadata
    assert kept["kept"].value == 2 and kept["deleted"].value == 0  # the delta needs its full


def test_a_lost_block_fails_its_check_and_alerts_and_the_car_stands(fresh_kubo, tmp_path):
    """The run fails (so `dr_failure_alert` sends its line) on a blocking check, after the CAR is in place."""
    from arke_dr_pipeline.dr.archive.tips import read_tips
    from arke_dr_pipeline.kubo.client import KuboClient
    from arke_dr_pipeline_tests.conftest import make_settings

    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=40, seed=9, image_fraction=0.2, image_min=2_000,
                                           image_max=3_000, shape="api"))
        for pinned in client.pin_ls():
            client.request("pin/rm", pinned)
        manifests = [json.loads(client.dag_get(tip)) for tip in read_tips(client, settings.index_root).values()]
        victim = next(c["/"] for m in manifests for c in m["components"].values() if c["/"].startswith("bafkrei"))
        client.request("block/rm", victim)
    result = run_backup(settings)
    assert not result.success
    assert check_results(result)["no_unacknowledged_loss"] is False
    car = result.asset_materializations_for_node("car_file")[0].metadata
    assert car["lost_blocks"].value == 1 and car["lost_unacknowledged"].value == 1
    assert Path(car["path"].value).is_file()


def test_a_failed_step_says_our_line_first_with_its_facts(tmp_path):
    """It used to show `DagsterExecutionStepExecutionError` first and the useful line second."""
    from dataclasses import replace as _replace

    from arke_dr_pipeline_tests.conftest import make_settings
    from arke_dr_pipeline_tests.defs.instance import free_port

    settings = make_settings(f"http://127.0.0.1:{free_port()}/api/v0", tmp_path)
    result = run_backup(_replace(settings))
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    data = failure.step_failure_data
    assert data.error.cls_name == "Failure"
    description = data.user_failure_data.description
    assert description.startswith("files/stat /arke/index-pointer: node at ") and "unreachable" in description
    meta = {k: v.value for k, v in data.user_failure_data.metadata.items()}
    assert meta["node"] == settings.api_url and meta["error"] == "KuboUnreachable" and meta["call"] == "files/stat"


@pytest.mark.parametrize("switch", ["on", "off"])
def test_automations_run_by_default_in_the_deployed_stack_and_not_in_make_ui(switch):
    """They all used to start stopped: a user who brought up the stack had no backups and no alerts."""
    code = ("import json; from arke_dr_pipeline.defs import defs\n"
            "repo = defs.get_repository_def()\n"
            "print(json.dumps({**{s.name: s.default_status.value for s in repo.schedule_defs},\n"
            "                  **{s.name: s.default_status.value for s in repo.sensor_defs}}))")
    env = {**os.environ, "ARKE_AUTOMATIONS": switch}
    status = json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                       check=True).stdout)
    on = "RUNNING" if switch == "on" else "STOPPED"
    assert status == {"daily_backup": on, "weekly_drill": on, "snapshot_sensor": on, "dr_failure_alert": "RUNNING",
                      "daily_offsite_verify": on,
                      "hourly_freshness": "RUNNING", "drill_after_backup": "STOPPED"}
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "ARKE_AUTOMATIONS: ${ARKE_AUTOMATIONS:-on}" in compose
    repo = defs.get_repository_def()
    assert all(s.description for s in repo.schedule_defs)
