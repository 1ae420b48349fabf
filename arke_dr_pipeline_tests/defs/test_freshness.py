"""The freshness checks say how stale the backups are, on a real node and folder."""

import json

import dagster as dg

from arke_dr_pipeline.defs import defs
from arke_dr_pipeline.defs.freshness import max_age
from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline.simulate.writer import ArchiveWriter
from arke_dr_pipeline_tests.defs.test_definitions import resources, run_backup


def _freshness(settings) -> dict[str, tuple[bool, dict]]:
    result = defs.resolve_job_def("freshness_job").execute_in_process(resources=resources(settings))
    assert result.success
    return {e.asset_check_evaluation_data.check_name: (e.asset_check_evaluation_data.passed,
                                                       {k: v.value for k, v in
                                                        e.asset_check_evaluation_data.metadata.items()})
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def test_no_backup_yet_is_not_fresh(client, settings):
    gen = generate(client, settings, GenSpec(entities=5, seed=1, image_fraction=0.0))
    checks = _freshness(settings)
    assert checks["newest_backup_is_fresh"][0] is False
    assert checks["events_not_in_any_backup"][1]["events_pending"] == gen.event_count > 0


def test_an_old_backup_and_unbacked_events_fail_their_checks(client, settings, monkeypatch):
    generate(client, settings, GenSpec(entities=10, seed=4, image_fraction=0.0))
    assert run_backup(settings).success
    checks = _freshness(settings)
    assert checks["newest_backup_is_fresh"][0] and checks["events_not_in_any_backup"][0]
    assert checks["events_not_in_any_backup"][1]["events_pending"] == 0

    monkeypatch.setenv("ARKE_SNAPSHOT_THRESHOLD", "5")
    ArchiveWriter(client, settings, seed=9).run(7)
    (sidecar,) = settings.backups_dir.glob("arke-*.json")
    meta = json.loads(sidecar.read_text())
    meta["timestamp"] = "20200101T000000Z"
    sidecar.write_text(json.dumps(meta))
    checks = _freshness(settings)
    fresh, facts = checks["newest_backup_is_fresh"]
    assert not fresh and facts["age_hours"] > 24 * 365 and facts["limit_hours"] == 30.0
    pending, facts = checks["events_not_in_any_backup"]
    assert not pending and facts["events_pending"] == 7 and facts["threshold"] == 5


def test_the_margin_follows_the_schedule():
    assert max_age("0 2 * * *") == 30 * 3600
    assert max_age("*/15 * * * *") == 15 * 60 + 3600
    assert isinstance(defs.resolve_job_def("freshness_job"), dg.JobDefinition)


def test_with_the_node_down_each_check_says_what_it_can(fresh_kubo, tmp_path):
    """The job used to fail and both checks error with KuboUnreachable, the age check included,
    which reads only the backups folder."""
    from arke_dr_pipeline.kubo.client import KuboClient
    from arke_dr_pipeline_tests.conftest import make_settings

    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=10, seed=5, image_fraction=0.0))
    assert run_backup(settings).success
    fresh_kubo.stop()
    checks = _freshness(settings)  # the job succeeds
    fresh, facts = checks["newest_backup_is_fresh"]
    assert fresh and facts["age_hours"] < 1
    pending, facts = checks["events_not_in_any_backup"]
    assert not pending and facts["node"] == settings.api_url
