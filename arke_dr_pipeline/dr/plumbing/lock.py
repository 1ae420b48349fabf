"""Locks that follow the conflicts, across processes, with no stale lock after a crash.

`flock` is released by the kernel when the holder dies, so a `kill -9`
leaves nothing to clean up, unlike the seed's PID file with a 10-minute
expiry. The file keeps the last holder's PID for the error message only.

What conflicts with what, on one node and its folders:
- a restore replaces the archive: it holds `archive` exclusively, so no
  snapshot build, backup or other restore runs beside it;
- a snapshot build and a backup read the archive: they hold `archive`
  shared, and their own lock (`snapshot-build`, `backup`) exclusively, so
  two builds never run at once and two backups take turns (a backup's
  steps share a staged CAR of its seq).
`archive` is always taken first, so two operations never wait on each other.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ...errors import ArkeDrError


class LockBusy(ArkeDrError, RuntimeError):
    pass


@contextmanager
def _flock(lock_dir: Path, name: str, mode: int, *, wait: bool, wait_timeout: float,
           busy: str) -> Iterator[None]:
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f".{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_timeout
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait or time.monotonic() > deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    raise LockBusy(f"{busy} (pid {holder}, lock {path}); wait for it or pass --wait") from None
                time.sleep(0.2)
        if mode == fcntl.LOCK_EX:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


@contextmanager
def exclusive(lock_dir: Path, name: str, *, wait: bool = False, wait_timeout: float = 3600.0):
    with _flock(lock_dir, name, fcntl.LOCK_EX, wait=wait, wait_timeout=wait_timeout,
                busy=f"a {name} is already running"):
        yield


@contextmanager
def reading_archive(lock_dir: Path, name: str, *, wait: bool = False,
                    wait_timeout: float = 3600.0) -> Iterator[None]:
    """A snapshot build or a backup: the archive shared, `name` exclusive."""
    with ExitStack() as stack:
        stack.enter_context(_flock(lock_dir, "archive", fcntl.LOCK_SH, wait=wait,
                                   wait_timeout=wait_timeout, busy="a restore is replacing this archive"))
        stack.enter_context(exclusive(lock_dir, name, wait=wait, wait_timeout=wait_timeout))
        yield


@contextmanager
def replacing_archive(lock_dir: Path, *, wait: bool = False, wait_timeout: float = 3600.0) -> Iterator[None]:
    """A restore: nothing else touches the archive meanwhile."""
    with _flock(lock_dir, "archive", fcntl.LOCK_EX, wait=wait, wait_timeout=wait_timeout,
                busy="a restore, snapshot build or backup is using this archive"):
        yield
