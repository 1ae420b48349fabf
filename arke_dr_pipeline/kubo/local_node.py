"""`scripts/kubo-node start|stop|status`: the long-lived node of the embedded default.

Repo under `.arke/ipfs`, API on a fixed loopback port (`ARKE_NODE_PORT`,
default 5101) so that `IPFS_API_URL=http://127.0.0.1:5101/api/v0` finds it.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import httpx

from .daemon import PROJECT_ROOT, KuboDaemon

REPO = PROJECT_ROOT / ".arke" / "ipfs"
PIDFILE = PROJECT_ROOT / ".arke" / "kubo.pid"


def port() -> int:
    return int(os.environ.get("ARKE_NODE_PORT", "5101"))


def api_url() -> str:
    return f"http://127.0.0.1:{port()}/api/v0"


def _running() -> int | None:
    try:
        pid = int(PIDFILE.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _answers() -> bool:
    try:
        return httpx.post(f"{api_url()}/id", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def start() -> int:
    if _running() and _answers():
        print(f"kubo-node: running at {api_url()}")
        return 0
    daemon = KuboDaemon(REPO, api_port=port())
    daemon.start()
    PIDFILE.write_text(str(daemon.proc.pid))
    daemon.proc = None  # keep it running after we exit
    print(f"kubo-node: started at {api_url()} (repo {REPO})")
    return 0


def stop() -> int:
    pid = _running()
    if pid is None:
        print("kubo-node: not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.1)
    PIDFILE.unlink(missing_ok=True)
    print("kubo-node: stopped")
    return 0


def status() -> int:
    pid = _running()
    if pid and _answers():
        print(f"kubo-node: running (pid {pid}) at {api_url()}")
        return 0
    print("kubo-node: not running")
    return 1


def wipe() -> int:
    import shutil

    stop()
    shutil.rmtree(REPO, ignore_errors=True)
    print(f"kubo-node: wiped {REPO}")
    return 0


def main(argv: list[str]) -> int:
    commands = {"start": start, "stop": stop, "status": status, "wipe": wipe}
    if len(argv) != 1 or argv[0] not in commands:
        print("usage: kubo-node start|stop|status|wipe", file=sys.stderr)
        return 2
    return commands[argv[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
