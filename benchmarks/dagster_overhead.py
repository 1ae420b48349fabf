"""A `backup_job` run's wall time against the work its steps report (their
`seconds` metadata), with one process per step (Dagster's default executor)
and in one process (ours), on the same archive and the same node.

    python -m benchmarks.dagster_overhead --entities 2000

Starts its own Kubo node; prints one JSON line per executor.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

from arke_dr_pipeline.defs import defs
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.kubo.daemon import KuboDaemon
from arke_dr_pipeline.simulate.testdata import GenSpec, generate


def backup_job_multiprocess():
    return defs.resolve_job_def("backup_job").with_executor_def(dg.multiprocess_executor)


def backup_job_in_process():
    return defs.resolve_job_def("backup_job")


def _run(job_fn, instance) -> dict:
    started = time.monotonic()
    with dg.execute_job(dg.reconstructable(job_fn), instance) as result:
        wall = time.monotonic() - started
        assert result.success, job_fn.__name__
        metas = [e.step_materialization_data.materialization.metadata
                 for e in result.get_asset_materialization_events()]
        work = sum(float(m["seconds"].value) for m in metas if "seconds" in m)
    return {"executor": job_fn.__name__.removeprefix("backup_job_"), "wall_s": round(wall, 2),
            "work_s": round(work, 2), "overhead_s": round(wall - work, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        node = KuboDaemon(root / "ipfs")
        node.start()
        try:
            os.environ.update({"IPFS_API_URL": node.api_url, "BACKUPS_DIR": str(root / "backups"),
                               "SNAPSHOTS_DIR": str(root / "snapshots"), "ARKE_PROGRESS": "0",
                               "DAGSTER_HOME": str(root / "home")})
            (root / "home").mkdir()
            from arke_dr_pipeline.dr.config import Settings
            with KuboClient(node.api_url) as client:
                generate(client, Settings.from_env(), GenSpec(entities=args.entities, seed=7))
            with dg.DagsterInstance.get() as instance:
                for job_fn in (backup_job_multiprocess, backup_job_in_process,
                               backup_job_multiprocess, backup_job_in_process):
                    print(json.dumps({"entities": args.entities, **_run(job_fn, instance)}), flush=True)
        finally:
            node.stop()


if __name__ == "__main__":
    sys.exit(main())
