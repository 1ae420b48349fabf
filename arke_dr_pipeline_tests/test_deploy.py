"""The compose stack and instance configs, checked without a Docker engine."""

import shutil
import subprocess
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "docker-compose.yml"
OPT_IN = ROOT / "docker-compose.docker-launcher.yml"
KUBO_VERSION = "0.39.0"


def load(path):
    return yaml.safe_load(path.read_text())


def test_compose_files_parse_and_every_image_is_pinned():
    for path in (BASE, OPT_IN):
        assert isinstance(load(path)["services"], dict)
    services = load(BASE)["services"]
    for name, svc in services.items():
        image = svc.get("image")
        assert image, f"{name} has no pinned image"
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and any(c.isdigit() for c in tag), (name, image)
    assert services["ipfs"]["image"] == f"ipfs/kubo:v{KUBO_VERSION}"
    assert f"FROM ipfs/kubo:v{KUBO_VERSION}" in (ROOT / "Dockerfile").read_text()


def _published(svc):
    for port in svc.get("ports", []):
        yield str(port)


def test_rpc_never_published_and_only_loopback_ports():
    for name, svc in load(BASE)["services"].items():
        for port in _published(svc):
            assert "5001" not in port, f"{name} publishes Kubo's RPC: {port}"
            assert port.startswith("127.0.0.1:"), f"{name} publishes on all interfaces: {port}"


def _mounts(doc):
    return {name: [str(v) for v in svc.get("volumes", [])] for name, svc in doc["services"].items()}


def test_only_the_opt_in_file_mounts_the_docker_socket():
    assert not any("docker.sock" in v for vols in _mounts(load(BASE)).values() for v in vols)
    assert any("/var/run/docker.sock" in v for vols in _mounts(load(OPT_IN)).values() for v in vols)
    assert "DockerRunLauncher" in (ROOT / "deploy" / "dagster.docker-launcher.yaml").read_text()


def test_every_service_has_a_healthcheck():
    for name, svc in load(BASE)["services"].items():
        assert svc.get("healthcheck", {}).get("test"), name


@pytest.mark.parametrize("name", ["dagster.yaml", "dagster.docker-launcher.yaml"])
def test_deploy_instance_config_loads(tmp_path, monkeypatch, name):
    for var in ("DAGSTER_POSTGRES_HOST", "DAGSTER_POSTGRES_USER", "DAGSTER_POSTGRES_PASSWORD",
                "DAGSTER_POSTGRES_DB"):
        monkeypatch.setenv(var, "x")
    shutil.copy(ROOT / "deploy" / name, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["concurrency"]["pools"] == {"granularity": "run", "default_limit": 1}
    assert "postgres" in config["storage"] and config["run_monitoring"]["enabled"]


def test_embedded_instance_runs_one_archive_run_at_a_time_and_watches_its_runs(tmp_path, monkeypatch):
    shutil.copy(ROOT / "deploy" / "dagster.local.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        pools = instance.get_concurrency_config().pool_config
        assert pools.pool_granularity.value == "run" and pools.default_pool_limit == 1
        assert instance.run_monitoring_enabled
        assert instance.run_launcher.supports_check_run_worker_health


def _compose_cmd():
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_config_validates():
    cmd = _compose_cmd()
    if cmd is None:
        pytest.skip("no Docker Compose client installed (neither `docker compose` nor `docker-compose`)")
    for files in (["-f", str(BASE)], ["-f", str(BASE), "-f", str(OPT_IN)]):
        out = subprocess.run([*cmd, *files, "config", "-q"], cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr


def test_the_stack_has_no_default_password_and_takes_offsite_settings_from_the_environment():
    text = BASE.read_text()
    assert "DAGSTER_POSTGRES_PASSWORD:-" not in text
    env = load(BASE)["x-arke-env"]
    assert env["DAGSTER_POSTGRES_PASSWORD"].startswith("${DAGSTER_POSTGRES_PASSWORD:?")
    for var in ("ARKE_OFFSITE_URL", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "ARKE_OFFSITE_MBPS", "ARKE_OFFSITE_LOCK_DAYS"):
        assert env[var] == f"${{{var}:-}}", var
