"""The restore drill on the production-shaped archive: RTO by phase, dump
sizes, and the drill's own overhead (the two dumps) against the restore.

    python -m benchmarks.drill --entities 30000 --events 100000 --out benchmarks/results/drill-30k.json
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.backup.run import backup
from arke_dr_pipeline.dr.plumbing.config import Settings
from arke_dr_pipeline.dr.restore.drill import drill
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.kubo.daemon import KuboDaemon
from arke_dr_pipeline.simulate.testdata import GenSpec, generate

from .harness import machine


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.drill")
    parser.add_argument("--entities", type=int, default=30_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--image-fraction", type=float, default=0.005)
    parser.add_argument("--out", default="drill.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="arke-drill-bench-"))
    node = KuboDaemon(work / "ipfs")
    node.start()
    try:
        settings = replace(Settings(), api_url=node.api_url, snapshots_dir=work / "snapshots",
                           backups_dir=work / "backups")
        with KuboClient(node.api_url, timeout=600, long_timeout=3600) as client:
            generate(client, settings, GenSpec(entities=args.entities, events=args.events, seed=1,
                                               image_fraction=args.image_fraction, shape="api"))
            snap = build_snapshot(client, settings)
            backup(client, settings, snap.snapshot_cid)
            started = time.monotonic()
            result = drill(client, settings)
            wall = time.monotonic() - started
        out = {"machine": machine(), "entities": args.entities, "events": args.events, "restores": result.ok,
               "differences": result.differences, "rto_seconds": round(result.rto_seconds, 2),
               "phases": result.phases, "drill_wall_seconds": round(wall, 2),
               "dumps_and_scratch_node_seconds": round(wall - result.rto_seconds, 2),
               "car_mb": round(result.bytes / 1e6, 1), "blocks": result.blocks,
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(out, indent=2))
    finally:
        node.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
