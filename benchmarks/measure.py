"""Timing and peak memory of one operation, each in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from arke_dr_pipeline.dr.catalog.budget import folder_bytes


def run_measured(argv: list[str], env: dict | None = None, timeout: float = 7200, cwd: str | None = None) -> dict:
    """Run `argv`; its wall time, peak RSS (MB), exit code and output.

    The peak is the child's own `VmHWM`, polled: wait4's `ru_maxrss` keeps
    the high-water mark from before `exec`, when the child still shares the
    harness's pages, so it reported the harness's size (hundreds of MB after
    generating an archive) for every operation."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()))
               for s, b in ((proc.stdout, out), (proc.stderr, err))]
    for t in readers:
        t.start()
    peak = _poll_hwm(proc)
    _, status, usage = os.wait4(proc.pid, 0)
    for t in readers:
        t.join(timeout)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"seconds": round(time.monotonic() - started, 3),
            "peak_rss_mb": round((peak or usage.ru_maxrss) / 1024, 1),
            "returncode": proc.returncode, "stdout": b"".join(out).decode(errors="replace"),
            "stderr": b"".join(err).decode(errors="replace")}


def _poll_hwm(proc: subprocess.Popen, interval: float = 0.02) -> int:
    """The child's `VmHWM` in kB, read until it exits (the zombie keeps its pid, not its status)."""
    peak = 0
    while True:
        try:
            with open(f"/proc/{proc.pid}/status") as fh:
                hwm = next((int(line.split()[1]) for line in fh if line.startswith("VmHWM:")), None)
        except OSError:
            return peak
        if hwm is None:
            return peak
        peak = max(peak, hwm)
        time.sleep(interval)


def arke_dr(*args: str) -> list[str]:
    return [sys.executable, "-m", "arke_dr_pipeline.cli", *args]


class RssWatch:
    """Peak RSS of another process (the Kubo daemon), sampled; can kill a runaway."""

    def __init__(self, pid: int, limit_mb: float | None = None, on_limit=None):
        self.pid, self.limit, self.on_limit = pid, limit_mb, on_limit
        self.peak = 0.0
        self.tripped = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> float:
        with open(f"/proc/{self.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self._rss()
            except OSError:
                return
            self.peak = max(self.peak, rss)
            if self.limit and rss > self.limit and not self.tripped:
                self.tripped = True
                if self.on_limit:
                    self.on_limit()
            time.sleep(0.1)

    def __enter__(self) -> RssWatch:
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join(2)


class DiskWatch:
    """Peak bytes under some folders, sampled while an operation runs."""

    def __init__(self, *folders: Path):
        self.folders, self.peak = folders, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(folder_bytes(f) for f in self.folders if f.exists()))
            time.sleep(0.25)

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, sum(folder_bytes(f) for f in self.folders if f.exists()))
