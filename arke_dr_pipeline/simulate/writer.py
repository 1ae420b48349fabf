"""A stand-in for the Arke API's writes: `simulate-writes`, concurrency tests, benchmarks.

It writes as the API does (Arke-Institute/ipfs-server, `api/main.py` and
`api/event_queue.py`): each new version's manifest through `dag/put` with
`input-codec=json`, `store-codec=dag-cbor`, `pin=true` (links as plain
`{"/": cid}` maps), then its tip file through `files/write` with no newline;
the events are written in batches of up to 50, the same way, each naming
the previous head, and after each batch the index pointer read at the
batch's start is written back whole with the new head and counts. That last
step is the API's stale write: any snapshot fields another writer recorded
during the batch are put back as they were, which the snapshot build must
notice and repair.

`shape="seed"` writes as the seed's generator does instead: manifests from
dag-json (tag-42 links), events stored as dag-json.
"""

from __future__ import annotations

import json
import random
import threading
import time

from ..arke.models import API_MANIFEST_SCHEMA, MANIFEST_SCHEMA, Manifest, tip_path
from ..dr.archive.pointer import require_pointer
from ..dr.plumbing.config import Settings
from ..dr.plumbing.progress import progress
from ..errors import BadInput
from ..ipld.links import dag_cbor_links
from ..kubo.client import KuboClient
from ..kubo.errors import KuboError
from .testdata import iso, ulid

BATCH = 50


def _json(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _link(cid: str | None) -> dict | None:
    return {"/": cid} if cid else None


class ArchiveWriter:
    def __init__(self, client: KuboClient, settings: Settings, *, seed: int = 7, shape: str = "api"):
        if shape not in ("api", "seed"):
            raise BadInput(f"unknown shape {shape!r}: expected api or seed")
        self.client = client
        self.settings = settings
        self.shape = shape
        self.rng = random.Random(seed)
        pointer = require_pointer(client, settings.index_pointer_path)
        self.head = pointer.event_head
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

    def _put_manifest(self, pi: str, ver: int, prev: str | None, ts: str) -> str:
        note = f"written by the simulator at {ts}"
        if self.shape == "api":
            body = {"schema": API_MANIFEST_SCHEMA, "pi": pi, "ver": ver, "ts": ts, "prev": _link(prev),
                    "components": {}, "children_pi": [], "note": note}
            return self.client.dag_put(_json(body), store_codec="dag-cbor", input_codec="json", pin=True)
        body = {"schema": MANIFEST_SCHEMA, "pi": pi, "ver": ver, "ts": ts, "prev": _link(prev),
                "components": {}, "children_pi": [], "note": note}
        return self.client.dag_put(_json(body), store_codec="dag-cbor", input_codec="dag-json", pin=True)

    def _put_event(self, typ: str, pi: str, ver: int, tip: str, ts: str) -> str:
        body = {"schema": "arke/event@v1", "type": typ, "pi": pi, "ver": ver, "tip_cid": {"/": tip},
                "ts": ts, "prev": _link(self.head)}
        store = "dag-cbor" if self.shape == "api" else "dag-json"
        return self.client.dag_put(_json(body), store_codec=store, input_codec="json", pin=True)

    def new_version(self, pi: str | None = None) -> tuple[str, str, int]:
        """A manifest and its tip file, as the API's create/update handlers write them."""
        if pi is None:
            pi = ulid(int(time.time() * 1000), self.rng)
        ver, prev = self._current(pi)
        ts = iso(int(time.time() * 1000))
        mcid = self._put_manifest(pi, ver + 1, prev, ts)
        self.client.files_write(tip_path(pi, self.settings.index_root), mcid.encode())
        self._tips[pi] = (ver + 1, mcid)
        return pi, mcid, ver + 1

    def write_batch(self, versions: list[tuple[str, str, int]]) -> list[str]:
        """The events of `versions`, then the pointer read before them written back whole."""
        pointer = require_pointer(self.client, self.settings.index_pointer_path)
        self.head = pointer.event_head
        written = []
        for pi, mcid, ver in versions:
            ts = iso(int(time.time() * 1000))
            self.head = self._put_event("create" if ver == 1 else "update", pi, ver, mcid, ts)
            pointer.raw["event_count"] = pointer.event_count + 1
            if ver == 1:
                pointer.raw["total_count"] = pointer.total_count + 1
            written.append(self.head)
        pointer.raw["event_head"] = self.head
        pointer.raw["last_updated"] = iso(int(time.time() * 1000))
        self.client.files_write(self.settings.index_pointer_path, _json(pointer.raw))
        self.appended.extend(written)
        return written

    def append(self, pi: str | None = None) -> str:
        """One create (new PI) or update (existing PI) event, in a batch of its own; its CID."""
        return self.write_batch([self.new_version(pi)])[0]

    def run(self, count: int, *, rate: float | None = None, stop: threading.Event | None = None,
            update_share: float = 0.5, batch: int = BATCH, show_progress: bool = False) -> list[str]:
        """Append `count` events at `rate` per second (None: as fast as possible), in batches."""
        bar = progress("simulating writes", total=count, unit="events") if show_progress else None
        pending: list[tuple[str, str, int]] = []
        started = time.monotonic()
        try:
            for n in range(count):
                if stop is not None and stop.is_set():
                    break
                known = list(self._tips)
                pi = self.rng.choice(known) if known and self.rng.random() < update_share else None
                pending.append(self.new_version(pi))
                if len(pending) >= (1 if rate else batch):
                    self.write_batch(pending)
                    pending = []
                if bar is not None:
                    bar.update()
                if rate:
                    time.sleep(max(0.0, started + (n + 1) / rate - time.monotonic()))
            if pending:
                self.write_batch(pending)
        finally:
            if bar is not None:
                bar.close()
        return self.appended

