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

import json

import cbrrr

from .cid import DAG_CBOR, DAG_JSON, DAG_PB, RAW, CIDError, parse_cid, read_uvarint, split_cid


class BlockDecodeError(ValueError):
    """A block whose bytes do not decode under the codec its CID names."""


_PLAIN_LINK_MARK = b"\xa1\x61/"  # CBOR: a map of one entry whose key is the text "/"


def dag_cbor_value(data: bytes) -> tuple[object, list[bytes], list[bytes]]:
    """(value, tag-42 links, plain-map links); both kinds are `cbrrr.CID` in the value."""
    found: list[bytes] = []

    def collect(raw: bytes) -> bytes:
        split_cid(raw)
        found.append(raw)
        return cbrrr.CID(raw)

    try:
        value = cbrrr.decode_dag_cbor(bytes(data), cid_ctor=collect)
    except Exception as exc:
        raise BlockDecodeError(f"invalid dag-cbor: {exc}") from None
    plain: list[bytes] = []
    if _PLAIN_LINK_MARK in data:
        value = _lift_plain_links(value, plain)
    return value, found, plain


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
    so nesting depth costs memory, never Python's stack."""
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
        for key, child in list(items):
            if type(child) is dict:
                target = plain_link_target(child)
                if target is not None:
                    plain.append(target)
                    node[key] = cbrrr.CID(target)
                    continue
            if type(child) in (dict, list):
                stack.append(child)
    return value


def dag_json_links(data: bytes) -> tuple[object, list[bytes]]:
    found: list[bytes] = []

    def hook(obj: dict) -> object:
        if len(obj) == 1 and "/" in obj:
            target = obj["/"]
            if isinstance(target, str):
                raw = parse_cid(target)
                found.append(raw)
                return cbrrr.CID(raw)
        return obj

    try:
        value = json.loads(bytes(data), object_hook=hook)
    except (ValueError, CIDError) as exc:
        raise BlockDecodeError(f"invalid dag-json: {exc}") from None
    return value, found


def decode_dag_pb(data: bytes) -> tuple[list[tuple[bytes, str]], bytes | None]:
    """(links as (cid, name), Data) of a PBNode; names are "" when absent."""
    links: list[tuple[bytes, str]] = []
    payload = None
    buf = memoryview(data)
    pos, end = 0, len(buf)
    try:
        while pos < end:
            key, pos = read_uvarint(buf, pos)
            if key & 7 != 2:
                raise BlockDecodeError("invalid dag-pb: unexpected wire type")
            length, pos = read_uvarint(buf, pos)
            stop = pos + length
            if stop > end:
                raise BlockDecodeError("invalid dag-pb: field runs past the block")
            if key >> 3 == 2:
                links.append(_pb_link(buf, pos, stop))
            elif key >> 3 == 1:
                payload = bytes(buf[pos:stop])
            else:
                raise BlockDecodeError(f"invalid dag-pb: unknown field {key >> 3}")
            pos = stop
    except CIDError as exc:
        raise BlockDecodeError(f"invalid dag-pb: {exc}") from None
    return links, payload


def dag_pb_links(data: bytes) -> list[bytes]:
    return [cid for cid, _ in decode_dag_pb(data)[0]]


def _pb_link(buf: memoryview, pos: int, stop: int) -> tuple[bytes, str]:
    cid = None
    name = ""
    while pos < stop:
        key, pos = read_uvarint(buf, pos)
        wire = key & 7
        if wire == 2:
            length, pos = read_uvarint(buf, pos)
            if pos + length > stop:
                raise BlockDecodeError("invalid dag-pb: link field runs past the link")
            if key >> 3 == 1:
                cid = bytes(buf[pos : pos + length])
                if split_cid(cid)[0] != len(cid):
                    raise BlockDecodeError("invalid dag-pb: link hash is not one CID")
            elif key >> 3 == 2:
                name = bytes(buf[pos : pos + length]).decode("utf-8", "replace")
            pos += length
        elif wire == 0:
            _, pos = read_uvarint(buf, pos)
        else:
            raise BlockDecodeError("invalid dag-pb: unexpected wire type in link")
    if cid is None:
        raise BlockDecodeError("invalid dag-pb: link without a hash")
    return cid, name


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


def decode_block(codec: int, data: bytes) -> object:
    """The IPLD value of a dag-cbor or dag-json block, links as cbrrr.CID."""
    if codec == DAG_CBOR:
        return dag_cbor_links(data)[0]
    if codec == DAG_JSON:
        return dag_json_links(data)[0]
    raise BlockDecodeError(f"codec 0x{codec:x} has no IPLD value here")
