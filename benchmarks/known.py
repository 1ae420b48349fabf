"""What a delta pays to know the base's blocks, as the archive grows: every row of the base's
inventory loaded into a set (before) against a sparse index over the sorted file (now), each
followed by the lookups a delta's walk makes (about two per entity: the new snapshot's links
to every manifest, then the links still pending). Synthetic rows, the inventory's own format.

    python -m benchmarks.known --out benchmarks/results/known-blocks.json
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
from pathlib import Path

from arke_dr_pipeline.dr.backup.inventory import inventory_rows
from arke_dr_pipeline.dr.backup.known import KnownBlocks
from arke_dr_pipeline.dr.catalog.format import INVENTORY_HEADER
from arke_dr_pipeline.dr.plumbing.spill import CidSet, SpillFile
from arke_dr_pipeline.ipld.cid import cid_str, make_cid, parse_cid

from .harness import machine

BLOCKS_PER_ENTITY = 11.8  # the production shape: 352,719 blocks for 30,000 entities


def _inventory(path: Path, blocks: int, rnd: random.Random) -> list[bytes]:
    cids = [make_cid(0x71, rnd.randbytes(24)) for _ in range(blocks)]
    rows = sorted(f"{cid_str(c)}\tmanifest\tdag-cbor\t{rnd.randint(100, 9000)}" for c in cids)
    with open(path, "w") as fh:
        fh.write(INVENTORY_HEADER + "\n")
        for row in rows:
            fh.write(row + "\n")
    return cids


def _lookups(known, present: list[bytes], absent: list[bytes]) -> int:
    return sum(c in known for c in present) + sum(c in known for c in absent)


def measure(blocks: int, work: Path) -> dict:
    rnd = random.Random(blocks)
    path = work / f"inventory-{blocks}.tsv"
    cids = _inventory(path, blocks, rnd)
    asks = int(blocks / BLOCKS_PER_ENTITY) * 2
    present = rnd.sample(cids, asks - asks // 100)
    absent = [make_cid(0x71, rnd.randbytes(24)) for _ in range(asks // 100)]
    del cids
    out = {"blocks": blocks, "lookups": asks, "inventory_mb": round(path.stat().st_size / 1e6, 1)}

    started = time.monotonic()
    loaded = CidSet(SpillFile())
    with open(path) as fh:
        loaded.update(parse_cid(line.split("\t", 1)[0]) for line in inventory_rows(fh, str(path)))
    load = time.monotonic() - started
    assert _lookups(loaded, present, absent) == len(present)
    out["set"] = {"load_s": round(load, 2), "total_s": round(time.monotonic() - started, 2)}
    del loaded

    started = time.monotonic()
    known = KnownBlocks(path)
    load = time.monotonic() - started
    assert _lookups(known, present, absent) == len(present)
    out["sparse_index"] = {"load_s": round(load, 3), "total_s": round(time.monotonic() - started, 2)}
    known.close()
    out["ratio"] = round(out["sparse_index"]["total_s"] / out["set"]["total_s"], 3)
    path.unlink()
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, nargs="+", default=[352_719, 3_531_327])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="arke-known-") as work:
        runs = [measure(n, Path(work)) for n in args.blocks]
    result = {"machine": machine(), "runs": runs,
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
