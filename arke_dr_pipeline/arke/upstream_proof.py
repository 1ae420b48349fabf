"""Upstream's append-only proof, as APPEND_ONLY_PROOFS.md documents it.

A snapshot named by the index pointer is read by the Arke API's own
builder, which compares the `all_cids` of the snapshot it extends with its
own: whatever we publish must carry the same fields computed the same way,
or the API's next build reports deletions that never happened.

The tree: leaves are the CID texts sorted as Python sorts strings, each
hashed with SHA-256; a parent is SHA-256 of its two children's digests;
an odd node at the end of a level is paired with itself; the empty tree is
SHA-256 of nothing. The root is lower-case hex.

Test-network entities (PIs starting `II`, tips under `/arke/test/index`)
are left out of the proof, as upstream leaves them out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def is_test_pi(pi: str) -> bool:
    return pi.startswith("II")


def merkle_root(sorted_cids: list[str]) -> str:
    sha = hashlib.sha256
    if not sorted_cids:
        return sha(b"").hexdigest()
    level = [sha(c.encode()).digest() for c in sorted_cids]
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0].hex()


def consistency(prev: set[str] | None, curr: set[str]) -> dict | None:
    """The `consistency` field: None when the snapshot extended had no CID list."""
    if not prev:
        return None
    deleted = len(prev - curr)
    return {
        "prev_cid_count": len(prev), "curr_cid_count": len(curr),
        "added_count": len(curr - prev), "deleted_count": deleted, "is_append_only": deleted == 0,
    }


def proof_fields(cids: Iterable[str], prev: set[str] | None) -> dict:
    """`merkle_root`, `cid_count`, `all_cids` (sorted) and `consistency` for a snapshot of `cids`."""
    current = set(cids)
    ordered = sorted(current)
    return {"merkle_root": merkle_root(ordered), "cid_count": len(ordered), "all_cids": ordered,
            "consistency": consistency(prev, current)}
