"""A stand-in for the Arke API's writes, for concurrency tests and benchmarks.

Per append, as the API does: a manifest block, an event block whose `prev`
is the head, the entity's tip file, then the index pointer rewritten from a
fresh read with only the head and counts changed. The writer owns the head
(it keeps it in memory, as the API does behind its own lock), so when a
concurrent pointer write from a snapshot build lands first, the next append
carries the true head again; `finish` writes it one last time.
"""

from __future__ import annotations

import random
import threading
import time

import cbrrr

from ..arke.models import Event, Manifest, tip_path
from ..arke.snapshot_codec import encode_dag_json
from ..ipld.cid import cid_str, parse_cid
from ..ipld.links import dag_cbor_links
from ..kubo.client import KuboClient
from ..kubo.errors import KuboError
from .config import Settings
from .pointer import require_pointer
from .testdata import iso, ulid


class ArchiveWriter:
    def __init__(self, client: KuboClient, settings: Settings, *, seed: int = 7):
        self.client = client
        self.settings = settings
        self.rng = random.Random(seed)
        pointer = require_pointer(client, settings.index_pointer_path)
        self.head = pointer.event_head
        self.event_count = pointer.event_count
        self.total_count = pointer.total_count
        self.appended: list[str] = []
        self._tips: dict[str, tuple[int, str]] = {}

    def _current(self, pi: str) -> tuple[int, str | None]:
        if pi in self._tips:
            return self._tips[pi]
        try:
            tip = self.client.files_read(tip_path(pi, self.settings.index_root)).decode().strip()
        except KuboError:
            return 0, None
        return Manifest.decode(dag_cbor_links(self.client.block_get(tip))[0]).ver, tip

    def append(self, pi: str | None = None) -> str:
        """One create (new PI) or update (existing PI) event; its CID."""
        if pi is None:
            pi = ulid(int(time.time() * 1000), self.rng)
        ver, prev = self._current(pi)
        ts = iso(int(time.time() * 1000))
        manifest = Manifest(pi, ver + 1, ts, parse_cid(prev) if prev else None, {}, [],
                            f"written by the simulator at {ts}")
        mcid = self.client.block_put(cbrrr.encode_dag_cbor(manifest.to_ipld()), cid_codec="dag-cbor")
        event = Event("create" if ver == 0 else "update", pi, ver + 1, parse_cid(mcid), ts,
                      parse_cid(self.head) if self.head else None)
        ecid, edata = encode_dag_json(event.to_ipld())
        got = self.client.block_put(edata, cid_codec="dag-json")
        assert got == cid_str(ecid)
        self.client.files_write(tip_path(pi, self.settings.index_root), (mcid + "\n").encode())
        self._tips[pi] = (ver + 1, mcid)
        self.head = got
        self.event_count += 1
        if ver == 0:
            self.total_count += 1
        self._write_pointer()
        self.appended.append(got)
        return got

    def _write_pointer(self) -> None:
        pointer = require_pointer(self.client, self.settings.index_pointer_path)
        pointer.raw.update({"event_head": self.head, "event_count": self.event_count,
                            "total_count": self.total_count,
                            "last_updated": iso(int(time.time() * 1000))})
        self.client.files_write(self.settings.index_pointer_path, pointer.encode())

    def finish(self) -> None:
        pointer = require_pointer(self.client, self.settings.index_pointer_path)
        if pointer.event_head != self.head:
            self._write_pointer()

    def run(self, count: int, *, rate: float | None = None, stop: threading.Event | None = None,
            update_share: float = 0.5) -> list[str]:
        """Append `count` events at `rate` per second (None: as fast as possible)."""
        known = list(self._tips)
        for _ in range(count):
            if stop is not None and stop.is_set():
                break
            pi = self.rng.choice(known) if known and self.rng.random() < update_share else None
            self.append(pi)
            known = list(self._tips)
            if rate:
                time.sleep(1.0 / rate)
        self.finish()
        return self.appended
