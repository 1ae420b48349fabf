"""The drill through Dagster: after a backup_job, from its weekly schedule,
and its blocking check failing on a backup that does not restore."""

import dagster as dg

from arke_dr_pipeline.defs import defs
from arke_dr_pipeline.ipld.car import CarReader
from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline_tests.defs.test_definitions import check_results, resources, run_backup


def _drill(settings, instance):
    return defs.resolve_job_def("drill_job").execute_in_process(resources=resources(settings), instance=instance,
                                                                raise_on_error=False)


def test_backup_job_then_the_scheduled_drill_proves_it(client, settings):
    generate(client, settings, GenSpec(entities=80, seed=11, image_fraction=0.05, shape="api"))
    instance = dg.DagsterInstance.ephemeral()
    assert run_backup(settings, instance).success
    schedule = defs.resolve_schedule_def("weekly_drill")
    request = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
    assert [r.job_name or schedule.job_name for r in request.run_requests] == ["drill_job"]
    result = _drill(settings, instance)
    assert result.success and check_results(result) == {"latest_backup_restores": True}
    meta = result.asset_materializations_for_node("restore_drill")[0].metadata
    assert meta["restores"].value == 1 and meta["entities"].value == 80
    assert meta["rto_seconds"].value > 0 and meta["rpo_events"].value == 0 and meta["import_seconds"].value >= 0


def test_a_corrupted_backup_fails_the_drill_check_naming_the_block(client, settings):
    generate(client, settings, GenSpec(entities=20, seed=12, image_fraction=0.0, shape="api"))
    instance = dg.DagsterInstance.ephemeral()
    assert run_backup(settings, instance).success
    (car,) = settings.backups_dir.glob("arke-*.car")
    with open(car, "rb") as fh:
        victim = list(CarReader(fh))[5]
    data = bytearray(car.read_bytes())
    data[data.find(victim.data) + 3] ^= 0x40
    car.write_bytes(bytes(data))
    result = _drill(settings, instance)
    assert check_results(result) == {"latest_backup_restores": False}
    evaluation = next(e.asset_check_evaluation_data for e in result.all_events
                      if e.event_type_value == "ASSET_CHECK_EVALUATION")
    assert "does not restore" in evaluation.description
