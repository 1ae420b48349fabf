"""A Dagster instance as `make ui` runs it: the embedded dagster.yaml, the
daemon and the webserver as processes, runs submitted through GraphQL the
way the UI submits them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from arke_dr_pipeline.dr.plumbing.config import Settings
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.simulate.testdata import seed_scenario
from arke_dr_pipeline_tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ALL_ASSETS = ["event_chain_head", "snapshot", "cid_inventory", "pinned_set", "car_file"]
DONE = ("SUCCESS", "FAILURE", "CANCELED")

LAUNCH = """mutation($params: ExecutionParams!) { launchPipelineExecution(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } }
  ... on PythonError { message } ... on InvalidSubsetError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Instance:
    def __init__(self, home: Path, env: dict):
        self.home = home
        self.env = {**env, "DAGSTER_HOME": str(home)}
        self.port = free_port()
        self.procs: list[subprocess.Popen] = []
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "deploy" / "dagster.local.yaml", home / "dagster.yaml")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_dg_dev(self) -> Instance:
        """What `make ui` starts: `dg dev`, which runs the webserver and the daemon and names the
        code location from pyproject.toml (not from workspace.yaml)."""
        subprocess.run([str(BIN / "dagster"), "instance", "migrate"], cwd=ROOT, env=self.env, check=True,
                       capture_output=True, timeout=180)
        subprocess.run([str(BIN / "dagster"), "instance", "concurrency", "set", "arke_dr", "1"], cwd=ROOT,
                       env=self.env, check=True, capture_output=True, timeout=180)
        self.env = {**self.env, "VIRTUAL_ENV": str(BIN.parent), "PATH": f"{BIN}:{self.env.get('PATH', '')}"}
        self.procs.append(self._spawn([str(BIN / "dg"), "dev", "-h", "127.0.0.1", "-p", str(self.port)], "daemon"))
        self._wait_for_webserver()
        return self

    def start(self, *, webserver: bool = True) -> Instance:
        # the run storage first: the daemon and the webserver would otherwise race to create its tables
        subprocess.run([str(BIN / "dagster"), "instance", "migrate"], cwd=ROOT, env=self.env, check=True,
                       capture_output=True, timeout=180)
        # as `make ui` and the compose daemon do: the daemon does not see a pool that its own first
        # pass creates from `default_limit`, so two runs queued on a fresh instance would both start
        subprocess.run([str(BIN / "dagster"), "instance", "concurrency", "set", "arke_dr", "1"], cwd=ROOT,
                       env=self.env, check=True, capture_output=True, timeout=180)
        self.procs.append(self._spawn([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], "daemon"))
        if webserver:
            self.procs.append(self._spawn([str(BIN / "dagster-webserver"), "-w", "workspace.yaml",
                                           "-h", "127.0.0.1", "-p", str(self.port)], "webserver"))
            self._wait_for_webserver()
        return self

    def _spawn(self, cmd, name):
        log = open(self.home / f"{name}.log", "wb")
        return subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def _wait_for_webserver(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.graphql("{ repositoriesOrError { ... on RepositoryConnection { "
                                    "nodes { name location { name } } } } }")
                nodes = data["repositoriesOrError"]["nodes"]
                if nodes:
                    self.repository = (nodes[0]["location"]["name"], nodes[0]["name"])
                    return
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                pass
            time.sleep(1)
        raise AssertionError("the webserver never answered")

    def stop(self) -> None:
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        resp = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
        body = resp.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def launch(self, job: str, *, assets: list[str] | None = None, run_config: dict | None = None) -> str:
        """What the UI sends: a job, or `__ASSET_JOB` with the asset selection ("Materialize all")."""
        selector = {"repositoryLocationName": self.repository[0], "repositoryName": self.repository[1],
                    "jobName": job}
        if assets is not None:
            selector["assetSelection"] = [{"path": [a]} for a in assets]
        out = self.graphql(LAUNCH, {"params": {"selector": selector, "runConfigData": run_config or {},
                                               "mode": "default"}})["launchPipelineExecution"]
        assert out["__typename"] == "LaunchRunSuccess", out
        return out["run"]["runId"]

    def runs(self) -> dict[str, dict]:
        out = subprocess.run([sys.executable, "-c", (
            "import json; from dagster import DagsterInstance, DagsterEventType\n"
            "i = DagsterInstance.get()\n"
            "def launched(run_id):\n"
            "    recs = i.get_records_for_run(run_id, of_type=DagsterEventType.RUN_STARTING).records\n"
            "    return recs[0].event_log_entry.timestamp if recs else None\n"
            "print(json.dumps({r.dagster_run.run_id: {'job': r.dagster_run.job_name,\n"
            "  'status': r.dagster_run.status.value, 'launched': launched(r.dagster_run.run_id),\n"
            "  'start': r.start_time, 'end': r.end_time}\n"
            "  for r in i.get_run_records()}))")], env=self.env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    def wait(self, run_ids, *, statuses=DONE, timeout: float = 600) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs()
            if all(runs.get(r, {}).get("status") in statuses for r in run_ids):
                return runs
            time.sleep(1)
        raise AssertionError(f"runs not {statuses}: {self.runs()}; daemon log: "
                             f"{(self.home / 'daemon.log').read_text()[-3000:]}")

    def engine_messages(self, run_id: str) -> list[str]:
        """The run's engine events: they say which executor ran its steps."""
        out = subprocess.run([sys.executable, "-c", (
            "import json; from dagster import DagsterInstance, DagsterEventType\n"
            "i = DagsterInstance.get()\n"
            f"recs = i.get_records_for_run({run_id!r}, of_type=DagsterEventType.ENGINE_EVENT).records\n"
            "print(json.dumps([r.event_log_entry.message or '' for r in recs]))")],
            env=self.env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    def worker_pid(self, run_id: str) -> int:
        out = subprocess.run([sys.executable, "-c", (
            "import sys; from dagster import DagsterInstance, DagsterEventType\n"
            "i = DagsterInstance.get()\n"
            f"recs = i.get_records_for_run({run_id!r}, of_type=DagsterEventType.ENGINE_EVENT).records\n"
            "pids = [r.event_log_entry.dagster_event.engine_event_data.metadata['pid'].value for r in recs\n"
            "        if (r.event_log_entry.message or '').startswith('Started process for run')]\n"
            "print(pids[0] if pids else '')")], env=self.env, capture_output=True, text=True, check=True)
        return int(out.stdout.strip()) if out.stdout.strip() else 0


def seeded_instance(tmp_path: Path, node) -> tuple[Instance, Settings]:
    """The seed scenario on `node`, and an instance (daemon and webserver) started on it.

    A long RPC timeout: a run against a paused node hangs in its step, so a
    test can act while it runs (click, launch, kill) and then resume the node.
    """
    settings = make_settings(node.api_url, tmp_path)
    with KuboClient(node.api_url) as client:
        seed_scenario(client, settings)
    env = {**os.environ, "IPFS_API_URL": node.api_url, "BACKUPS_DIR": str(settings.backups_dir),
           "SNAPSHOTS_DIR": str(settings.snapshots_dir), "ARKE_PROGRESS": "0", "ARKE_RPC_TIMEOUT": "900"}
    return Instance(tmp_path / "dagster_home", env).start(), settings
