"""The archive at ten times the 30k benchmark (300,000 entities, 1,000,000
events, production shape): does each operation complete on this machine,
in what time and peak memory. Each operation runs as the CLI in a process of
its own (`measure.run_measured`); the results file is rewritten after every
phase, so a run stopped midway keeps what it measured.

    python -m benchmarks.scale --out benchmarks/results/scale-300k-1m-api.json

Generating the archive and its first snapshot take ~16 minutes, so `--work
DIR` keeps the archive, and `--from PHASE` re-measures from that phase on an
archive kept earlier (the results of earlier phases stay in `--out`).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from arke_dr_pipeline.dr.plumbing.config import Settings
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.kubo.daemon import KuboDaemon
from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline.simulate.writer import ArchiveWriter

from .harness import _bare_import, _bare_parts, _env, _ok, machine
from .measure import arke_dr, run_measured

PHASES = ("generate", "build-snapshot", "incremental", "export-car", "delta", "verify-car", "dump", "drill",
          "restore", "bare-import")
_BLOCKS = re.compile(r"exported .*?, (\d+) blocks\)")


def _summary(result: dict) -> dict:
    lines = [ln for ln in result["stderr"].splitlines() if ln and not ln.startswith(("Traceback", " "))]
    return {"seconds": result["seconds"], "peak_rss_mb": result["peak_rss_mb"], "log": lines[-4:]}


def _full_car(out: dict, settings: Settings) -> str:
    """The full backup's CAR: the one export-car wrote, else the newest full kept earlier."""
    car = out.get("export-car", {}).get("car")
    if car and Path(car).exists():
        return car
    cars = sorted((p for p in settings.backups_dir.glob("arke-*.car") if _kind(p) == "full"),
                  key=lambda p: p.stat().st_mtime)
    if not cars:
        raise SystemExit(f"no CAR in {settings.backups_dir}: run from export-car")
    return str(cars[-1])


def _kind(car: Path) -> str | None:
    try:
        return json.loads(car.with_suffix(".json").read_text()).get("kind", "full")
    except (OSError, ValueError):
        return None


def _per_block(out: dict, phase: str) -> None:
    """Target 1 of #31 compares this with the 30k run's `per_block_us`."""
    blocks = out.get("export-car", {}).get("car_blocks")
    if blocks and phase in out:
        out[phase]["us_per_block"] = round(out[phase]["seconds"] * 1e6 / blocks, 2)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    parser.add_argument("--entities", type=int, default=300_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--image-fraction", type=float, default=0.005)
    parser.add_argument("--from", dest="start", choices=PHASES, default="generate",
                        help="the first phase to run (needs --work holding an archive kept earlier)")
    parser.add_argument("--until", choices=PHASES, default="bare-import", help="the last phase to run")
    parser.add_argument("--skip", default="", help="phases not to run, comma-separated (e.g. dump,drill)")
    parser.add_argument("--work", help="keep the archive in this folder (default: a temporary one, removed)")
    parser.add_argument("--out", default="scale.json")
    args = parser.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="arke-scale-"))
    if args.start != "generate" and not (work / "ipfs").is_dir():
        parser.error(f"--from {args.start} needs --work holding an archive")
    work.mkdir(parents=True, exist_ok=True)
    skipped = set(filter(None, args.skip.split(",")))
    if skipped - set(PHASES):
        parser.error(f"--skip: unknown phase {sorted(skipped - set(PHASES))[0]}")
    phases = [p for p in PHASES[PHASES.index(args.start):PHASES.index(args.until) + 1] if p not in skipped]
    out: dict = {"machine": machine(), "entities": args.entities, "events": args.events}
    if args.start != "generate" and Path(args.out).exists():
        out = {**json.loads(Path(args.out).read_text()), "machine": machine()}

    def save() -> None:
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")

    node = KuboDaemon(work / "ipfs")
    node.start()
    settings = replace(Settings(), api_url=node.api_url, snapshots_dir=work / "snapshots",
                       backups_dir=work / "backups")
    env = {**_env(settings), "ARKE_RPC_TIMEOUT": "3600"}
    try:
        with KuboClient(node.api_url, timeout=3600, long_timeout=7200) as client:
            if "generate" in phases:
                started = time.monotonic()
                gen = generate(client, settings, GenSpec(entities=args.entities, events=args.events, seed=1,
                                                         image_fraction=args.image_fraction, shape="api"))
                out["generate"] = {"seconds": round(time.monotonic() - started, 1), "blocks": gen.blocks,
                                   "bytes": gen.bytes}
                save()
            if "build-snapshot" in phases:
                out["build-snapshot"] = _summary(_ok(run_measured(arke_dr("build-snapshot", "--full"), env),
                                                     "full snapshot"))
                save()
            if "incremental" in phases:
                ArchiveWriter(client, settings, seed=5 + int(time.time()) % 1000).run(1000)
                out["incremental"] = _summary(_ok(run_measured(arke_dr("build-snapshot"), env), "incremental"))
                save()
        if "export-car" in phases:
            # --full: a delta is what export-car makes once a full exists, and this phase measures the full
            export = _ok(run_measured(arke_dr("export-car", "--full"), env), "export")
            car = export["stdout"].strip().splitlines()[-1]
            counted = _BLOCKS.search(export["stderr"])
            out["export-car"] = {**_summary(export), "car": car, "car_bytes": Path(car).stat().st_size,
                                 "car_blocks": int(counted.group(1)) if counted else None}
            _per_block(out, "export-car")
            save()
        if "delta" in phases:
            # target 4 of #31: a delta backup after 1,000 events, the full above its base
            with KuboClient(node.api_url, timeout=3600, long_timeout=7200) as client:
                ArchiveWriter(client, settings, seed=7 + int(time.time()) % 1000).run(1000)
            _ok(run_measured(arke_dr("build-snapshot"), env), "snapshot before the delta")
            delta = _ok(run_measured(arke_dr("export-car"), env), "delta")
            car = delta["stdout"].strip().splitlines()[-1]
            out["delta"] = {**_summary(delta), "car": car, "car_bytes": Path(car).stat().st_size}
            save()
        if "verify-car" in phases:
            out["verify-car"] = _summary(_ok(run_measured(arke_dr("verify-car", _full_car(out, settings)), env),
                                            "verify"))
            _per_block(out, "verify-car")
            save()
        if "dump" in phases:
            dumped = work / "dump.tsv"
            out["dump"] = _summary(_ok(run_measured(arke_dr("dump", "--out", str(dumped)), env), "dump"))
            out["dump"]["lines"] = sum(1 for _ in open(dumped, "rb"))
            dumped.unlink()
            save()
        if "drill" in phases:
            out["drill"] = _summary(_ok(run_measured(arke_dr("drill"), env), "drill"))
            save()
        if "restore" in phases:
            car = _full_car(out, settings)
            node.stop()
            shutil.rmtree(work / "fresh", ignore_errors=True)
            fresh = KuboDaemon(work / "fresh")
            fresh.start()
            try:
                renv = {**env, "IPFS_API_URL": fresh.api_url, "SNAPSHOTS_DIR": str(work / "restored-snapshots")}
                out["restore"] = _summary(_ok(run_measured(arke_dr("restore", car), renv), "restore"))
                _per_block(out, "restore")
            finally:
                fresh.stop()
                shutil.rmtree(work / "fresh", ignore_errors=True)
            save()
        if "bare-import" in phases:
            # the restore's floor at this size, on the same disk as the restore's fresh node
            car = Path(_full_car(out, settings))
            node.stop()
            shutil.rmtree(work / "fresh", ignore_errors=True)
            fresh = KuboDaemon(work / "fresh")
            fresh.start()
            try:
                parts = _bare_parts(car, work / "bare")
                out["bare-import"] = {"seconds": round(_bare_import(fresh, parts), 3)}
                _per_block(out, "bare-import")
            finally:
                fresh.stop()
                shutil.rmtree(work / "fresh", ignore_errors=True)
                shutil.rmtree(work / "bare", ignore_errors=True)
            save()
        print(json.dumps(out, indent=2))
    finally:
        node.stop()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
