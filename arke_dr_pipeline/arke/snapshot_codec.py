"""Snapshot blocks: the seed's single-block `@v1`, chunked past 1 MiB.

Snapshots that fit one block stay `arke/snapshot@v1`, which the Arke API's
`/snapshot/latest` and upstream tools read. Bigger ones are chunked under a
schema name of ours (`SNAPSHOT_CHUNKED`): upstream writes `arke/snapshot@v2`
with inline entries, and two formats under one name would be read wrongly
by one side or the other. Every format upstream has written is readable.

Blocks are encoded here in canonical dag-json (the library's encoder, and a
fast path for entries held equal to it by the tests), so their CIDs are
known before Kubo sees them and can be checked after.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from itertools import chain
from operator import itemgetter

import cbrrr
import dag_json

from ..ipld.cid import DAG_JSON, CIDError, cid_str, make_cid, parse_cid
from ..ipld.links import dag_json_links, decode_block, opening_strings, plain_strings
from .models import (
    CHUNK_SCHEMA,
    PROOF_LIST,
    SNAPSHOT_CHUNKED,
    SNAPSHOT_V1,
    SNAPSHOT_V2,
    SnapshotEntry,
    SnapshotHeader,
    decode_chunk,
    valid_pi,
)

BLOCK_LIMIT = 1 << 20
CHUNK_TARGET = 900 * 1024


def to_dag_json_value(value):
    """cbrrr.CID -> {"/": cid}: the dag-json library then encodes canonically."""
    if isinstance(value, cbrrr.CID):
        return {"/": cid_str(value.cid_bytes)}
    if isinstance(value, dict):
        return {k: to_dag_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_dag_json_value(v) for v in value]
    return value


def encode_dag_json(value) -> tuple[bytes, bytes]:
    data = dag_json.encode(to_dag_json_value(value))
    return make_cid(DAG_JSON, data), data


def _plain(text: str) -> bool:
    """Needs no JSON escaping: then the canonical encoding is a plain format."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


# An entry of the previous snapshot kept as it was read: (its canonical
# bytes, PI, ver), all bytes. An incremental build reads 300,000 of them and
# changes a few hundred, so they are made by the pattern below in C.
EncodedEntry = tuple[bytes, bytes, bytes]

# exactly what `entry_dag_json` writes for a plain entry (a valid PI, CIDs as
# Kubo spells them, a plain ts), then the comma before the next one or the end
_PLAIN_ENTRY = re.compile(
    rb'(\{"chain_cid":\{"/":"b[a-z2-7]+"\},"pi":"([A-Z0-9_]{8,64})","tip_cid":\{"/":"b[a-z2-7]+"\},'
    rb'"ts":"[\x20\x21\x23-\x5b\x5d-\x7e]*","ver":([1-9][0-9]{0,17})\})(?:,|(?=\],"schema":))')
_CHUNK_HEAD = b'{"entries":['
_CHUNK_TAIL = b'],"schema":"' + CHUNK_SCHEMA.encode() + b'"}'


def reusable_entries(data: bytes) -> dict[str, EncodedEntry] | None:
    """The entries of a chunk block by PI, as their bytes, when every one is
    in the plain form `entry_dag_json` writes; None sends the chunk to the decoder.

    The plain form holds no bracket, brace or quote inside its strings, and
    matches never overlap: when they and their commas add up to the whole
    array, they are its items, back to back.
    """
    if not (data.startswith(_CHUNK_HEAD) and data.endswith(_CHUNK_TAIL)):
        return None
    found = _PLAIN_ENTRY.findall(data, len(_CHUNK_HEAD))
    items = len(data) - len(_CHUNK_HEAD) - len(_CHUNK_TAIL)
    if not found or sum(map(len, map(itemgetter(0), found))) + len(found) - 1 != items:
        return None
    return dict(zip(map(bytes.decode, map(itemgetter(1), found)), found, strict=True))


def entry_ver(e: SnapshotEntry | EncodedEntry) -> int:
    return int(e[2]) if type(e) is tuple else e.ver


def entry_dag_json(e: SnapshotEntry | EncodedEntry) -> bytes:
    """Canonical dag-json of one entry, keys in byte order.

    Snapshots of 30,000 entities are re-encoded on every incremental build;
    the generic encoder costs ~25 us an entry, this ~5. Anything unusual goes
    to the generic encoder, and the tests hold the two equal. An entry kept
    as its bytes is those bytes.
    """
    if type(e) is tuple:
        return e[0]
    if e.tip_file is None and _plain(e.pi) and _plain(e.ts) and type(e.ver) is int:
        tip, chain = e.texts or (cid_str(e.tip_cid), cid_str(e.chain_cid))
        return (f'{{"chain_cid":{{"/":"{chain}"}},"pi":"{e.pi}",'
                f'"tip_cid":{{"/":"{tip}"}},"ts":"{e.ts}","ver":{e.ver}}}').encode()
    return dag_json.encode(to_dag_json_value(e.to_ipld()))


def _with_entries(encoded: list[bytes], rest: dict) -> bytes:
    """`rest` plus "entries", spliced: "entries" sorts before every other key here."""
    tail = dag_json.encode(to_dag_json_value(rest))
    assert min(rest) > "entries", rest.keys()
    return b'{"entries":[' + b",".join(encoded) + b"]," + tail[1:]


def encode_snapshot(
    *, seq: int, ts: str, event_cid: str, prev_snapshot: bytes | None,
    entries: list[SnapshotEntry | EncodedEntry],
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """(root CID, blocks with the root last). `entries` must be sorted by PI."""
    blocks = list(snapshot_blocks(seq=seq, ts=ts, event_cid=event_cid, prev_snapshot=prev_snapshot,
                                  entries=entries))
    return blocks[-1][0], blocks


def snapshot_blocks(
    *, seq: int, ts: str, event_cid: str, prev_snapshot: bytes | None,
    entries: list[SnapshotEntry | EncodedEntry],
) -> Iterator[tuple[bytes, bytes]]:
    """(CID, block) of each chunk as it is encoded, the root last, so a build
    can put one group of chunks while it encodes the next."""
    header = {
        "schema": SNAPSHOT_V1, "seq": seq, "ts": ts, "event_cid": event_cid,
        "total_count": len(entries),
        "prev_snapshot": cbrrr.CID(prev_snapshot) if prev_snapshot else None,
    }
    encoded = map(entry_dag_json, entries)  # a chunk's worth at a time: 85 MB at 300,000 entries
    first: list[bytes] = []
    size = 0
    for enc in encoded:
        first.append(enc)
        size += len(enc) + 1
        if size >= BLOCK_LIMIT - 4096:
            break
    else:
        data = _with_entries(first, header)
        if len(data) < BLOCK_LIMIT:
            yield make_cid(DAG_JSON, data), data
            return
    chunks: list[cbrrr.CID] = []
    for group in size_groups(chain(first, encoded), CHUNK_TARGET, 1):
        data = _with_entries(group, {"schema": CHUNK_SCHEMA})
        cid = make_cid(DAG_JSON, data)
        chunks.append(cbrrr.CID(cid))
        yield cid, data
    header["schema"] = SNAPSHOT_CHUNKED
    header["chunks"] = chunks
    yield encode_dag_json(header)


def inline_snapshot_block(
    *, seq: int, ts: str, event_cid: str, prev_snapshot: bytes | None,
    entries: list[SnapshotEntry | EncodedEntry], proof: dict,
) -> tuple[bytes, bytes]:
    """(CID, block) of upstream's one-block `arke/snapshot@v2`: entries inline
    in the order given, then `merkle_root`, `cid_count`, `all_cids` and
    `consistency` (see upstream_proof.py), canonical dag-json.

    The block is what the Arke API's builder and `/snapshot/latest` read with
    one `dag/get`; past 1 MiB it needs `allow-big-block`, as upstream's own do.
    The CID texts are plain ASCII, so the sorted list is joined, not encoded
    item by item."""
    before = dag_json.encode(to_dag_json_value({"cid_count": proof["cid_count"],
                                                "consistency": proof["consistency"]}))
    after = dag_json.encode(to_dag_json_value({
        "event_cid": event_cid, "merkle_root": proof["merkle_root"],
        "prev_snapshot": cbrrr.CID(prev_snapshot) if prev_snapshot else None,
        "schema": SNAPSHOT_V2, "seq": seq, "total_count": len(entries), "ts": ts,
    }))
    cids = proof["all_cids"]
    if not all(c.isascii() and c.isalnum() for c in cids):
        raise ValueError("all_cids holds a string that is not a CID's text")
    data = b"".join((
        b'{"all_cids":[', b",".join(b'"' + c.encode() + b'"' for c in cids), b"],", before[1:-1],
        b',"entries":[', b",".join(map(entry_dag_json, entries)), b"],", after[1:],
    ))
    return make_cid(DAG_JSON, data), data


def size_groups(items: Iterable[bytes], limit: int, overhead: int) -> Iterator[list[bytes]]:
    """`items` in order, in groups whose lengths plus `overhead` each stay
    within `limit` (a group of one may pass it): chunks of a snapshot, lists
    of CIDs for a listing block."""
    group: list[bytes] = []
    size = 0
    for item in items:
        if group and size + len(item) + overhead > limit:
            yield group
            group, size = [], 0
        group.append(item)
        size += len(item) + overhead
    if group:
        yield group


def snapshot_all_cids(data: bytes, codec: int = DAG_JSON) -> set[str] | None:
    """The `all_cids` of upstream's proof in a snapshot block; None when it has none.

    Upstream writes it first and plain, so it is read from the bytes; the rest of
    the block is still decoded, so a block that is not valid dag-json is refused."""
    cut = opening_strings(data, PROOF_LIST) if codec == DAG_JSON else None
    if cut is not None:
        dag_json_links(cut[0])
        texts = (t.decode("utf-8", "surrogateescape") for t in plain_strings(cut[1]))
        return {c for c in texts if c.isascii() and c.isalnum()}
    value = decode_block(codec, data)
    cids = value.get(PROOF_LIST) if isinstance(value, dict) else None
    if not isinstance(cids, list) or not cids:
        return None
    return {c for c in cids if isinstance(c, str) and c.isascii() and c.isalnum()}  # CID texts only


def decode_snapshot(data: bytes, name: str = "snapshot", codec: int = DAG_JSON) -> SnapshotHeader:
    """Ours and upstream's are dag-json; `codec` (from the CID) reads a dag-cbor one too."""
    value = dag_json_links(data, skip=PROOF_LIST)[0] if codec == DAG_JSON else decode_block(codec, data)
    return SnapshotHeader.decode(value, name)


def snapshot_entries(header: SnapshotHeader, get_block) -> Iterable[SnapshotEntry]:
    """Entries of a v1 or v2 snapshot; `get_block(cid bytes) -> bytes` reads chunks."""
    if header.entries is not None:
        yield from header.entries
        return
    for i, chunk in enumerate(header.chunks or []):
        yield from decode_chunk_block(get_block(chunk), f"snapshot chunk {i} ({cid_str(chunk)})")


def decode_chunk_block(data: bytes, name: str) -> list[SnapshotEntry]:
    """Entries of one chunk block. The common shape takes a fast path (plain
    `json.loads`, links read by hand); anything else, and every error, goes
    through the strict generic decoder so messages stay the same."""
    try:
        value = json.loads(data)
        raw = value["entries"] if value.get("schema") == CHUNK_SCHEMA else None
        fast = [_fast_entry(e) for e in raw] if isinstance(raw, list) else [None]
    except (ValueError, AttributeError, TypeError):
        fast = [None]
    if None not in fast:
        return fast
    return decode_chunk(decode_block(DAG_JSON, data), name)


def _link_text(v) -> str | None:
    return v["/"] if type(v) is dict and len(v) == 1 and type(v.get("/")) is str else None


def _fast_entry(d) -> SnapshotEntry | None:
    """Only Kubo's spelling of a CID keeps its text: any other would not re-encode the same."""
    if type(d) is not dict or len(d) != 5:
        return None
    pi, ver, ts = d.get("pi"), d.get("ver"), d.get("ts")
    tip, chain = _link_text(d.get("tip_cid")), _link_text(d.get("chain_cid"))
    if type(ver) is not int or ver < 1 or type(ts) is not str or tip is None or chain is None or not valid_pi(pi):
        return None
    try:
        tip_b, chain_b = parse_cid(tip), parse_cid(chain)
    except CIDError:
        return None
    texts = (tip, chain) if _canonical(tip, tip_b) and _canonical(chain, chain_b) else None
    return SnapshotEntry(pi, ver, tip_b, ts, chain_b, texts)


def _canonical(text: str, raw: bytes) -> bool:
    """`text` is what `cid_str(raw)` would give: base32 of exactly that length."""
    return text[0] == "b" and len(text) == 1 + -(-len(raw) * 8 // 5)
