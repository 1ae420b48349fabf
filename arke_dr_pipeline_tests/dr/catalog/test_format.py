"""`format: 1` in every sidecar and inventory, and a newer format refused by name (docs/FORMAT.md)."""

import json
from pathlib import Path

import pytest

from arke_dr_pipeline.dr.backup.inventory import inventory_cids
from arke_dr_pipeline.dr.catalog.format import NewerFormat
from arke_dr_pipeline.dr.verify.car import verify_car
from arke_dr_pipeline.dr.verify.dagcheck import BackupInvalid
from arke_dr_pipeline.simulate.testdata import seed_scenario
from arke_dr_pipeline_tests.helpers import backup


def test_a_backup_says_its_format_and_a_newer_one_is_refused_by_name(client, settings):
    seed_scenario(client, settings)
    car = backup(client, settings)
    sidecar = json.loads(car.with_suffix(".json").read_text())
    inventory = settings.backups_dir / sidecar["inventory"]
    assert sidecar["format"] == 1
    assert inventory.read_text().splitlines()[0] == "#arke-dr inventory format 1\tcid\trole\tcodec\tsize"
    assert len(list(inventory_cids(inventory))) == sidecar["block_count"]

    newer = {**sidecar, "format": 2}
    car.with_suffix(".json").write_text(json.dumps(newer))
    with pytest.raises(BackupInvalid, match=r"format 2, written by a newer arke-dr; this one .* reads format 1"):
        verify_car(car)
    rows = inventory.read_text().splitlines()
    inventory.write_text("\n".join(["#arke-dr inventory format 2\tcid\trole\tcodec\tsize", *rows[1:]]) + "\n")
    with pytest.raises(NewerFormat, match="format 2"):
        list(inventory_cids(inventory))


def test_files_from_before_the_number_are_format_1(client, settings):
    seed_scenario(client, settings)
    car = backup(client, settings)
    sidecar = json.loads(car.with_suffix(".json").read_text())
    del sidecar["format"]
    car.with_suffix(".json").write_text(json.dumps(sidecar))
    inventory = Path(settings.backups_dir / sidecar["inventory"])
    inventory.write_text("\n".join(inventory.read_text().splitlines()[1:]) + "\n")
    verify_car(car)
    assert len(list(inventory_cids(inventory))) == sidecar["block_count"]
