"""Links resolved by sorting give the answer of sets, whatever the CIDs' lengths."""

import os
import random

import pytest

from arke_dr_pipeline.dr.plumbing import spill
from arke_dr_pipeline.dr.verify.refs import SortedRefs
from arke_dr_pipeline.ipld.cid import DAG_CBOR, RAW, make_cid, uvarint


def _cids(rng: random.Random, n: int) -> list[bytes]:
    """CIDs of every length the archive can hold: identity CIDs of 0 to 40 bytes (a short one
    shares its first bytes with a longer one), sha2-256 of two codecs, sha2-512, CIDv0."""
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            size = rng.randint(0, 40)
            out.append(b"\x01" + uvarint(RAW) + b"\x00" + uvarint(size) + os.urandom(size))
        elif kind == 1:
            out.append(make_cid(rng.choice((RAW, DAG_CBOR)), os.urandom(8)))
        elif kind == 2:
            out.append(b"\x01" + uvarint(DAG_CBOR) + b"\x13\x40" + os.urandom(64))
        else:
            out.append(make_cid(DAG_CBOR, os.urandom(8))[2:])
    return out


def _expected(blocks, links, excused):
    dups = sorted({b for b in blocks if blocks.count(b) > 1})
    if dups:
        return {"duplicate": dups[0]}
    held = set(blocks)
    missing = sorted({t for t, _ in links if t not in held})
    parents = {t: min(p for tt, p in links if tt == t) for t in missing}
    missing = [t for t in missing if not excused(t, parents[t])]
    unlinked = sorted(held - {t for t, _ in links})
    return {"duplicate": None, "missing": len(missing),
            "first_missing": (missing[0], parents[missing[0]]) if missing else None,
            "unreferenced": len(unlinked), "first_unreferenced": unlinked[0] if unlinked else None}


@pytest.mark.parametrize("seed", range(8))
def test_the_sorted_resolution_answers_as_sets_do(monkeypatch, seed):
    rng = random.Random(seed)
    pool = _cids(rng, 160)
    blocks = rng.sample(pool, 100)
    if seed % 2:
        blocks.append(rng.choice(blocks))
    roots = [blocks[0]]
    links = [(r, b"") for r in roots]
    for _ in range(300):
        links.append((rng.choice(pool), rng.choice(blocks)))
    excused_set = set(rng.sample(pool, 10))

    def excused(target, parent):
        return target in excused_set

    for limit in (10**9, 5):
        monkeypatch.setattr(spill, "CID_LIMIT", limit)
        monkeypatch.setattr(spill, "LINK_LIMIT", limit)
        refs = SortedRefs(roots)
        for b in blocks:
            refs.block(b)
        for target, parent in links[len(roots):]:
            refs.link(target, parent)
        got = refs.resolve(excused)
        want = _expected(blocks, links, excused)
        assert got.duplicate == want["duplicate"], (seed, limit)
        if want["duplicate"] is None:
            assert (got.missing, got.first_missing, got.unreferenced, got.first_unreferenced) == (
                want["missing"], want["first_missing"], want["unreferenced"], want["first_unreferenced"]), limit
            assert got.missing > 0 and got.unreferenced > 0
