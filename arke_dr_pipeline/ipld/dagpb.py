"""dag-pb, read as strictly as Kubo reads it (go-codec-dagpb, measured on Kubo 0.39).

A PBNode holds fields 1 (Data, once) and 2 (Links), both length-delimited;
a PBLink holds Hash, Name and Tsize, each at most once and in that order,
Hash a CID; the links come in one run. What Kubo takes, this takes too:
Data before the links, varints that are not minimal.
"""

from __future__ import annotations

from .cid import CIDError, split_cid
from .errors import BlockDecodeError


def _pb_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    """A protobuf varint: up to 10 bytes, not necessarily minimal (Kubo's reader takes both)."""
    value = shift = 0
    for _ in range(10):
        if pos >= end:
            raise BlockDecodeError("not dag-pb: varint runs past the end")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            if value >= 1 << 64:
                raise BlockDecodeError("not dag-pb: varint overflows 64 bits")
            return value, pos
        shift += 7
    raise BlockDecodeError("not dag-pb: varint longer than 10 bytes")


def _pb_bytes(buf: memoryview, pos: int, end: int, what: str) -> tuple[memoryview, int]:
    length, pos = _pb_varint(buf, pos, end)
    if pos + length > end:
        raise BlockDecodeError(f"not dag-pb: {what} runs past its end")
    return buf[pos : pos + length], pos + length


def decode_dag_pb(data: bytes) -> tuple[list[tuple[bytes, str]], bytes | None]:
    """(links as (cid, name), Data) of a PBNode; names are "" when absent.

    As strict as Kubo's decoder (go-codec-dagpb, measured on 0.39): only
    fields 1 (Data, once) and 2 (Links), both length-delimited; in a link,
    Hash, Name, Tsize, each at most once and in that order, Hash a CID; the
    links in one run (Links, Data, Links is "duplicate Links section").
    Data before Links and non-minimal varints pass there, so here too."""
    links: list[tuple[bytes, str]] = []
    payload = None
    after_data = False  # Data came after links: one more link would start a second Links section
    buf = memoryview(data)
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _pb_varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field not in (1, 2):
            raise BlockDecodeError(f"not dag-pb: field {field} in a PBNode (only 1 and 2 exist)")
        if wire != 2:
            raise BlockDecodeError(f"not dag-pb: wire type {wire} for PBNode field {field}")
        chunk, pos = _pb_bytes(buf, pos, end, "field")
        if field == 2:
            if links and payload is not None and after_data:
                raise BlockDecodeError("not dag-pb: links on both sides of Data (two Links sections)")
            links.append(_pb_link(chunk))
        elif payload is not None:
            raise BlockDecodeError("not dag-pb: two Data fields")
        else:
            payload = bytes(chunk)
            after_data = bool(links)
    return links, payload


def dag_pb_links(data: bytes) -> list[bytes]:
    return [cid for cid, _ in decode_dag_pb(data)[0]]


def _pb_link(buf: memoryview) -> tuple[bytes, str]:
    cid = None
    name = ""
    seen = 0  # the highest field read so far: Hash (1), Name (2), Tsize (3), in that order, once each
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _pb_varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        if field not in (1, 2, 3):
            raise BlockDecodeError(f"not dag-pb: field {field} in a PBLink (only 1, 2 and 3 exist)")
        if field <= seen:
            raise BlockDecodeError(f"not dag-pb: PBLink field {field} repeated or out of order")
        seen = field
        if wire != (0 if field == 3 else 2):
            raise BlockDecodeError(f"not dag-pb: wire type {wire} for PBLink field {field}")
        if field == 3:
            _, pos = _pb_varint(buf, pos, end)
            continue
        chunk, pos = _pb_bytes(buf, pos, end, "link field")
        if field == 1:
            cid = bytes(chunk)
            try:
                if split_cid(cid)[0] != len(cid):
                    raise BlockDecodeError("not dag-pb: link hash is not one CID")
            except CIDError as exc:
                raise BlockDecodeError(f"not dag-pb: link hash: {exc}") from None
        else:
            name = bytes(chunk).decode("utf-8", "replace")
    if cid is None:
        raise BlockDecodeError("not dag-pb: link without a hash")
    return cid, name
