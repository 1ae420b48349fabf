"""What a user types: `dagster-daemon run`, `dagster job launch`, the webserver's GraphQL."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.simulate.testdata import seed_scenario
from arke_dr_pipeline_tests.conftest import make_settings
from arke_dr_pipeline_tests.helpers import backup, logical_dump

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def dagster_env(tmp_path, fresh_kubo):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    env = {**os.environ, "DAGSTER_HOME": str(home), "IPFS_API_URL": fresh_kubo.api_url,
           "BACKUPS_DIR": str(settings.backups_dir), "SNAPSHOTS_DIR": str(settings.snapshots_dir),
           "ARKE_PROGRESS": "0"}
    return env, settings


def _runs(env):
    out = subprocess.run([sys.executable, "-c", (
        "import json; from dagster import DagsterInstance\n"
        "i = DagsterInstance.get()\n"
        "print(json.dumps([(r.job_name, r.status.value) for r in i.get_runs()]))")],
        env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _launch(env, tmp_path, config):
    path = tmp_path / "restore.yaml"
    path.write_text(yaml.safe_dump(config))
    out = subprocess.run([str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml", "-j", "restore_job",
                          "-c", str(path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]


def _wait_done(env, count, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _runs(env)
        done = [r for r in runs if r[1] in ("SUCCESS", "FAILURE", "CANCELED")]
        if len(done) >= count:
            return runs
        time.sleep(1)
    raise AssertionError(f"runs not finished: {_runs(env)}")


def test_restore_job_launched_from_the_cli(dagster_env, fresh_kubo, tmp_path):
    env, settings = dagster_env
    with KuboClient(fresh_kubo.api_url) as client:
        seed_scenario(client, settings)
        car = backup(client, settings)
        before = logical_dump(client, settings)
    fresh_kubo.wipe()
    env["IPFS_API_URL"] = fresh_kubo.api_url
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    # create the run storage first: the daemon and `job launch` would otherwise race to create its tables
    subprocess.run([str(BIN / "dagster"), "instance", "migrate"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=180)
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _launch(env, tmp_path, {"car_path": "../../../etc/hostname"})
        runs = _wait_done(env, 1)
        assert runs[0] == ["restore_job", "FAILURE"]
        with KuboClient(fresh_kubo.api_url) as client:
            assert client.files_stat("/arke") is None
        _launch(env, tmp_path, {"car_path": car.name})
        runs = _wait_done(env, 2)
        assert sorted(r[1] for r in runs) == ["FAILURE", "SUCCESS"]
    finally:
        daemon.terminate()
        daemon.wait(30)
    with KuboClient(fresh_kubo.api_url) as client:
        assert logical_dump(client, settings) == before


def test_the_readmes_restore_command_against_the_daemon_make_ui_starts(fresh_kubo, tmp_path):
    """`dagster job launch -w workspace.yaml -j restore_job -c restore.yaml`, as the README writes it,
    while `dg dev` runs: the run used to fail with `Location arke_dr_pipeline.defs:defs does not exist`."""
    from arke_dr_pipeline_tests.defs.instance import Instance

    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        seed_scenario(client, settings)
        car = backup(client, settings)
        before = logical_dump(client, settings)
    fresh_kubo.wipe()
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    env = {**os.environ, "IPFS_API_URL": fresh_kubo.api_url, "BACKUPS_DIR": str(settings.backups_dir),
           "SNAPSHOTS_DIR": str(settings.snapshots_dir), "ARKE_PROGRESS": "0"}
    inst = Instance(tmp_path / "dagster_home", env).start_dg_dev()
    try:
        assert inst.repository[0] == "arke_dr_pipeline"
        config = tmp_path / "restore.yaml"
        config.write_text(yaml.safe_dump({"car_path": car.name}))
        out = subprocess.run(["dagster", "job", "launch", "-w", "workspace.yaml", "-j", "restore_job",
                              "-c", str(config)], cwd=ROOT, env=inst.env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        deadline = time.monotonic() + 300
        while not (runs := inst.runs()) and time.monotonic() < deadline:
            time.sleep(1)
        (run_id,) = runs
        assert inst.wait([run_id])[run_id]["status"] == "SUCCESS", (inst.home / "daemon.log").read_text()[-3000:]
        started = (inst.home / "daemon.log").read_text()
        assert "WARNING" not in started and "mismatch" not in started, started[-3000:]  # a quiet start
    finally:
        inst.stop()
    with KuboClient(fresh_kubo.api_url) as client:
        assert logical_dump(client, settings) == before


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


QUERY = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
  jobs { name } schedules { name } sensors { name }
  assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } } } } } }"""


def test_webserver_lists_the_project(dagster_env):
    env, _ = dagster_env
    port = _free_port()
    web = subprocess.Popen([str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
                            "-p", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        data = None
        while time.monotonic() < deadline:
            try:
                resp = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": QUERY}, timeout=10)
                data = resp.json()["data"]["repositoriesOrError"]["nodes"][0]
                break
            except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError):
                time.sleep(1)
        assert data is not None, "webserver never answered"
    finally:
        web.terminate()
        web.wait(30)
    assets = {"/".join(a["assetKey"]["path"]): [c["name"] for c in a["assetChecksOrError"]["checks"]]
              for a in data["assetNodes"]}
    assert set(assets) == {"event_chain_head", "snapshot", "cid_inventory", "pinned_set", "car_file",
                           "offsite_copy", "retention", "restore_drill"}
    assert assets["offsite_copy"] == ["offsite_matches_local"] and assets["restore_drill"] == ["latest_backup_restores"]
    assert sorted(assets["snapshot"]) == ["cids_valid", "no_duplicate_pis", "pointer_snapshot_complete",
                                          "under_500_bytes_per_entity"]
    assert sorted(assets["cid_inventory"]) == ["inventory_complete", "inventory_only_grows"]
    assert sorted(assets["car_file"]) == ["car_verified_complete", "events_not_in_any_backup",
                                          "newest_backup_is_fresh", "no_unacknowledged_loss"]
    assert {j["name"] for j in data["jobs"]} >= {"backup_job", "snapshot_job", "restore_job", "freshness_job",
                                                  "drill_job"}
    assert sorted(s["name"] for s in data["schedules"]) == ["daily_backup", "daily_offsite_verify",
                                                            "hourly_freshness", "weekly_drill"]
    assert {s["name"] for s in data["sensors"]} == {"snapshot_sensor", "dr_failure_alert", "drill_after_backup"}
