"""One command on two checkouts of the project, taken in turns, on the same files.

    python -m benchmarks.alternate --before DIR [--rounds 3] [--out F] -- verify-car CAR

`DIR` is another checkout (`git worktree add DIR COMMIT`); the command is
`arke-dr`'s, run from each checkout's own source, before then after, round
after round. Timings on this VM move by up to 20 % between runs of the same
code (the page cache is reclaimed, the disk is shared), so a change is
judged by runs taken in turns, never against a figure from another hour.
Each run's wall, peak RSS and the peak bytes of its own `TMPDIR` (spill
files, sampled) are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from .harness import machine
from .measure import DiskWatch, run_measured


def _run(tree: Path, args: list[str]) -> dict:
    spill = Path(tempfile.mkdtemp(prefix="arke-alternate-"))
    try:
        with DiskWatch(spill) as disk:
            env = {**os.environ, "ARKE_PROGRESS": "0", "TMPDIR": str(spill)}
            result = run_measured([sys.executable, "-m", "arke_dr_pipeline.cli", *args], env, cwd=str(tree))
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    if result["returncode"] != 0:
        raise SystemExit(f"{tree}: arke-dr {' '.join(args)} failed: {result['stderr'][-300:]}")
    return {"seconds": result["seconds"], "peak_rss_mb": result["peak_rss_mb"],
            "peak_tmpdir_mb": round(disk.peak / 1e6, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.alternate")
    parser.add_argument("--before", required=True, help="a checkout of the code to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="alternate.json")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then an arke-dr command")
    args = parser.parse_args(argv)
    command = [a for a in args.command if a != "--"] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the arke-dr command after --")
    trees = {"before": Path(args.before).resolve(), "after": Path(__file__).resolve().parent.parent}
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            runs[name].append(_run(tree, command))
            print(f"{name}: {runs[name][-1]}", file=sys.stderr, flush=True)
    out = {"machine": machine(), "command": command, "before": str(trees["before"]), "runs": runs,
           "mean_seconds": {k: round(statistics.mean(r["seconds"] for r in v), 2) for k, v in runs.items()}}
    out["after_over_before"] = round(out["mean_seconds"]["after"] / out["mean_seconds"]["before"], 3)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["mean_seconds"]), out["after_over_before"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
