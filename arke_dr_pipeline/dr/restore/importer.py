"""A CAR into Kubo, whatever the size of its blocks.

`dag import` reads sections through go-car, which refuses one over 8 MiB ("length of read
beyond allowable maximum", Kubo 0.39), while upstream's builder writes its whole snapshot as
one block (32 MB at 40,000 entities) with `block put --allow-big-block`, and so does our
`inline` publishing. So a section past that limit is held out of the imported stream and put
on its own, as upstream put it; every other block goes in as one stream, as before.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ...ipld.car import CarReader
from ...ipld.cid import CODEC_NAMES, cid_str, parse_cid, read_uvarint, split_cid, uvarint
from ...kubo.client import KuboClient
from ...kubo.errors import KuboError
from ..plumbing.progress import log
from ..verify.dagcheck import BackupInvalid

KUBO_SECTION_LIMIT = 8 << 20  # go-car's DefaultMaxAllowedSectionSize, which `dag import` uses


@dataclass(frozen=True)
class Oversized:
    cid: bytes
    start: int  # the section's first byte (its length varint) in the file
    end: int


def oversized_sections(car: Path) -> list[Oversized]:
    """The sections `dag import` would refuse, read without hashing (the CAR already verified)."""
    found = []
    with open(car, "rb", buffering=1 << 20) as fh:
        for block in CarReader(fh, verify=False):
            n = len(block.cid) + len(block.data)
            if n > KUBO_SECTION_LIMIT:
                found.append(Oversized(block.cid, block.offset, block.offset + len(uvarint(n)) + n))
    return found


def without(car: Path, start: int, length: int, holes: list[Oversized], size: int = 1 << 20) -> Iterator[bytes]:
    """The bytes of `car` in [start, start + length), less the held-out sections."""
    end = start + length
    with open(car, "rb") as fh:
        pos = start
        for hole in sorted(holes, key=lambda h: h.start) + [None]:
            stop = hole.start if hole is not None else end
            fh.seek(pos)
            while pos < stop:
                chunk = fh.read(min(size, stop - pos))
                if not chunk:
                    raise BackupInvalid(None, f"{car.name} changed after it verified: shorter now")
                pos += len(chunk)
                yield chunk
            if hole is not None:
                pos = hole.end


def put_oversized(client: KuboClient, car: Path, held: list[Oversized]) -> None:
    """Each held-out block with `block/put --allow-big-block`; the node must name it as the CAR does."""
    with open(car, "rb") as fh:
        for section in held:
            fh.seek(section.start)
            raw = fh.read(section.end - section.start)
            data = raw[read_uvarint(raw, 0)[1] + len(section.cid):]
            codec = split_cid(section.cid)[1]
            got = client.block_put(data, cid_codec=CODEC_NAMES[codec], allow_big_block=True)
            if parse_cid(got) != section.cid:
                raise KuboError("block/put", cid_str(section.cid), f"the node stored the block as {got}")
            log(f"put {cid_str(section.cid)} ({len(data) / 1e6:.1f} MB) on its own: `dag import` takes at most "
                f"{KUBO_SECTION_LIMIT >> 20} MiB a block")


def import_file(client: KuboClient, car: Path, *, start: int = 0, length: int | None = None,
                big: bool = False, transport=None) -> None:
    """The CARv1 bytes of `car` in [start, start + length) into the node, unpinned."""
    length = car.stat().st_size - start if length is None else length
    held = oversized_sections(car) if big else []
    if transport is None:
        client.dag_import(without(car, start, length, held), pin_roots=False, allow_big_block=big)
    else:
        with _v1_copy(car, start, length, held) as path:
            transport.dag_import(path, allow_big_block=big)
    put_oversized(client, car, held)


@contextmanager
def _v1_copy(car: Path, start: int, length: int, held: list[Oversized]) -> Iterator[Path]:
    """A file the transport can move in: the CAR itself, or its importable CARv1 bytes beside it."""
    if start == 0 and length == car.stat().st_size and not held:
        yield car
        return
    tmp = car.with_name(f".{car.name}.v1.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            for chunk in without(car, start, length, held):
                out.write(chunk)
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)
