"""Dagster's default run launcher, plus a health check, so run monitoring
can see a run whose process died.

The default launcher starts each run in a process of the code server and
cannot tell the daemon whether that process still lives: after a `kill -9`
or an OOM kill the run stays STARTED for good and holds the `arke_dr` pool,
and every later backup, snapshot and restore waits behind it. The run's own
first engine event names its process id; on the same host the daemon can
ask the kernel whether it is still there. Anywhere else (a code server in
another container) the answer is "running": never fail a live run on a
guess.
"""

from __future__ import annotations

import json
import os

import dagster as dg
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", ""}
STARTED = "Started process for run"


class LocalRunLauncher(dg.DefaultRunLauncher):
    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        pid = self._worker_pid(run)
        if pid is None or not _local(run):
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker not visible from here")
        if _alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(WorkerStatus.FAILED, f"the run's process {pid} is gone (killed, or out of memory)",
                                    run_worker_id=str(pid))

    def _worker_pid(self, run: dg.DagsterRun) -> int | None:
        records = self._instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20).records
        for record in records:
            entry = record.event_log_entry
            if entry.message and entry.message.startswith(STARTED) and entry.dagster_event:
                pid = entry.dagster_event.engine_event_data.metadata.get("pid")
                return int(pid.value) if pid is not None else None
        return None


def _local(run: dg.DagsterRun) -> bool:
    try:
        info = json.loads(run.tags.get(GRPC_INFO_TAG, "{}"))
    except ValueError:
        return False
    return "socket" in info or info.get("host", "") in LOCAL_HOSTS


def _alive(pid: int) -> bool:
    """Alive and still a Python process (a reused pid of another program is not our run)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read()
    except OSError:
        return True
    if b"python" not in cmdline and b"dagster" not in cmdline:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
