"""A shallow root over the same blocks, so bare `ipfs dag export` can finish.

Kubo's export walks depth first and its memory grows with the depth of the
DAG; the archive's event chain is as deep as it is long, and 30,000 events
already need gigabytes. Listing every block of our CAR under a two-level
tree of dag-cbor lists, children before parents, bounds that depth at four:
root, list, block, and links that were already visited. Kubo then exports
exactly our blocks (plus the lists), which is the floor we compare against.
"""

from __future__ import annotations

from pathlib import Path

import cbrrr

from arke_dr_pipeline.ipld.car import CarReader
from arke_dr_pipeline.ipld.cid import DAG_CBOR, cid_codec, cid_str, make_cid
from arke_dr_pipeline.ipld.links import block_links
from arke_dr_pipeline.kubo.client import KuboClient

LIST_LINKS = 20_000  # ~43 bytes a link: each list stays under Kubo's 1 MiB block limit


def children_first(car: Path) -> list[bytes]:
    """Every block of `car` in post order: a block after everything it links to."""
    links: dict[bytes, list[bytes]] = {}
    with open(car, "rb", buffering=1 << 20) as fh:
        reader = CarReader(fh)
        roots = list(reader.roots)
        for block in reader:
            links[block.cid] = block_links(cid_codec(block.cid), block.data)
    order: list[bytes] = []
    done: set[bytes] = set()
    for start in [*roots, *links]:
        stack = [(start, iter(links.get(start, ())))]
        if start in done:
            continue
        done.add(start)
        while stack:
            cid, children = stack[-1]
            child = next((c for c in children if c not in done and c in links), None)
            if child is None:
                stack.pop()
                order.append(cid)
            else:
                done.add(child)
                stack.append((child, iter(links[child])))
    return order


def put_flat_root(client: KuboClient, car: Path) -> tuple[str, int]:
    """(root CID, blocks listed) of a two-level list tree over the CAR's blocks."""
    order = children_first(car)
    lists = []
    for i in range(0, len(order), LIST_LINKS):
        data = cbrrr.encode_dag_cbor([cbrrr.CID(c) for c in order[i : i + LIST_LINKS]])
        lists.append(_put(client, data))
    return cid_str(_put(client, cbrrr.encode_dag_cbor([cbrrr.CID(c) for c in lists]))), len(order)


def _put(client: KuboClient, data: bytes) -> bytes:
    cid = make_cid(DAG_CBOR, data)
    got = client.block_put(data, cid_codec="dag-cbor")
    if got != cid_str(cid):
        raise RuntimeError(f"Kubo stored a list block as {got}, expected {cid_str(cid)}")
    return cid
