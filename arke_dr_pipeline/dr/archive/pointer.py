"""The index pointer in MFS, shared with the Arke API that rewrites it at will."""

from __future__ import annotations

import json

from ...arke.models import IndexPointer
from ...arke.snapshot_codec import decode_snapshot
from ...errors import ArkeDrError
from ...ipld.cid import cid_str, parse_cid, split_cid
from ...kubo.client import KuboClient
from ...kubo.errors import KuboError
from ..plumbing.config import Settings


class ArchiveError(ArkeDrError, RuntimeError):
    """The archive is not in a state we can work from; the message says why."""


def read_pointer(client: KuboClient, path: str) -> IndexPointer | None:
    if client.files_stat(path) is None:
        return None
    return IndexPointer.decode(client.files_read(path), f"index pointer {path}")


def current_snapshot(client: KuboClient, settings: Settings) -> str:
    """The newest snapshot of ours: our record's, when it is on this node.

    The pointer is read by others and rewritten by them: the Arke API's
    builder puts its own snapshots there (whose entries we do not trust as
    a backup's root, see snapshot.py), and its stale writes put back older
    ones. Without a record of ours, the pointer's snapshot."""
    kept = read_record(settings)
    if kept and isinstance(kept.get("snapshot_cid"), str):
        try:
            client.block_stat(kept["snapshot_cid"])
            return kept["snapshot_cid"]
        except (KuboError, ValueError):
            pass
    pointer = require_pointer(client, settings.index_pointer_path)
    if not pointer.latest_snapshot_cid:
        raise ArchiveError("the index pointer names no snapshot yet: run build-snapshot first")
    return pointer.latest_snapshot_cid


def require_pointer(client: KuboClient, path: str) -> IndexPointer:
    pointer = read_pointer(client, path)
    if pointer is None:
        raise ArchiveError(f"no index pointer at {path}: is this an Arke node?")
    return pointer


def replace_fields(client: KuboClient, path: str, fields: dict) -> IndexPointer:
    """A restore's write: the pointer re-read (or new), `fields` set over it, written whole.
    Fields another writer added and we do not set are kept."""
    current = read_pointer(client, path) or IndexPointer.empty()
    current.raw.update(fields)
    client.files_write(path, current.encode())
    return current


def update_snapshot_fields(client: KuboClient, path: str, fields: dict, *, attempts: int = 5) -> IndexPointer:
    """Re-read the pointer and change only the snapshot fields.

    The Arke API appends events and rewrites the pointer while we build, so
    the pointer read at the start of the build is stale by now; writing it
    back would lose every event appended meanwhile. Re-read immediately
    before writing, then read again: if a concurrent rewrite dropped our
    fields, apply them again on top of it.
    """
    for _ in range(attempts):
        current = require_pointer(client, path)
        current.raw.update(fields)
        client.files_write(path, current.encode())
        after = require_pointer(client, path)
        if all(after.raw.get(k) == v for k, v in fields.items()):
            return after
    raise ArchiveError(f"index pointer {path} kept changing under us; snapshot fields not recorded")


def snapshot_record(*, snapshot_cid: str, seq: int, ts: str, event_cid: str, total_count: int,
                    event_count: int, trigger: str, **more) -> dict:
    """`snapshots/snapshot-{seq}.json` and `latest.json`: ours, with upstream's
    keys (`cid`, `seq`, `ts`, `count`) beside them so upstream tools keep
    reading it, and the pointer fields it stands for, to repair a reverted pointer."""
    return {
        "cid": snapshot_cid, "count": total_count,
        "snapshot_cid": snapshot_cid, "seq": seq, "ts": ts, "event_cid": event_cid,
        "total_count": total_count, "event_count": event_count, "trigger": trigger, **more,
        "pointer_fields": {
            "latest_snapshot_cid": snapshot_cid, "snapshot_event_cid": event_cid, "snapshot_seq": seq,
            "snapshot_count": total_count, "snapshot_ts": ts, "snapshot_event_count": event_count,
            "last_snapshot_trigger": trigger,
        },
    }


def reverted_pointer(client: KuboClient, settings: Settings, pointer) -> dict | None:
    """Our record of the newest snapshot, when the pointer names an older one.

    The Arke API rewrites the whole pointer from its own copy, so it can put
    back the snapshot fields of an earlier snapshot (or none). Ours is newer
    when the pointer's snapshot is one of its ancestors through
    `prev_snapshot`, and the record's snapshot is on this node (a record left
    from another archive is not).
    """
    record = read_record(settings)
    if record is None or record.get("snapshot_cid") == pointer.latest_snapshot_cid:
        return None
    if record.get("published") is False:
        return None
    if not isinstance(record.get("seq"), int) or record["seq"] <= pointer.snapshot_seq:
        return None
    if not isinstance(record.get("pointer_fields"), dict):
        return None
    try:
        cur: bytes | None = parse_cid(record["snapshot_cid"])
        client.block_stat(record["snapshot_cid"])
        older = parse_cid(pointer.latest_snapshot_cid) if pointer.latest_snapshot_cid else None
        for _ in range(64):
            if cur is None or cur == older:
                break
            header = decode_snapshot(client.block_get(cur), f"snapshot {cid_str(cur)}",
                                     split_cid(cur)[1])
            cur = header.prev_snapshot
    except (KuboError, ValueError):
        return None
    return record if cur == older else None


def read_record(settings: Settings) -> dict | None:
    """Our record of the newest snapshot, `snapshots/latest.json`; None when absent or unreadable."""
    try:
        record = json.loads((settings.snapshots_dir / "latest.json").read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
