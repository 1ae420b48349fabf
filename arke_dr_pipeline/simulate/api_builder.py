"""A stand-in for the Arke API's own snapshot builder, for the interleaving tests.

Written from the behaviour of upstream's `api/dr/build_snapshot.py`
(Arke-Institute/ipfs-server), which the API runs on a timer when
`AUTO_SNAPSHOT` is on; what it does, quirks included, because production
archives are shaped by them:

- it reads the pointer once, at the start, and at the end writes it back
  whole from that copy (an event batch appended meanwhile loses its head);
- with a previous snapshot it reads `entries` and `all_cids` from one
  `dag/get` of `latest_snapshot_cid` (a chunked snapshot reads as none)
  and walks the events after `snapshot_event_cid`, newest first, each
  new event overwriting its PI's entry: the entry keeps the oldest new
  event of its PI as `chain_cid`, with the version of the tip file now;
- without one it walks the whole chain, keeping each PI's newest event;
- a PI whose tip file is not under the main index (test network) is left out;
- entries are written in reverse of the order collected;
- `all_cids`: the previous list plus, for each changed PI, its tip's
  versions and their components (at most 100 CIDs a PI) and its chain_cid;
- the snapshot is `arke/snapshot@v2`, JSON stored as dag-json, pinned;
  `total_count` in the pointer becomes the number of entries.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ..arke.models import tip_path
from ..arke.upstream_proof import proof_fields
from ..dr.plumbing.config import Settings
from ..kubo.client import KuboClient
from ..kubo.errors import KuboError

MAX_HISTORY = 100


def _text(link) -> str | None:
    return link.get("/") if isinstance(link, dict) else link


class ApiSnapshotBuilder:
    def __init__(self, client: KuboClient, settings: Settings):
        self.client, self.settings = client, settings
        self.log: list[str] = []

    def _get(self, cid: str) -> dict:
        return json.loads(self.client.dag_get(cid))

    def _tip(self, pi: str) -> str | None:
        try:
            return self.client.files_read(tip_path(pi, self.settings.index_root)).decode().strip()
        except KuboError:
            return None

    def _entry(self, pi: str, ts: str, event: str) -> dict | None:
        tip = self._tip(pi)
        if tip is None:
            return None
        try:
            ver = self._get(tip).get("ver", 0)
        except KuboError:
            ver = 0
        return {"pi": pi, "ver": ver, "tip_cid": {"/": tip}, "ts": ts, "chain_cid": {"/": event}}

    def _history(self, tip: str) -> list[str]:
        out: list[str] = []
        cur: str | None = tip
        while cur and len(out) < MAX_HISTORY:
            out.append(cur)
            try:
                manifest = self._get(cur)
            except KuboError:
                break
            out.extend(c for c in map(_text, manifest.get("components", {}).values()) if c)
            cur = _text(manifest.get("prev"))
        return out

    def build(self) -> str | None:
        """One run of the builder: the new snapshot's CID, or None when there was nothing new."""
        pointer = json.loads(self.client.files_read(self.settings.index_pointer_path))
        head = pointer.get("event_head")
        if not head:
            raise RuntimeError("No event head found in index pointer")
        seq = (pointer.get("snapshot_seq") or 0) + 1
        prev_cid, prev_event = pointer.get("latest_snapshot_cid"), pointer.get("snapshot_event_cid")
        prev_cids: set[str] = set()
        if prev_cid and prev_event:
            if head == prev_event:
                return None
            previous = self._get(prev_cid)
            entries = {e["pi"]: e for e in previous.get("entries", [])}
            self.log.append(f"Loaded {len(entries)} entries from previous snapshot")
            prev_cids = set(previous.get("all_cids", []))
            modified = set()
            cur = head
            while cur and cur != prev_event:
                event = self._get(cur)
                modified.add(event["pi"])
                entry = self._entry(event["pi"], event.get("ts"), cur)
                if entry is not None:
                    entries[event["pi"]] = entry
                cur = _text(event.get("prev"))
            walk = [e for e in entries.values() if e["pi"] in modified] if prev_cids else list(entries.values())
        else:
            entries, cur = {}, head
            while cur:
                event = self._get(cur)
                if event["pi"] not in entries:
                    entry = self._entry(event["pi"], event.get("ts"), cur)
                    if entry is not None:
                        entries[event["pi"]] = entry
                cur = _text(event.get("prev"))
            walk = list(entries.values())
        cids = set(prev_cids)
        for e in walk:
            cids.update(self._history(_text(e["tip_cid"])))
            cids.add(_text(e["chain_cid"]))
        ordered = list(entries.values())
        ordered.reverse()
        ts = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        doc = {"schema": "arke/snapshot@v2", "seq": seq, "ts": ts, "event_cid": head,
               "total_count": len(ordered), "entries": ordered,
               "prev_snapshot": {"/": prev_cid} if prev_cid else None,
               **proof_fields(cids, prev_cids or None)}
        cid = self.client.dag_put(json.dumps(doc).encode(), store_codec="dag-json", input_codec="json",
                                  pin=True, allow_big_block=True)
        self.log.append(f"consistency: {doc['consistency']}")
        self.client.files_write(self.settings.index_pointer_path, json.dumps({
            "schema": "arke/index-pointer@v2", "event_head": head, "event_count": pointer.get("event_count", 0),
            "latest_snapshot_cid": cid, "snapshot_event_cid": head, "snapshot_seq": seq,
            "snapshot_count": len(ordered), "snapshot_ts": ts, "total_count": len(ordered), "last_updated": ts,
        }).encode())
        return cid
