"""The CIDs upstream's append-only proof counts, collected from the node.

Upstream's builder walks every changed entity's versions one `dag/get` at a
time; here each round reads one manifest of every entity still walking, all
pipelined, so the cost is the depth of the longest history in round trips.
An incremental build walks a changed entity only down to the version the
snapshot it extends already counted: the union with that snapshot's
`all_cids` is then the same set a full walk gives.
"""

from __future__ import annotations

from ..arke.models import ArkeDecodeError, Manifest
from ..arke.upstream_proof import is_test_pi
from ..ipld.cid import CIDError, check_block, cid_str, split_cid
from ..ipld.links import BlockDecodeError, decode_block
from ..kubo.client import KuboClient
from .pointer import ArchiveError


def history_cids(client: KuboClient, walks: list[tuple[str, bytes, bytes, bytes | None]]) -> set[str]:
    """Every manifest version and component CID, and each chain entry, of
    `walks`: (pi, chain CID, tip CID, the tip already counted or None).
    Test-network entities are left out, as upstream leaves them out."""
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
        for cid, data in client.get_blocks(list(current)):
            manifest = _manifest(cid, data)
            found.add(cid_str(cid))
            found.update(cid_str(c) for c in manifest.components.values())
            if manifest.prev is not None:
                for stop in current[cid]:
                    if manifest.prev != stop:
                        following.setdefault(manifest.prev, []).append(stop)
        current = following
    return found


def _manifest(cid: bytes, data: bytes) -> Manifest:
    name = f"manifest {cid_str(cid)}"
    try:
        check_block(cid, data)
        return Manifest.decode(decode_block(split_cid(cid)[1], data), name)
    except (CIDError, BlockDecodeError) as exc:
        raise ArchiveError(f"{name}: {exc}") from None
    except ArkeDecodeError as exc:
        raise ArchiveError(str(exc)) from None
