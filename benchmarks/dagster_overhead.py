"""A `backup_job` run's wall time against the work its steps report (their
`seconds` metadata), with one process per step (Dagster's default executor)
and in one process (ours), on the same archive and the same node.

    python -m benchmarks.dagster_overhead --entities 2000
    python -m benchmarks.dagster_overhead --entities 2000 --ui

With `--ui`: "Materialize all" launched as the UI launches it (GraphQL to
the webserver, the daemon's queue and run launcher, the definitions' own
executor), from the run's creation to its success, against the same work
called directly (`arke-dr build-snapshot` and `export-car` on an archive
generated the same way on a node of its own). Target: under 5 s of overhead.

Starts its own Kubo node(s); prints one JSON line per measurement.
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


def _ui(entities: int, root: Path) -> dict:
    """A UI-launched "Materialize all": creation to success, and the steps' own seconds."""
    from arke_dr_pipeline.dr.plumbing.config import Settings
    from arke_dr_pipeline_tests.defs.instance import ALL_ASSETS, Instance

    node = KuboDaemon(root / "ui-ipfs")
    node.start()
    try:
        env = {**os.environ, "IPFS_API_URL": node.api_url, "BACKUPS_DIR": str(root / "ui-backups"),
               "SNAPSHOTS_DIR": str(root / "ui-snapshots"), "ARKE_PROGRESS": "0"}
        with KuboClient(node.api_url) as client:
            generate(client, Settings.from_env(env), GenSpec(entities=entities, seed=7))
        inst = Instance(root / "ui-home", env).start()
        try:
            run_id = inst.launch("__ASSET_JOB", assets=ALL_ASSETS)
            inst.wait([run_id])
            code = ("import json; import dagster as dg\n"
                    "i = dg.DagsterInstance.get()\n"
                    f"r = i.get_run_record_by_id({run_id!r})\n"
                    f"evs = i.get_records_for_run({run_id!r},\n"
                    "    of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records\n"
                    "work = sum(float(e.event_log_entry.dagster_event.step_materialization_data.materialization"
                    ".metadata['seconds'].value) for e in evs if 'seconds' in e.event_log_entry.dagster_event"
                    ".step_materialization_data.materialization.metadata)\n"
                    "print(json.dumps({'status': r.dagster_run.status.value, "
                    "'wall_s': r.end_time - r.create_timestamp.timestamp(), 'work_s': work}))")
            import subprocess

            out = json.loads(subprocess.run([sys.executable, "-c", code], env=inst.env, capture_output=True,
                                            text=True, check=True).stdout)
        finally:
            inst.stop()
    finally:
        node.stop()
    return out


def _direct(entities: int, root: Path) -> float:
    """The same work from the shell: a snapshot and a backup of an archive made the same way."""
    import subprocess

    from arke_dr_pipeline.dr.plumbing.config import Settings

    node = KuboDaemon(root / "cli-ipfs")
    node.start()
    try:
        env = {**os.environ, "IPFS_API_URL": node.api_url, "BACKUPS_DIR": str(root / "cli-backups"),
               "SNAPSHOTS_DIR": str(root / "cli-snapshots"), "ARKE_PROGRESS": "0"}
        with KuboClient(node.api_url) as client:
            generate(client, Settings.from_env(env), GenSpec(entities=entities, seed=7))
        started = time.monotonic()
        for verb in ("build-snapshot", "export-car"):
            subprocess.run([sys.executable, "-m", "arke_dr_pipeline.cli", verb], env=env, check=True,
                           capture_output=True)
        return time.monotonic() - started
    finally:
        node.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--ui", action="store_true", help="a UI-launched Materialize all against the CLI")
    args = parser.parse_args()
    if args.ui:
        with tempfile.TemporaryDirectory() as tmp:
            ui = _ui(args.entities, Path(tmp))
            direct = _direct(args.entities, Path(tmp))
        print(json.dumps({"entities": args.entities, "launched_from": "ui (graphql, daemon, run launcher)",
                          "status": ui["status"], "wall_s": round(ui["wall_s"], 2), "work_s": round(ui["work_s"], 2),
                          "overhead_s": round(ui["wall_s"] - ui["work_s"], 2), "direct_cli_s": round(direct, 2),
                          "over_direct_s": round(ui["wall_s"] - direct, 2)}), flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        node = KuboDaemon(root / "ipfs")
        node.start()
        try:
            os.environ.update({"IPFS_API_URL": node.api_url, "BACKUPS_DIR": str(root / "backups"),
                               "SNAPSHOTS_DIR": str(root / "snapshots"), "ARKE_PROGRESS": "0",
                               "DAGSTER_HOME": str(root / "home")})
            (root / "home").mkdir()
            from arke_dr_pipeline.dr.plumbing.config import Settings
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
