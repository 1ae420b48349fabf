"""The `arke-dr` command as a user types it."""

import subprocess
import sys

import pytest

from arke_dr_pipeline import __version__


def arke_dr(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "arke_dr_pipeline.cli", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


def test_version():
    out = arke_dr("--version")
    assert out.returncode == 0 and __version__ in out.stdout


def test_doctor_unreachable_is_one_line():
    out = arke_dr("--api", "http://127.0.0.1:9/api/v0", "doctor", timeout=60)
    assert out.returncode == 4
    assert out.stderr.count("\n") == 1 and "unreachable" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("typed, meant", [("restore_from_car", "restore"), ("restore-from-car", "restore"),
                                           ("export_car", "export-car"), ("generate_test_data", "gen-test-data")])
def test_the_seeds_script_names_still_work(tmp_path, typed, meant):
    assert arke_dr(typed, "--help").stdout == arke_dr(meant, "--help").stdout != ""
    if meant == "restore":
        bad = tmp_path / "not.car"
        bad.write_bytes(b"nothing")
        out = arke_dr("--api", "http://127.0.0.1:9/api/v0", typed, str(bad), "--wait-timeout", "1")
        assert out.returncode == 4 and out.stderr.count("\n") == 1 and "not ready" in out.stderr
    assert "restore-from-car" not in arke_dr("--help").stdout


def test_doctor_not_kubo(tmp_path):
    server = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = server.stdout.readline()
        port = int(line.split("port ")[1].split()[0])
        out = arke_dr("--api", f"http://127.0.0.1:{port}/api/v0", "doctor")
        assert out.returncode != 0
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
        assert f"the server at http://127.0.0.1:{port}/api/v0 is not Kubo (HTTP 501" in out.stderr
    finally:
        server.kill()


def test_doctor_against_node(kubo):
    out = arke_dr("--api", kubo.api_url, "doctor")
    assert out.returncode == 0, out.stderr
    assert "kubo 0.39.0" in out.stdout


@pytest.mark.parametrize("args", [("verify-car", "/nonexistent.car"), ("--api", "not a url", "doctor")])
def test_bad_input_is_one_line(args):
    out = arke_dr(*args)
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_gen_test_data_and_simulate_writes_grow_an_api_shaped_archive(kubo, tmp_path):
    """What a user runs to watch the sensor and the plots: an archive, then writes as the API makes them."""
    import json
    import os

    env = {**os.environ, "INDEX_POINTER_PATH": "/arke-cli/index-pointer", "SNAPSHOTS_DIR": str(tmp_path / "s"),
           "BACKUPS_DIR": str(tmp_path / "b"), "ARKE_PROGRESS": "0"}
    gen = arke_dr("--api", kubo.api_url, "gen-test-data", "--entities", "20", "--events", "50", env=env)
    assert gen.returncode == 0, gen.stderr
    assert json.loads(gen.stdout)["shape"] == "api"
    assert arke_dr("--api", kubo.api_url, "build-snapshot", env=env).returncode == 0
    sim = arke_dr("--api", kubo.api_url, "simulate-writes", "--events", "30", env=env)
    assert sim.returncode == 0, sim.stderr
    head = json.loads(sim.stdout)["event_head"]
    assert head.startswith("bafyrei")  # dag-cbor, as the API stores events
    status = json.loads(arke_dr("--api", kubo.api_url, "status", env=env).stdout)
    assert status["event_head"] == head and status["event_count"] == 80
    snap = arke_dr("--api", kubo.api_url, "build-snapshot", env=env)
    assert snap.returncode == 0 and "30 new events" in snap.stderr
    bad = arke_dr("--api", kubo.api_url, "simulate-writes", "--events", "0", env=env)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_exit_codes_follow_the_readmes_table():
    """Each class of failure has its code, and the README's table says the same."""
    import re
    from pathlib import Path

    from arke_dr_pipeline.cli import exit_code
    from arke_dr_pipeline.dr.catalog.format import NewerFormat
    from arke_dr_pipeline.dr.offsite.copy import OffsiteError
    from arke_dr_pipeline.dr.plumbing.lock import LockBusy
    from arke_dr_pipeline.dr.restore.whole import RestoreRefused
    from arke_dr_pipeline.dr.verify.dagcheck import BackupInvalid
    from arke_dr_pipeline.errors import ArkeDrError, BadInput
    from arke_dr_pipeline.kubo.errors import KuboError, KuboUnreachable

    assert [exit_code(e) for e in (BadInput("x"), LockBusy("x"), KuboUnreachable("id", None, "x"),
                                   BackupInvalid(None, "x"), NewerFormat("x"), RestoreRefused("x"),
                                   OffsiteError("x"), KuboError("id", None, "x"), ArkeDrError("x"))] == \
        [2, 3, 4, 5, 5, 6, 7, 1, 1]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", readme.split("### Exit codes", 1)[1], re.M))
    assert set(table) == {"0", "1", "2", "3", "4", "5", "6", "7", "8", "130", "143"}
    assert "unreachable" in table["4"] and "backup invalid" in table["5"] and "offsite" in table["7"]


def test_json_gives_one_document_for_results_and_errors(kubo, tmp_path):
    """--json on every command: the result, or the error with its class, exit code and facts."""
    import json
    import os

    env = {**os.environ, "INDEX_POINTER_PATH": "/arke-json/index-pointer", "SNAPSHOTS_DIR": str(tmp_path / "s"),
           "BACKUPS_DIR": str(tmp_path / "b"), "ARKE_PROGRESS": "0"}
    api = ("--api", kubo.api_url, "--json")
    assert arke_dr(*api, "gen-test-data", env=env).returncode == 0
    doctor = json.loads(arke_dr(*api, "doctor", env=env).stdout)
    assert doctor["api"] == kubo.api_url and doctor["kubo"]
    snap = json.loads(arke_dr(*api, "build-snapshot", env=env).stdout)
    assert snap["snapshot_cid"].startswith("bagu") and snap["entity_count"] == 3
    out = arke_dr(*api, "export-car", env=env)
    car = json.loads(out.stdout)
    assert out.returncode == 0 and car["kind"] == "full" and car["blocks"] > 0 and car["lost"] == []
    dump = arke_dr(*api, "dump", "--out", str(tmp_path / "d"), env=env)
    assert json.loads(dump.stdout)["lines"] > 0
    same = arke_dr("--json", "diff", str(tmp_path / "d"), str(tmp_path / "d"), env=env)
    assert same.returncode == 0 and json.loads(same.stdout) == {"equal": True, "differences": []}
    gone = arke_dr("--api", "http://127.0.0.1:9/api/v0", "--json", "doctor", env=env)
    error = json.loads(gone.stdout)["error"]
    assert gone.returncode == 4 and error["class"] == "KuboUnreachable" and error["exit"] == 4
    assert error["call"] == "id" and gone.stderr.startswith("arke-dr: error: ")
    bad = arke_dr("--json", "verify-car", str(tmp_path / "nope.car"), env=env)
    assert bad.returncode == 5 and json.loads(bad.stdout)["error"]["class"] == "BackupInvalid"


def test_ls_lists_the_entities_of_a_backup_offline(kubo, tmp_path):
    import json
    import os

    env = {**os.environ, "INDEX_POINTER_PATH": "/arke-ls/index-pointer", "SNAPSHOTS_DIR": str(tmp_path / "s"),
           "BACKUPS_DIR": str(tmp_path / "b"), "ARKE_PROGRESS": "0"}
    api = ("--api", kubo.api_url)
    assert arke_dr(*api, "gen-test-data", env=env).returncode == 0
    assert arke_dr(*api, "build-snapshot", env=env).returncode == 0
    car = arke_dr(*api, "export-car", env=env).stdout.strip()
    status = json.loads(arke_dr(*api, "status", env=env).stdout)
    listed = arke_dr("--api", "http://127.0.0.1:9/api/v0", "ls", car, env=env)  # no node needed
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == status["tip_files"] == 3
    pi, ver, ts, tip = lines[0].split("\t")
    assert pi.startswith("ENTITY_A") and int(ver) >= 1 and tip.startswith("ba")
    doc = json.loads(arke_dr("--json", "ls", car, env=env).stdout)
    assert doc["entity_count"] == 3 and [e["pi"] for e in doc["entities"]] == [ln.split("\t")[0] for ln in lines]
