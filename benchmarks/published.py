"""What publishing upstream's inline `arke/snapshot@v2` costs, against keeping ours in our record.

    python -m benchmarks.published --entities 8000 30000 --out benchmarks/results/published.jsonl

For each size, on a fresh node with a production-shaped archive: a full
build kept in our record (`ARKE_PUBLISH=record`, chunked past 1 MiB: the
baseline), the same build published inline (entries plus `all_cids` and the
proof), the block's size, and one `dag/get` of it as the API's
`/snapshot/latest` serves it (upstream gives that call
`SNAPSHOT_TIMEOUT_SECONDS = 60`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.plumbing.config import Settings
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.kubo.daemon import KuboDaemon
from arke_dr_pipeline.simulate.testdata import GenSpec, generate


def measure(entities: int, events: int, work: Path) -> dict:
    node = KuboDaemon(work / "ipfs")
    node.start()
    try:
        settings = replace(Settings(), api_url=node.api_url, snapshots_dir=work / "snap",
                           backups_dir=work / "backups", inline_max_entities=10**9)
        with KuboClient(node.api_url, timeout=600) as client:
            generate(client, settings, GenSpec(entities=entities, events=events, seed=1, image_fraction=0.01,
                                               image_min=20_000, image_max=40_000))
            started = time.monotonic()
            kept = build_snapshot(client, replace(settings, publish="record"), check_tips=False, full=True)
            record_s = time.monotonic() - started
            shutil.rmtree(settings.snapshots_dir)
            started = time.monotonic()
            pub = build_snapshot(client, replace(settings, publish="inline"), check_tips=False, full=True)
            publish_s = time.monotonic() - started
            started = time.monotonic()
            served = client.dag_get(pub.snapshot_cid)
            get_s = time.monotonic() - started
            cid_count = json.loads(served)["cid_count"]
    finally:
        node.stop()
    return {"entities": entities, "events": events, "record_build_s": round(record_s, 2),
            "record_bytes": kept.block_bytes, "publish_build_s": round(publish_s, 2),
            "published_bytes": pub.block_bytes, "all_cids": cid_count,
            "publish_over_record": round(publish_s / record_s, 2), "dag_get_s": round(get_s, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, nargs="+", default=[8000])
    ap.add_argument("--events-per-entity", type=float, default=3.3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    for n in args.entities:
        with tempfile.TemporaryDirectory() as tmp:
            row = measure(n, int(n * args.events_per_entity), Path(tmp))
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
