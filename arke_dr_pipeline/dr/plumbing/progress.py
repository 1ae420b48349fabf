"""Progress on stderr for long work, with rate and counts; quiet when asked."""

from __future__ import annotations

import os
import sys
import threading

from tqdm import tqdm

# tqdm's default lock imports multiprocessing and makes a semaphore: up to a
# quarter of a second at the first bar, and our bars live in one process
tqdm.set_lock(threading.RLock())


def progress(desc: str, total: int | None = None, unit: str = "blocks") -> tqdm:
    return tqdm(
        desc=desc, total=total, unit=unit, unit_scale=True, file=sys.stderr, mininterval=1.0,
        disable=os.environ.get("ARKE_PROGRESS", "1") == "0", leave=False, dynamic_ncols=True,
    )


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
