"""Pins that keep every block of the archive, whatever shape its links take.

Kubo's recursive pin follows only IPLD links. The Arke API writes its links
as plain `{"/": cid}` maps, so a recursive pin of a snapshot root keeps the
snapshot, the tips and little else: `ipfs repo gc` would then delete most of
the archive. The API itself pins each object as it writes it; we pin a
cover instead: dag-cbor blocks that name every block of the inventory with
real links, each under the block limit, under one root, pinned recursively
once. It lives only on the node (it is made again from any CAR on restore).
A delta backup pins a cover of its own blocks only, beside its base's.

When the node has lost a block (dr/backup/loss.py), the blocks whose links Kubo
follows down to it cannot sit under a recursive pin: they are pinned
directly (`arke-dr direct`), and never unpinned by retention, since they
are archive blocks every newer snapshot reaches too.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import cbrrr

from ...ipld.car import CarReader, CarWriter, replace_root
from ...ipld.cid import DAG_CBOR, IDENTITY, cid_str, make_cid, parse_cid, split_cid
from ...kubo.client import KuboClient
from ..archive.pointer import ArchiveError
from ..catalog.chains import chain_of
from ..catalog.sidecar import read_sidecar
from ..verify.dagcheck import BackupInvalid
from .inventory import inventory_cids
from .loss import read_loss, tainted

COVER_SCHEMA = "arke-dr/pin-cover@v1"
LINKS_PER_BLOCK = 20_000  # ~41 bytes a link: ~820 KB, under Kubo's 1 MiB block limit


def _block(links: list[bytes], level: int) -> tuple[bytes, bytes]:
    data = cbrrr.encode_dag_cbor({"schema": COVER_SCHEMA, "level": level,
                                  "links": [cbrrr.CID(c) for c in links]})
    return make_cid(DAG_CBOR, data), data


def cover_blocks(cids: Iterable[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """Cover blocks over `cids`, streamed, children before parents, the root last."""
    level: list[bytes] = []
    parents: list[bytes] = []
    for cid in cids:
        if split_cid(cid)[2] == IDENTITY:
            continue
        level.append(cid)
        if len(level) == LINKS_PER_BLOCK:
            block = _block(level, 0)
            parents.append(block[0])
            level = []
            yield block
    if level or not parents:
        block = _block(level, 0)
        parents.append(block[0])
        yield block
    depth = 1
    while len(parents) > 1:
        above: list[bytes] = []
        for i in range(0, len(parents), LINKS_PER_BLOCK):
            block = _block(parents[i : i + LINKS_PER_BLOCK], depth)
            above.append(block[0])
            yield block
        parents, depth = above, depth + 1


def pin_cover(client: KuboClient, cids: Iterable[bytes], *, name: str) -> dict:
    """Put the cover blocks and pin their root recursively, offline: three calls
    whatever the archive's size.

    The blocks go in as one small CAR (about 41 bytes a covered block),
    staged in a temporary file because its root is known only at the end.
    The pin walks every block the cover names and fails on the first one
    that is not local, without asking the network, so its success is also
    the proof that all of them are here.
    """
    root = None
    blocks = 0
    with tempfile.TemporaryDirectory(prefix="arke-dr-cover-") as tmp:
        path = os.path.join(tmp, "cover.car")
        placeholder = make_cid(DAG_CBOR, b"")
        with CarWriter(path, [placeholder]) as car:
            for cid, data in cover_blocks(cids):
                car.add(cid, data)
                root = cid
                blocks += 1
        assert root is not None
        replace_root(path, placeholder, root)
        with open(path, "rb") as fh:
            client.dag_import(fh, pin_roots=False)
    text = cid_str(root)
    client.pin_add(text, recursive=True, name=name, timeout=client.long_timeout)
    if client.pin_ls(text).get(text) != "recursive":
        raise ArchiveError(f"pin cover {text} is not pinned recursively after pin/add")
    return {"cover_cid": text, "cover_blocks": blocks}


def pin_direct(client: KuboClient, cids: set[bytes], *, batch: int = 500) -> int:
    """Direct pins of the blocks above a lost one, a few hundred per call."""
    texts = sorted(cid_str(c) for c in cids)
    for i in range(0, len(texts), batch):
        client.request("pin/add", texts[i : i + batch], {"recursive": False, "offline": True, "name": "arke-dr direct"},
                       timeout=client.long_timeout)
    return len(texts)


def pin_present(client: KuboClient, cids: Iterable[bytes], *, name: str, lost: set[bytes],
                cars: list[Path]) -> dict:
    """The cover of `cids`; with lost blocks, the cover of those Kubo can walk and direct pins of the rest."""
    if not lost:
        return pin_cover(client, cids, name=name)
    above = tainted(cars, lost)
    cover = pin_cover(client, (c for c in cids if c not in above), name=name)
    return {**cover, "direct_pins": pin_direct(client, above), "lost": len(lost)}


def pin_set(client: KuboClient, snapshot_cid: str, inventory: str | os.PathLike, *,
            delta: tuple[Path, Path] | None = None, staged: Path | None = None) -> dict:
    """One recursive pin of a cover naming every inventory CID (see dr/backup/pins.py), made offline.

    A recursive pin of the snapshot root would miss every block the Arke
    API links with plain maps. The offline pin fails on the first block that
    is not local, without asking the network: its success is the proof that
    every CID it covers is present.

    With a staged delta (staged CAR, base) whose base chain our pins already
    cover, the cover names only the delta's blocks (`arke-dr delta {snapshot}`):
    Kubo's recursive pin walks every block below it, a full cover's walk is
    the whole archive, and a delta's pins would otherwise cost as much as a full's.
    """
    started = time.monotonic()
    count = 0
    covered = delta is not None and covering_pins(set(client.pin_names().values()), delta[1]) is not None
    kind = "delta" if covered else "full"

    def cids():
        nonlocal count
        if kind == "delta":
            with open(delta[0], "rb", buffering=1 << 20) as fh:
                for block in CarReader(fh, verify=False):
                    count += 1
                    yield block.cid
            return
        for text in inventory_cids(inventory):
            count += 1
            yield parse_cid(text)

    lost = {parse_cid(e["cid"]) for e in read_loss(inventory)}
    cars = [delta[0]] if kind == "delta" else [p for p in (staged,) if p is not None and p.is_file()]
    if lost and not cars:
        raise ArchiveError(f"{len(lost)} block(s) are lost and the staged CAR is gone: take the inventory again")
    cover = pin_present(client, cids(), name=cover_name(snapshot_cid, delta=kind == "delta"), lost=lost, cars=cars)
    return {"snapshot_cid": snapshot_cid, "pinned": 1, "present": count, "kind": kind, **cover,
            "seconds": time.monotonic() - started}


def cover_name(snapshot_cid: str, *, delta: bool = False) -> str:
    return f"arke-dr {'delta ' if delta else ''}{snapshot_cid}"


def covering_pins(names: set[str], car: Path) -> set[str] | None:
    """The names of our pins that together cover every block of `car`'s chain, or None when they
    do not: a full cover of one of its snapshots (which names every older one too), and the delta
    covers of each newer link."""
    try:
        chain = chain_of(car, hashed=False)
    except BackupInvalid:
        return None
    used: set[str] = set()
    for link in reversed(chain):
        snapshot = (read_sidecar(link) or {}).get("snapshot_cid")
        if cover_name(snapshot) in names:
            return used | {cover_name(snapshot)}
        if cover_name(snapshot, delta=True) not in names:
            return None
        used.add(cover_name(snapshot, delta=True))
    return None
