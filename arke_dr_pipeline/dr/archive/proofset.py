"""The CIDs upstream's append-only proof counts, collected from the node.

Upstream's builder walks every changed entity's versions one `dag/get` at a
time; here each round reads one manifest of every entity still walking, all
pipelined, so the cost is the depth of the longest history in round trips.
An incremental build walks a changed entity only down to the version the
snapshot it extends already counted: the union with that snapshot's
`all_cids` is then the same set a full walk gives.
"""

from __future__ import annotations

from ...arke.models import ArkeDecodeError, Manifest
from ...arke.upstream_proof import is_test_pi
from ...ipld.cid import CIDError, check_block, cid_str, split_cid
from ...ipld.links import BlockDecodeError, decode_block
from ...kubo.client import KuboClient
from ...kubo.errors import KuboError
from .pointer import ArchiveError


def history_cids(client: KuboClient, walks: list[tuple[str, bytes, bytes, bytes | None]],
                 problems: list[str]) -> set[str]:
    """Every manifest version and component CID, and each chain entry, of
    `walks`: (pi, chain CID, tip CID, the tip already counted or None).
    Test-network entities are left out, as upstream leaves them out.

    A manifest that is missing or does not hash to its CID ends its walk and
    goes in `problems`: the snapshot is still built (the backup's own checks
    then name the block), so one bad block never stops the snapshots."""
    found: set[str] = set()
    current: dict[bytes, list[bytes | None]] = {}
    for pi, chain, tip, stop in walks:
        if is_test_pi(pi):
            continue
        found.add(cid_str(chain))
        if tip != stop:
            current.setdefault(tip, []).append(stop)
    while current:
        following: dict[bytes, list[bytes | None]] = {}
        for cid, data in _blocks(client, list(current), problems):
            try:
                manifest = _manifest(cid, data)
            except ArchiveError as exc:
                problems.append(f"upstream's proof: {exc}")
                continue
            found.add(cid_str(cid))
            found.update(cid_str(c) for c in manifest.components.values())
            if manifest.prev is not None:
                for stop in current[cid]:
                    if manifest.prev != stop:
                        following.setdefault(manifest.prev, []).append(stop)
        current = following
    return found


def _blocks(client: KuboClient, cids: list[bytes], problems: list[str]):
    """The blocks pipelined; if the node fails one, each again on its own, naming what it lacks."""
    try:
        yield from list(client.get_blocks(cids))
        return
    except KuboError:
        pass
    for cid in cids:
        try:
            yield cid, client.block_get(cid)
        except KuboError as exc:
            problems.append(f"upstream's proof: manifest {cid_str(cid)}: {exc.kubo_message or exc}")


def _manifest(cid: bytes, data: bytes) -> Manifest:
    name = f"manifest {cid_str(cid)}"
    try:
        check_block(cid, data)
        return Manifest.decode(decode_block(split_cid(cid)[1], data), name)
    except (CIDError, BlockDecodeError) as exc:
        raise ArchiveError(f"{name}: {exc}") from None
    except ArkeDecodeError as exc:
        raise ArchiveError(str(exc)) from None
