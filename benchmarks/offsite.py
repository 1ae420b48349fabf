"""Offsite copy speed on the production-shaped archive, against a local S3
server (versitygw, posix backend) on the same disk, with the floor measured
in the same run: a plain copy of the CAR into the server's folder.

    python -m benchmarks.offsite --entities 30000 --events 100000 --out benchmarks/results/offsite-30k.json

Upload includes the multipart transfer; verify is the streamed re-read that
ties the copy to the sidecar; download is `arke-dr restore s3://`'s fetch.
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
from arke_dr_pipeline.dr.offsite.copy import OffsiteTarget, S3Config, fetch, upload_backup
from arke_dr_pipeline.dr.plumbing.config import Settings
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.kubo.daemon import KuboDaemon
from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline_tests.s3server import S3Server

from .harness import machine


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.offsite")
    parser.add_argument("--entities", type=int, default=30_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--image-fraction", type=float, default=0.005)
    parser.add_argument("--out", default="offsite.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="arke-offsite-"))
    try:
        node = KuboDaemon(work / "ipfs")
        node.start()
        try:
            settings = replace(Settings(), api_url=node.api_url, snapshots_dir=work / "snapshots",
                               backups_dir=work / "backups")
            with KuboClient(node.api_url, timeout=600) as client:
                generate(client, settings, GenSpec(entities=args.entities, events=args.events, seed=1,
                                                   image_fraction=args.image_fraction, shape="api"))
                snap = build_snapshot(client, settings)
                car = Path(backup(client, settings, snap.snapshot_cid).car.car_path)
        finally:
            node.stop()
        server = S3Server(work / "s3").start()
        try:
            server.client().create_bucket(Bucket="bench")
            size = car.stat().st_size
            started = time.monotonic()
            shutil.copyfile(car, server.data / "floor.car")
            floor_s = time.monotonic() - started
            (server.data / "floor.car").unlink()
            s3 = S3Config.from_env(server.env())
            up = upload_backup(s3, OffsiteTarget("bench", "daily"), car)
            started = time.monotonic()
            fetch(s3, f"s3://bench/daily/{car.name}", work / "restored")
            download_s = time.monotonic() - started
        finally:
            server.stop()
        mb = size / 1e6
        result = {"machine": machine(), "entities": args.entities, "events": args.events, "car_mb": round(mb, 1),
                  "local_copy_s": round(floor_s, 2), "local_copy_mb_s": round(mb / floor_s, 1),
                  "upload_s": round(up.upload_seconds, 2), "upload_mb_s": round(up.mb_per_s, 1),
                  "verify_reread_s": round(up.verify_seconds, 2),
                  "verify_reread_mb_s": round(mb / up.verify_seconds, 1),
                  "download_s": round(download_s, 2), "download_mb_s": round(mb / download_s, 1),
                  "upload_vs_local_copy": round(up.upload_seconds / floor_s, 2)}
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
