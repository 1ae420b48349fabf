"""A week on the production host: an archive of ~470,000 blocks (the Arke host's today), seven
daily backups (one full, six deltas), each copied offsite and followed by a prune, while the
Arke API's stand-in keeps appending events beside every backup. For each operation, as the CLI
in a process of its own: wall time, peak RSS, and peak disk of the backups folder plus the
operation's spill folder (TMPDIR); Kubo's peak RSS over the week.

    python -m benchmarks.week --out benchmarks/results/week-470k-api.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from arke_dr_pipeline.dr.catalog.budget import folder_bytes
from arke_dr_pipeline.dr.plumbing.config import Settings
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.kubo.daemon import KuboDaemon
from arke_dr_pipeline.simulate.testdata import GenSpec, generate

from .harness import _env, _ok, machine
from .measure import DiskWatch, RssWatch, arke_dr, run_measured


def _op(name: str, argv: list[str], env: dict, watch: tuple[Path, ...], kubo_pid: int) -> dict:
    """Kubo's peak is taken per operation too: on a 2 GB host, what a backup
    makes the node hold counts as much as the backup's own RSS."""
    with DiskWatch(*watch) as disk, RssWatch(kubo_pid) as kubo:
        result = _ok(run_measured(argv, env), name)
    return {"op": name, "seconds": round(result["seconds"], 2), "peak_rss_mb": result["peak_rss_mb"],
            "kubo_peak_rss_mb": round(kubo.peak, 1), "peak_disk_mb": round(disk.peak / 1e6, 1),
            "stdout": result["stdout"].strip().splitlines()[-1:]}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.week")
    parser.add_argument("--entities", type=int, default=40_000)
    parser.add_argument("--events", type=int, default=133_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--events-per-day", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=20.0, help="events/s the API stand-in writes during backups")
    parser.add_argument("--final-full", action="store_true",
                        help="one more day whose backup is a full (export-car --full): the full an operator gets "
                             "after ARKE_DELTA_MAX_CHAIN deltas, carrying every snapshot of the week")
    parser.add_argument("--out", default="week.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="arke-week-"))
    out: dict = {"machine": machine(), "entities": args.entities, "events": args.events, "days": []}
    node = KuboDaemon(work / "ipfs")
    node.start()
    s3 = None
    try:
        from arke_dr_pipeline_tests.s3server import S3Server

        s3 = S3Server(work / "s3").start()
        s3.client().create_bucket(Bucket="arke-week")
    except Exception as exc:  # noqa: BLE001 - no versitygw built: the week runs without offsite copies
        print(f"no offsite copies: {exc}", file=sys.stderr)
    settings = replace(Settings(), api_url=node.api_url, snapshots_dir=work / "snapshots",
                       backups_dir=work / "backups")
    spill = work / "spill"
    spill.mkdir()
    env = {**_env(settings), "TMPDIR": str(spill), "ARKE_RPC_TIMEOUT": "3600"}
    if s3 is not None:
        env.update(s3.env(), ARKE_OFFSITE_URL="s3://arke-week/daily")
    watch = (settings.backups_dir, spill)
    try:
        with RssWatch(node.proc.pid) as kubo, KuboClient(node.api_url, timeout=3600, long_timeout=7200) as client:
            started = time.monotonic()
            with RssWatch(node.proc.pid) as kubo_generate:
                gen = generate(client, settings, GenSpec(entities=args.entities, events=args.events, seed=1,
                                                         image_fraction=0.005, shape="api"))
            out["generate"] = {"seconds": round(time.monotonic() - started, 1), "blocks": gen.blocks,
                               "bytes": gen.bytes, "kubo_peak_rss_mb": round(kubo_generate.peak, 1)}
            print(json.dumps(out["generate"]), flush=True)
            for day in range(1, args.days + 1 + args.final_full):
                full = ["--full"] if args.final_full and day > args.days else []
                api = subprocess.Popen(arke_dr("simulate-writes", "--events", str(args.events_per_day),
                                               "--rate", str(args.rate), "--seed", str(day)),
                                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                ops = [_op("build-snapshot", arke_dr("build-snapshot"), env, watch, node.proc.pid),
                       _op("export-car", arke_dr("export-car", *full), env, watch, node.proc.pid)]
                if api.wait(timeout=3600) != 0:
                    raise RuntimeError(f"the API stand-in failed: {api.stderr.read()[-500:]!r}")
                ops.append(_op("prune", arke_dr("prune"), env, watch, node.proc.pid))
                sidecar = max(settings.backups_dir.glob("arke-*.json"), key=lambda p: p.stat().st_mtime)
                kind = json.loads(sidecar.read_text()).get("kind", "full")
                out["days"].append({"day": day, "kind": kind, "ops": ops,
                                    "folder_mb": round(folder_bytes(settings.backups_dir) / 1e6, 1)})
                print(json.dumps(out["days"][-1]), flush=True)
            out["kubo_peak_rss_mb"] = round(kubo.peak, 1)
        every = [op for d in out["days"] for op in d["ops"]]
        out["peak_rss_mb"] = max(op["peak_rss_mb"] for op in every)
        out["peak_disk_mb"] = max(op["peak_disk_mb"] for op in every)
        out["offsite"] = s3 is not None
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps({k: out[k] for k in ("peak_rss_mb", "peak_disk_mb", "kubo_peak_rss_mb")}))
    finally:
        node.stop()
        if s3 is not None:
            s3.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("ARKE_PROGRESS", "0")
    sys.exit(main())
