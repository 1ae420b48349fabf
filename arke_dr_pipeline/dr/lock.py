"""One build at a time, across processes, with no stale lock after a crash.

`flock` is released by the kernel when the holder dies, so a `kill -9`
leaves nothing to clean up, unlike the seed's PID file with a 10-minute
expiry. The file keeps the holder's PID for the error message only.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path


class LockBusy(RuntimeError):
    pass


@contextmanager
def exclusive(lock_dir: Path, name: str, *, wait: bool = False, wait_timeout: float = 3600.0):
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f".{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait or time.monotonic() > deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    raise LockBusy(
                        f"a {name} is already running (pid {holder}, lock {path}); "
                        "wait for it or pass --wait"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
