"""An iterator run on a thread of its own, its items taken as they are ready.

The export's walk has two kinds of work: the event chain, a round trip to
Kubo per event of the Arke API's shape (waiting, the GIL let go), and
everything else, parsed and checked in Python as it streams. Run one after
the other, the waits add up (30 s of 80 at 30k entities); with the chain on
a thread, the parsing fills them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

LIMIT = 4096  # items held for the taker: an event is ~250 bytes, so ~1 MB


class Ahead(Generic[T]):
    """`take()` what `items` has yielded so far; the error it raised is raised there, after them."""

    def __init__(self, items: Iterator[T], *, limit: int = LIMIT, name: str = "ahead"):
        self._queue: queue.Queue = queue.Queue(limit)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._ended = False
        self._thread = threading.Thread(target=self._run, args=(items,), name=name, daemon=True)
        self._thread.start()

    @property
    def finished(self) -> bool:
        """Every item taken, and the error, if any, raised."""
        return self._ended and self._error is None

    def _run(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if not self._put((True, item)):
                    return
        except BaseException as exc:  # handed to the taker, who raises it
            self._put((False, exc))
        else:
            self._put((False, None))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's `finally` (a kept-open connection) runs on its own thread

    def _put(self, entry: tuple[bool, object]) -> bool:
        """False once the taker has gone."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def take(self, *, wait: bool = False, most: int = LIMIT) -> list[T]:
        """Up to `most` items ready now; with `wait`, at least one unless `items` has ended."""
        out: list[T] = []
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        while not self._ended and len(out) < most:
            try:
                ok, item = self._queue.get(block=wait and not out)
            except queue.Empty:
                break
            if ok:
                out.append(item)
                continue
            self._ended = True
            self._thread.join()
            if item is not None:
                if not out:
                    raise item
                self._error = item  # what came before it is taken first
        return out

    def close(self) -> None:
        """Stop the thread when the taker stops early (an error, a consumer that left)."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                pass
        self._ended, self._error = True, None
