"""Walking the event chain, newest first, as fast as the node allows.

The chain is a linked list as deep as it is long. `refs -r -u` on the head
lists the chain first (links are visited in key order and `prev` sorts
before `tip_cid`), so the CIDs of every event are known ahead and the
blocks are fetched pipelined instead of one round trip per event. Every
event is checked against the `prev` of the one before it; should the order
ever differ, the walk falls back to following `prev` one block at a time.

Kubo's `refs -r` holds every level it has descended into: one call over a
1,000,000-event chain grew the daemon past 4 GB. So the chain is listed in
windows of `max-depth`, each starting from the last event of the one before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

from ..arke.models import Event
from ..ipld.cid import DAG_JSON, CIDError, check_block, cid_codec, cid_str, parse_cid
from ..ipld.links import decode_block
from ..kubo.client import KuboClient
from ..kubo.errors import KuboError


class ChainError(RuntimeError):
    pass


def _decode_event(cid: bytes, data: bytes) -> Event:
    try:
        check_block(cid, data)
    except CIDError as exc:
        raise ChainError(f"event {cid_str(cid)}: {exc}") from None
    return Event.decode(decode_block(DAG_JSON, data), f"event {cid_str(cid)}")


CHAIN_WINDOW = 4096


def chain_cids(client: KuboClient, head: str, window: int = CHAIN_WINDOW) -> Iterator[str]:
    """The chain from `head`, newest first, for as long as `refs` lists it in chain order."""
    yield head
    start = head
    while True:
        listed = 0
        with closing(client.refs(start, recursive=True, unique=True, max_depth=window)) as refs:
            for ref in refs:
                if cid_codec(parse_cid(ref)) != DAG_JSON:
                    break
                listed += 1
                start = ref
                yield ref
        if listed < window:
            return


def walk_events(client: KuboClient, head: str, stop: str | None = None) -> Iterator[tuple[bytes, Event]]:
    """(cid, event) from `head` back to the first event, or until `stop` (excluded)."""
    stop_b = parse_cid(stop) if stop else None
    expected: bytes | None = parse_cid(head)
    if expected == stop_b:
        return
    try:
        for cid_text, data in client.get_blocks(chain_cids(client, head)):
            cid = parse_cid(cid_text)
            if cid != expected:
                break
            event = _decode_event(cid, data)
            yield cid, event
            expected = event.prev
            if expected is None or expected == stop_b:
                return
    except KuboError as exc:
        if expected is None:
            raise
        if "not found" in exc.kubo_message or "could not find" in exc.kubo_message:
            raise ChainError(f"event chain broken: {exc}") from None
        raise
    while expected is not None and expected != stop_b:
        try:
            data = client.block_get(cid_str(expected))
        except KuboError as exc:
            raise ChainError(f"event chain broken at {cid_str(expected)}: {exc.kubo_message}") from None
        event = _decode_event(expected, data)
        yield expected, event
        expected = event.prev
