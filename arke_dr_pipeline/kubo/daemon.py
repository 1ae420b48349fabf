"""Start and stop a local Kubo daemon: the tests' node and the embedded default.

Kept free of pytest so the developer helper (`scripts/kubo-node`) and the
benchmarks use the same code as the fixtures.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

KUBO_VERSION = "0.39.0"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def find_ipfs() -> str:
    """The project's pinned `ipfs`: `.tools/bin/ipfs`, else one on PATH at that version."""
    local = PROJECT_ROOT / ".tools" / "bin" / "ipfs"
    if local.exists():
        return str(local)
    found = shutil.which("ipfs")
    if found:
        out = subprocess.run([found, "version", "--number"], capture_output=True, text=True)
        if out.stdout.strip() == KUBO_VERSION:
            return found
    raise FileNotFoundError(f"no ipfs {KUBO_VERSION}: run scripts/install-kubo first")


def _multiaddr_to_url(addr: str) -> str:
    parts = addr.strip().split("/")
    host, port = parts[2], parts[4]
    if parts[1] == "ip6":
        host = f"[{host}]"
    return f"http://{host}:{port}/api/v0"


class KuboDaemon:
    """One offline Kubo node with its own repo.

    `api_port=0` lets the kernel choose a free loopback port; the chosen
    address is read back from the repo's `api` file.
    """

    def __init__(self, repo: str | os.PathLike, *, api_port: int = 0, ipfs: str | None = None,
                 datastore: str = "flatfs"):
        self.repo = Path(repo)
        self.datastore = datastore
        self.api_port = api_port
        self.ipfs = ipfs or find_ipfs()
        self.proc: subprocess.Popen | None = None
        self.api_url: str | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "IPFS_PATH": str(self.repo)}

    def _ipfs(self, *args: str) -> None:
        subprocess.run([self.ipfs, *args], env=self.env, check=True, capture_output=True)

    def init(self) -> None:
        if (self.repo / "config").exists():
            return
        self.repo.mkdir(parents=True, exist_ok=True)
        profile = "test" if self.datastore == "flatfs" else f"test,{self.datastore}"
        self._ipfs("init", f"--profile={profile}", "--empty-repo")
        self._ipfs("config", "--json", "Addresses.Gateway", "[]")
        self._ipfs("config", "Addresses.API", f"/ip4/127.0.0.1/tcp/{self.api_port}")
        self._ipfs("config", "--json", "Swarm.ResourceMgr.Enabled", "false")

    def start(self, timeout: float = 60.0) -> str:
        self.init()
        api_file = self.repo / "api"
        if api_file.exists():
            api_file.unlink()
        log = open(self.repo / "daemon.log", "ab")
        self.proc = subprocess.Popen(
            [self.ipfs, "daemon", "--offline"], env=self.env, stdout=log, stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.repo / "daemon.log").read_text(errors="replace")[-500:]
                raise RuntimeError(f"ipfs daemon exited with {self.proc.returncode}: {tail}")
            if api_file.exists():
                self.api_url = _multiaddr_to_url(api_file.read_text())
                try:
                    if httpx.post(f"{self.api_url}/id", timeout=2).status_code == 200:
                        return self.api_url
                except httpx.TransportError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"ipfs daemon in {self.repo} not ready after {timeout}s")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def wipe(self) -> None:
        """Stop, delete the repo, start empty on a fresh port: the nuclear case."""
        self.stop()
        shutil.rmtree(self.repo, ignore_errors=True)
        self.start()
