"""Where a verified block's microseconds go, per step, on a real CAR (target 2 of #31).

    python -m benchmarks.decoders CAR [--every 10] [--out decoders.json]

Keeps every `--every`th block of the CAR in memory (a sample of its whole
mix), then times each step of the verification on those, alone, best of
three: sha256 alone, cbrrr's decode, libipld's decode (the compiled
alternative the issue names), our link extraction (`dag_cbor_links`: cbrrr
plus the plain-map links the API writes) and the DAG check's `add`; and the
CAR reader (framing and hashing) over the whole file, once. The ratios say
what a faster decoder could give at most. libipld decodes a tag-42 link to
the same `bytes` as a byte string, so its output cannot tell a link from
data: it is measured for speed only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import cbrrr
import libipld

from arke_dr_pipeline.dr.verify.dagcheck import DagCheck
from arke_dr_pipeline.ipld.car import CarReader
from arke_dr_pipeline.ipld.cid import DAG_CBOR, split_cid
from arke_dr_pipeline.ipld.links import dag_cbor_links


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(car: Path, every: int) -> dict:
    blocks, total = [], 0
    with open(car, "rb") as fh:
        reader = CarReader(fh)
        roots = list(reader.roots)
        for total, block in enumerate(reader, 1):
            if total % every == 0:
                blocks.append((block.cid, bytes(block.data)))
    cbor = [data for cid, data in blocks if split_cid(cid)[1] == DAG_CBOR]

    def read_car() -> None:
        with open(car, "rb") as fh:
            for _ in CarReader(fh, hash_bytes=True):
                pass

    def check() -> None:
        c = DagCheck(roots, sorted_refs=True)
        for cid, data in blocks:
            c.add(cid, data)

    n, m = len(blocks), len(cbor)
    steps = {
        "car_reader_framing_and_hash_us_per_block": (_best(read_car, repeat=1), total),
        "sha256_us_per_block": (_best(lambda: [hashlib.sha256(d).digest() for _, d in blocks]), n),
        "cbrrr_decode_us_per_cbor_block": (_best(lambda: [cbrrr.decode_dag_cbor(d) for d in cbor]), m),
        "libipld_decode_us_per_cbor_block": (_best(lambda: [libipld.decode_dag_cbor(d) for d in cbor]), m),
        "our_links_us_per_cbor_block": (_best(lambda: [dag_cbor_links(d) for d in cbor]), m),
        "dag_check_add_us_per_block": (_best(check, repeat=1), n),
    }
    out = {"car": str(car), "car_blocks": total, "sample_blocks": n, "sample_dag_cbor_blocks": m}
    out.update({k: round(s / count * 1e6, 2) for k, (s, count) in steps.items()})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.decoders")
    parser.add_argument("car", type=Path)
    parser.add_argument("--every", type=int, default=10, help="keep every Nth block of the CAR")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    result = measure(args.car, args.every)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
