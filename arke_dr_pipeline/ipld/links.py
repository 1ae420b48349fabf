"""Links out of a block, for the four codecs the archive uses.

Decoding is done by the codec libraries (cbrrr for dag-cbor, json for
dag-json); what is ours is collecting the links as binary CIDs on the way.

A link comes in two forms. The IPLD one (CBOR tag 42, dag-json `{"/": cid}`)
and the one the Arke API writes: it sends JSON to `dag/put` with
`input-codec=json`, so in its dag-cbor blocks a link is a plain map whose
only key is "/" and whose value is the CID's text. Kubo's traversals
(`dag/export`, `refs`, `pin add -r`) do not see those; we do, and lift them
to `cbrrr.CID` like the others. A link-shaped map whose value does not parse
as a CID stays a map: the Arke models then refuse it, naming the field.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re

import cbrrr

from .cid import DAG_CBOR, DAG_JSON, DAG_PB, IDENTITY, RAW, CIDError, parse_cid, split_cid
from .dagpb import dag_pb_links
from .errors import BlockDecodeError

# Decoding a block builds Python objects, about a hundred bytes each: an
# 8 MiB block of nested one-byte arrays is 8 million of them (about 1 GB).
# Blocks above SHAPE_CHECK_BYTES have their shape checked first, cheaply,
# against these limits, far above anything Arke writes (a manifest holds a
# few dozen items, a snapshot chunk about 20,000 containers, upstream's
# `all_cids` one list of a few hundred thousand strings). Below the
# threshold a block cannot build more than a few MB of objects.
SHAPE_CHECK_BYTES = 64 * 1024
MAX_DEPTH = 256
MAX_ITEMS = 1_000_000
MAX_CONTAINERS = 200_000


def _not(codec: str, exc: BaseException) -> BlockDecodeError:
    if isinstance(exc, UnicodeDecodeError):
        return BlockDecodeError(f"not {codec}: a string is not valid UTF-8")
    if isinstance(exc, RecursionError):
        return BlockDecodeError(f"not {codec}: nested deeper than this verifier reads")
    text = str(exc) or type(exc).__name__
    return BlockDecodeError(f"not {codec}: {text[:200]}")


def check_cbor_shape(data: bytes, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS) -> int:
    """The number of items in one CBOR value, read from item heads only;
    BlockDecodeError past the limits or on a malformed head."""
    pos, end = 0, len(data)
    stack = [1]
    items = 0
    while stack:
        if stack[-1] == 0:
            stack.pop()
            continue
        if pos >= end:
            raise BlockDecodeError("not dag-cbor: truncated")
        head = data[pos]
        pos += 1
        major, info = head >> 5, head & 31
        if info < 24:
            value = info
        elif info <= 27:
            width = 1 << (info - 24)
            if pos + width > end:
                raise BlockDecodeError("not dag-cbor: truncated")
            value = int.from_bytes(data[pos : pos + width], "big")
            pos += width
        else:
            raise BlockDecodeError("not dag-cbor: indefinite length or reserved value")
        if major == 6:
            continue  # a tag: the item after it takes its place
        stack[-1] -= 1
        items += 1
        if items > max_items:
            raise BlockDecodeError(f"block holds more than {max_items} items")
        if major in (2, 3):
            pos += value
            if pos > end:
                raise BlockDecodeError("not dag-cbor: a string runs past the block")
        elif major in (4, 5):
            count = value * 2 if major == 5 else value
            if count > end - pos:
                raise BlockDecodeError("not dag-cbor: a container claims more items than the block has bytes")
            if count:
                stack.append(count)
                if len(stack) > max_depth + 1:
                    raise BlockDecodeError(f"nested deeper than {max_depth} levels")
    if pos != end:
        raise BlockDecodeError("not dag-cbor: bytes after the value")
    return items


def check_json_shape(data: bytes, max_containers: int = MAX_CONTAINERS) -> None:
    """A bound on the objects a dag-json block can build, counted in C."""
    containers = data.count(b"{") + data.count(b"[")
    if containers > max_containers:
        raise BlockDecodeError(f"block holds more than {max_containers} maps and lists")
    if data.count(b",") + containers > MAX_ITEMS:
        raise BlockDecodeError(f"block holds more than {MAX_ITEMS} items")


_PLAIN_LINK_MARK = b"\xa1\x61/"  # CBOR: a map of one entry whose key is the text "/"
# A negative integer below int64, which Kubo refuses, is head 0x3b and an
# 8-byte argument of at least 2**63: its first byte has the high bit set.
# Only a block holding those two bytes somewhere is walked to look.
_MAYBE_BELOW_INT64 = re.compile(b"\x3b[\x80-\xff]")


def dag_cbor_value(data: bytes) -> tuple[object, list[bytes], list[bytes]]:
    """(value, tag-42 links, plain-map links); both kinds are `cbrrr.CID` in the value."""
    found: list[bytes] = []

    def collect(raw: bytes) -> bytes:
        split_cid(raw)
        found.append(raw)
        return cbrrr.CID(raw)

    if len(data) > SHAPE_CHECK_BYTES:
        check_cbor_shape(data)
    try:
        value = cbrrr.decode_dag_cbor(bytes(data), cid_ctor=collect)
    except Exception as exc:
        raise _not("dag-cbor", exc) from None
    if _MAYBE_BELOW_INT64.search(data):
        _refuse_below_int64(value)
    plain: list[bytes] = []
    if _PLAIN_LINK_MARK in data:
        value = _lift_plain_links(value, plain)
    return value, found, plain


def _refuse_below_int64(value: object) -> None:
    stack = [value]
    while stack:
        node = stack.pop()
        if type(node) is int:
            if node < -(1 << 63):
                raise BlockDecodeError("not dag-cbor: negative integer below the 64-bit range")
        elif type(node) is dict:
            stack.extend(node.values())
        elif type(node) is list:
            stack.extend(node)


def dag_cbor_links(data: bytes) -> tuple[object, list[bytes]]:
    value, real, plain = dag_cbor_value(data)
    return value, real + plain if plain else real


def plain_link_target(obj: object) -> bytes | None:
    """The CID a link-shaped plain map names, or None when `obj` is not one."""
    if type(obj) is dict and len(obj) == 1:
        target = obj.get("/")
        if type(target) is str:
            try:
                return parse_cid(target)
            except CIDError:
                return None
    return None


def _lift_plain_links(value: object, plain: list[bytes]) -> object:
    """`value` with every link-shaped map replaced by a `cbrrr.CID`; iterative,
    so nesting depth costs memory, never Python's stack. Only containers go on
    the stack, and values are replaced in place (a dict's size never changes):
    this walk runs for nearly every block the Arke API writes."""
    if type(value) is dict and (target := plain_link_target(value)) is not None:
        plain.append(target)
        return cbrrr.CID(target)
    stack = [value]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            items = node.items()
        elif type(node) is list:
            items = enumerate(node)
        else:
            continue
        for key, child in items:
            kind = type(child)
            if kind is dict:
                if len(child) == 1 and type(text := child.get("/")) is str:
                    try:
                        target = parse_cid(text)
                    except CIDError:
                        stack.append(child)
                        continue
                    plain.append(target)
                    node[key] = cbrrr.CID(target)
                    continue
                stack.append(child)
            elif kind is list:
                stack.append(child)
    return value


INT64 = range(-(1 << 63), 1 << 63)


def _json_int(text: str) -> int:
    value = int(text)
    if value not in INT64:
        raise BlockDecodeError(f"not dag-json: integer {text[:40]} does not fit in 64 bits")
    return value


def _json_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise BlockDecodeError(f"not dag-json: number {text[:40]} overflows a float")
    return value


def _json_constant(text: str):
    raise BlockDecodeError(f"not dag-json: {text} is not a number IPLD allows")


def _raw_base64(text: str) -> bytes:
    """dag-json bytes: standard base64, padded or not, as Kubo reads them."""
    body = text.rstrip("=")
    if len(body) % 4 == 1 or (body != text and len(text) % 4):
        raise BlockDecodeError("not dag-json: bytes are not base64")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error:
        raise BlockDecodeError("not dag-json: bytes are not base64") from None


# A JSON list of strings with no escapes, items back to back: checked in C, never built
_PLAIN_STRINGS = re.compile(rb'(?:"[^"\\\x00-\x1f]*",)*"[^"\\\x00-\x1f]*"')
_PLAIN_STRING = re.compile(rb'"([^"\\\x00-\x1f]*)"')


def opening_strings(data: bytes, key: str) -> tuple[bytes, list[bytes]] | None:
    """(the block without the items, a way to read them) when `data` opens
    with `key` holding a list of plain strings: `{"key":["a","b"],...}`.

    Upstream's one-block snapshot opens with `all_cids`, a list of every CID
    in the archive as text: 29 of its 34 MB at 470k blocks, ~50 MB of Python
    strings that nothing but the proof's own reader needs. Any other shape
    (an escape, a space, an empty list) gives None and is decoded whole.
    """
    head = b'{"' + key.encode() + b'":['
    if not data.startswith(head):
        return None
    end = data.find(b"]", len(head))
    if end < 0 or not _PLAIN_STRINGS.fullmatch(data, len(head), end):
        return None
    items = memoryview(data)[len(head):end]
    return head + data[end:], items


def plain_strings(items: memoryview) -> list[bytes]:
    """The items `opening_strings` left out, as bytes."""
    return _PLAIN_STRING.findall(items)


def dag_json_links(data: bytes, *, skip: str | None = None) -> tuple[object, list[bytes]]:
    """(value, links) of a dag-json block, refused where Kubo refuses (measured on 0.39): a key
    twice in one map, NaN or Infinity, an integer beyond 64 bits, a float that overflows, a
    link that is not a CID, bytes that are not base64. Invalid UTF-8 passes there, so here.

    `skip`: a key whose list of plain strings opens the block (`opening_strings`) is checked but
    not built, and is an empty list in the value. Strings hold no links, so the links are the
    same; the shape limits then count the rest of the block, since only the rest is built."""
    if skip is not None and (cut := opening_strings(data, skip)) is not None:
        data = cut[0]
    found: list[bytes] = []

    def pairs(items: list[tuple[str, object]]) -> object:
        obj = dict(items)
        if len(obj) != len(items):
            seen: set[str] = set()
            dup = next(k for k, _ in items if k in seen or seen.add(k))
            raise BlockDecodeError(f"not dag-json: map key {dup[:40]!r} twice")
        if len(obj) == 1 and "/" in obj:
            target = obj["/"]
            if isinstance(target, str):
                raw = parse_cid(target)
                found.append(raw)
                return cbrrr.CID(raw)
            if type(target) is dict and len(target) == 1 and isinstance(target.get("bytes"), str):
                return _raw_base64(target["bytes"])
        return obj

    if len(data) > SHAPE_CHECK_BYTES:
        check_json_shape(data)
    try:
        value = json.loads(bytes(data).decode("utf-8", "surrogateescape"), object_pairs_hook=pairs,
                           parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant)
    except BlockDecodeError:
        raise
    except CIDError as exc:
        raise BlockDecodeError(f"not dag-json: a link {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise _not("dag-json", exc) from None
    return value, found


def block_links(codec: int, data: bytes) -> list[bytes]:
    if codec == RAW:
        return []
    if codec == DAG_PB:
        return dag_pb_links(data)
    if codec == DAG_CBOR:
        return dag_cbor_links(data)[1]
    if codec == DAG_JSON:
        return dag_json_links(data)[1]
    raise BlockDecodeError(f"unknown codec 0x{codec:x}")


MAX_INLINE_DEPTH = 16


def inline_links(cid: bytes) -> list[bytes]:
    """The links out of an identity CID's inline block, through inline blocks nested in it.

    Kubo stores no block for an identity CID, but its pin decodes the inline
    data with the CID's codec and follows its links: data that does not
    decode, or a link to a block that is absent, fails the pin after an
    import has written the rest. So the inline data is checked like a block.
    """
    out: list[bytes] = []
    stack = [(cid, 0)]
    while stack:
        current, depth = stack.pop()
        _, codec, _, start, length = split_cid(current)
        if codec not in (RAW, DAG_PB, DAG_CBOR, DAG_JSON):
            raise BlockDecodeError(f"inline block of unknown codec 0x{codec:x}")
        for link in block_links(codec, bytes(current[start : start + length])):
            if split_cid(link)[2] != IDENTITY:
                out.append(link)
            elif depth >= MAX_INLINE_DEPTH:
                raise BlockDecodeError(f"inline blocks nested deeper than {MAX_INLINE_DEPTH}")
            else:
                stack.append((link, depth + 1))
    return out


def decode_block(codec: int, data: bytes) -> object:
    """The IPLD value of a dag-cbor or dag-json block, links as cbrrr.CID."""
    if codec == DAG_CBOR:
        return dag_cbor_links(data)[0]
    if codec == DAG_JSON:
        return dag_json_links(data)[0]
    raise BlockDecodeError(f"codec 0x{codec:x} has no IPLD value here")
