"""The index pointer in MFS, shared with the Arke API that rewrites it at will."""

from __future__ import annotations

from ..arke.models import IndexPointer
from ..kubo.client import KuboClient


class ArchiveError(RuntimeError):
    """The archive is not in a state we can work from; the message says why."""


def read_pointer(client: KuboClient, path: str) -> IndexPointer | None:
    if client.files_stat(path) is None:
        return None
    return IndexPointer.decode(client.files_read(path), f"index pointer {path}")


def require_pointer(client: KuboClient, path: str) -> IndexPointer:
    pointer = read_pointer(client, path)
    if pointer is None:
        raise ArchiveError(f"no index pointer at {path}: is this an Arke node?")
    return pointer


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
