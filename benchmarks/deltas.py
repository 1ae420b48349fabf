"""Incremental backups on the production-shaped archive: a delta after 1,000
new events against a full export of the same snapshot (bytes and time), and
a restore from a full plus seven deltas against a restore from one full of
the same snapshot, each onto a fresh node.

    python -m benchmarks.deltas --out benchmarks/results/deltas-30k-100k-api.json
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
from arke_dr_pipeline.dr.backup.run import backup
from arke_dr_pipeline.dr.plumbing.config import Settings
from arke_dr_pipeline.dr.restore.whole import restore
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.kubo.daemon import KuboDaemon
from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline.simulate.writer import ArchiveWriter

from .harness import machine


def _timed(fn, *args, **kw):
    started = time.monotonic()
    out = fn(*args, **kw)
    return out, round(time.monotonic() - started, 2)


def _restore_on_fresh_node(work: Path, settings: Settings, car: str) -> float:
    node = KuboDaemon(work)
    node.start()
    try:
        with KuboClient(node.api_url, timeout=600, long_timeout=3600) as client:
            _, seconds = _timed(restore, client, replace(settings, api_url=node.api_url,
                                                         snapshots_dir=work / "snapshots"), car)
        return seconds
    finally:
        node.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.deltas")
    parser.add_argument("--entities", type=int, default=30_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--deltas", type=int, default=7)
    parser.add_argument("--events-per-delta", type=int, default=1000)
    parser.add_argument("--out", default="deltas.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="arke-deltas-"))
    node = KuboDaemon(work / "ipfs")
    node.start()
    out: dict = {"machine": machine(), "entities": args.entities, "events": args.events}
    try:
        settings = replace(Settings(), api_url=node.api_url, snapshots_dir=work / "snapshots",
                           backups_dir=work / "backups")
        with KuboClient(node.api_url, timeout=600, long_timeout=3600) as client:
            generate(client, settings, GenSpec(entities=args.entities, events=args.events, seed=1,
                                               image_fraction=0.005, shape="api"))
            writer = ArchiveWriter(client, settings, seed=2)
            snap = build_snapshot(client, settings)
            first, out["full_s"] = _timed(backup, client, settings, snap.snapshot_cid)
            out["full_bytes"] = first.car.size
            deltas = []
            for i in range(args.deltas):
                writer.run(args.events_per_delta)
                snap = build_snapshot(client, settings)
                result, seconds = _timed(backup, client, settings, snap.snapshot_cid)
                assert result.car.kind == "delta", result.car.full_reason
                deltas.append({"seq": result.car.seq, "bytes": result.car.size, "s": seconds})
                if i == 0:
                    # the same snapshot as a full, for the ratio; set aside so the chain stays as it is
                    full_same, full_same_s = _timed(backup, client, settings, snap.snapshot_cid, full=True)
                    out["first_delta_vs_full_same_snapshot"] = {
                        "delta_bytes": result.car.size, "full_bytes": full_same.car.size,
                        "bytes_ratio": round(result.car.size / full_same.car.size, 4),
                        "delta_s": seconds, "full_s": full_same_s, "time_ratio": round(seconds / full_same_s, 3)}
                    _set_aside(Path(full_same.car.car_path), work / "aside")
            out["deltas"] = deltas
            newest = result.car.car_path
            last_full, _ = _timed(backup, client, settings, snap.snapshot_cid, full=True)
        out["restore_chain_s"] = _restore_on_fresh_node(work / "r1", settings, newest)
        out["restore_full_s"] = _restore_on_fresh_node(work / "r2", settings, last_full.car.car_path)
        out["restore_ratio"] = round(out["restore_chain_s"] / out["restore_full_s"], 3)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(out, indent=2))
    finally:
        node.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _set_aside(car: Path, where: Path) -> None:
    where.mkdir(exist_ok=True)
    for p in (car, car.with_suffix(".json")):
        p.rename(where / p.name)


if __name__ == "__main__":
    sys.exit(main())
