"""Walking the event chain, newest first, as fast as the node allows.

The chain is a linked list as deep as it is long, written in two shapes.

Where `prev` is an IPLD link (the seed's dag-json events), `dag/export` of
an event streams the chain first (links are walked in key order and `prev`
sorts before `tip_cid`), so a few hundred events come in one response
instead of one round trip each. Kubo's traversal holds every level it has
descended into (an unbounded export of an 8,000-event chain peaks at
2.2 GB), so each stream is dropped after `WINDOW` events and the next one
starts where it stopped.

Where `prev` is a plain `{"/": cid}` map (the Arke API's dag-cbor events),
Kubo sees no link at all and an export brings one block. Those events are
asked for one at a time on one kept-open connection (`block_session`): a
loopback round trip per event and no per-request setup. One chain may switch shapes midway; the
walk switches with it, event by event. Every event is hashed against its
CID and decoded by its own CID's codec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ...arke.models import ArkeDecodeError, Event
from ...errors import ArkeDrError
from ...ipld.car import CarError, CarReader
from ...ipld.cid import CODEC_NAMES, DAG_CBOR, DAG_JSON, CIDError, check_block, cid_str, parse_cid, split_cid
from ...ipld.links import BlockDecodeError, dag_cbor_value, dag_json_links
from ...kubo.client import KuboClient
from ...kubo.errors import KuboError
from ..plumbing.streams import IterReader

WINDOW = 256


class ChainError(ArkeDrError, RuntimeError):
    pass


def decode_event(cid: bytes, data: bytes) -> tuple[Event, bool]:
    """(the event, whether Kubo's traversals follow its `prev`)."""
    name = f"event {cid_str(cid)}"
    try:
        check_block(cid, data)
        codec = split_cid(cid)[1]
        if codec == DAG_JSON:
            value, followable = dag_json_links(data)[0], True
        elif codec == DAG_CBOR:
            value, real, _ = dag_cbor_value(data)
            followable = bool(real)
        else:
            raise ChainError(f"{name}: codec {CODEC_NAMES.get(codec, hex(codec))} is not dag-cbor or dag-json")
        event = Event.decode(value, name)
    except (CIDError, BlockDecodeError) as exc:
        raise ChainError(f"{name}: {exc}") from None
    except ArkeDecodeError as exc:
        raise ChainError(str(exc)) from None
    return event, followable and event.prev is not None and (codec == DAG_JSON or event.prev in real)


def _exported(client: KuboClient, start: bytes, window: int) -> Iterator[tuple[bytes, bytes]]:
    """The first `window` blocks of `dag/export start`; the stream is dropped after."""
    with client.dag_export(start, chunk_size=None) as chunks:
        for n, block in enumerate(CarReader(IterReader(chunks), verify=False)):
            if n == window:
                return
            yield block.cid, block.data


def event_blocks(client: KuboClient, head: str, until: Callable[[bytes], bool] = lambda cid: False,
                 window: int = WINDOW) -> Iterator[tuple[bytes, bytes, Event]]:
    """(cid, block, event) from `head` back to the first event, or to the first for which `until` holds."""
    expected: bytes | None = parse_cid(head)
    followable = split_cid(expected)[1] == DAG_JSON
    try:
        while expected is not None and not until(expected):
            if followable:
                followable = False
                for cid, data in _exported(client, expected, window):
                    if cid != expected:
                        break
                    event, followable = decode_event(cid, data)
                    yield cid, data, event
                    expected = event.prev
                    if expected is None or until(expected):
                        return
                    if not followable:
                        break
                continue
            with client.block_session() as session:
                while True:
                    data = session.get(expected)
                    event, followable = decode_event(expected, data)
                    yield expected, data, event
                    expected = event.prev
                    if expected is None or until(expected) or followable:
                        break
    except KuboError as exc:
        if "not found" in exc.kubo_message or "could not find" in exc.kubo_message:
            raise ChainError(f"event chain broken at {cid_str(expected)}: {exc.kubo_message}") from None
        raise
    except CarError as exc:
        raise ChainError(f"event chain unreadable at {cid_str(expected)}: {exc}") from None


def walk_events(client: KuboClient, head: str, stop: str | None = None) -> Iterator[tuple[bytes, Event]]:
    """(cid, event) from `head` back to the first event, or until `stop` (excluded)."""
    stop_b = parse_cid(stop) if stop else None
    for cid, _, event in event_blocks(client, head, lambda cid: cid == stop_b):
        yield cid, event
