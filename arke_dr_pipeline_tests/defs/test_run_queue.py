"""One run at a time on the archive, however it is started, and a dead run
never blocks the queue: against the embedded instance, its daemon and its
webserver, runs submitted as the UI submits them."""

import os
import signal
import time
from pathlib import Path

import pytest

from arke_dr_pipeline_tests.defs.instance import ALL_ASSETS, seeded_instance


@pytest.fixture
def instance(tmp_path, fresh_kubo):
    inst, settings = seeded_instance(tmp_path, fresh_kubo)
    try:
        yield inst, settings
    finally:
        inst.stop()


def _cars(backups: Path) -> list[Path]:
    return sorted(backups.glob("arke-*.car"))


def test_materialize_all_beside_a_backup_job_both_end_well_one_after_the_other(instance):
    inst, settings = instance
    backup = inst.launch("backup_job")
    everything = inst.launch("__ASSET_JOB", assets=ALL_ASSETS)  # the UI's "Materialize all"
    runs = inst.wait([backup, everything])
    assert runs[backup]["status"] == runs[everything]["status"] == "SUCCESS", runs
    first, second = sorted((runs[backup], runs[everything]), key=lambda r: r["start"])
    # the queue held the second run until the first had ended: launched, not merely started, after
    assert first["end"] <= second["launched"], f"the second run left the queue while the first ran: {runs}"
    assert len(_cars(settings.backups_dir)) == 1  # the second found nothing new and wrote nothing
    assert not list(settings.backups_dir.glob(".*.car")), "a staged CAR was left behind"
    messages = inst.engine_messages(everything)
    assert any(m.startswith("Executing steps in process") for m in messages), messages  # not a process a step
    assert not any("multiprocess" in m.lower() for m in messages), messages


def test_a_killed_run_is_failed_and_the_next_queued_run_starts(instance, fresh_kubo):
    inst, settings = instance
    fresh_kubo.pause()  # the run starts and then hangs in its first step, mid-run
    try:
        doomed = inst.launch("backup_job")
        inst.wait([doomed], statuses=("STARTED",), timeout=180)
        deadline = time.monotonic() + 60
        while not (pid := inst.worker_pid(doomed)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pid, "the run never said which process it runs in"
        waiting = inst.launch("backup_job")
        time.sleep(5)
        assert inst.runs()[waiting]["status"] == "QUEUED", "the second run did not wait for the first"
        os.kill(pid, signal.SIGKILL)
    finally:
        fresh_kubo.resume()
    runs = inst.wait([doomed, waiting], timeout=300)
    assert runs[doomed]["status"] == "FAILURE" and runs[waiting]["status"] == "SUCCESS", runs
    assert len(_cars(settings.backups_dir)) == 1
    assert not list(settings.backups_dir.glob(".*.car")), "the killed run's staged CAR outlived the next run"
