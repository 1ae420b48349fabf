"""Two versions of the code taking turns at a full backup of one archive.

On a shared VM the same run drifts by a fifth from one hour to the next, so a
before and an after measured apart compare the machine as much as the code.
Here they alternate on the same node and archive: `arke-dr export-car --full`
of the archive's newest snapshot, each in a process of its own and a fresh
backups folder, the older revision from a git worktree. The archive is any
Kubo repository with its snapshots folder (for example the one `/tmp/w40k`
of docs/PERFORMANCE.md, made with `benchmarks.week`'s generator).

    python -m benchmarks.turns --repo /tmp/w40k/ipfs --snapshots /tmp/w40k/snapshots \\
        --before bb13571 --runs 2 --out benchmarks/results/turns-470k-api.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from arke_dr_pipeline.kubo.daemon import KuboDaemon

from .harness import machine
from .measure import arke_dr, run_measured

ROOT = Path(__file__).resolve().parent.parent
_EXPORTED = re.compile(r"exported .* in ([0-9.]+)s")


def _backup(tree: Path, api_url: str, snapshots: Path, snapshot_cid: str) -> dict:
    out = Path(tempfile.mkdtemp(prefix="arke-turns-"))
    env = dict(os.environ, PYTHONPATH=str(tree), IPFS_API_URL=api_url, BACKUPS_DIR=str(out),
               SNAPSHOTS_DIR=str(snapshots), ARKE_LOCK_DIR=str(out), ARKE_PROGRESS="0")
    try:
        # run from the tree itself: `python -m` puts the working directory first on sys.path
        run = run_measured(arke_dr("export-car", "--full", snapshot_cid), env, cwd=str(tree))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if run["returncode"] != 0:
        raise SystemExit(f"export-car failed in {tree}: {run['stderr'].strip().splitlines()[-1:]}")
    found = _EXPORTED.search(run["stderr"])
    return {"seconds": run["seconds"], "peak_rss_mb": run["peak_rss_mb"],
            "export_s": float(found.group(1)) if found else None}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", type=Path, required=True, help="the Kubo repository holding the archive")
    p.add_argument("--snapshots", type=Path, required=True, help="its snapshots folder (latest.json)")
    p.add_argument("--before", required=True, help="the git revision to compare the working tree with")
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--out")
    args = p.parse_args(argv)
    snapshot_cid = json.loads((args.snapshots / "latest.json").read_text())["cid"]
    worktree = Path(tempfile.mkdtemp(prefix="arke-before-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(worktree), args.before],
                   check=True, capture_output=True)
    node = KuboDaemon(args.repo)
    node.start()
    results: dict = {"machine": machine(), "before": args.before, "snapshot_cid": snapshot_cid, "runs": []}
    try:
        for turn in range(args.runs):
            for label, tree in (("before", worktree), ("now", ROOT)):
                run = {"turn": turn + 1, "code": label, **_backup(tree, node.api_url, args.snapshots, snapshot_cid)}
                print(json.dumps(run), flush=True)
                results["runs"].append(run)
    finally:
        node.stop()
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)], capture_output=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
