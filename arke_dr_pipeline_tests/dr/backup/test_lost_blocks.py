"""One block the node lost never stops every backup (dr/backup/loss.py).

The Arke API adds components with `pin=false`; a `repo gc` before our next
backup deletes them. The backup still protects everything else, names what
is missing, and says so (exit 8, a failed check) until the loss is repaired
or acknowledged.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.backup.inventory import build_inventory
from arke_dr_pipeline.dr.backup.run import backup
from arke_dr_pipeline.dr.catalog.sidecar import read_sidecar
from arke_dr_pipeline.dr.restore.drill import drill
from arke_dr_pipeline.dr.restore.whole import restore
from arke_dr_pipeline.dr.verify.car import verify_car
from arke_dr_pipeline.dr.verify.dagcheck import BackupInvalid
from arke_dr_pipeline.ipld.cid import cid_str
from arke_dr_pipeline.ipld.links import dag_pb_links
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline_tests.conftest import make_settings
from arke_dr_pipeline_tests.helpers import logical_dump


def _rows(inventory: str) -> list[list[str]]:
    header, *rows = Path(inventory).read_text().splitlines()
    assert header.startswith("#arke-dr inventory format 1\t")
    return [line.split("\t") for line in rows]


def _lose(client, cid: str) -> None:
    """What a `repo gc` does to a component the API added with `pin=false`."""
    for pinned in client.pin_ls():
        client.request("pin/rm", pinned)
    for pinned in client.pin_ls(type="direct"):
        client.request("pin/rm", pinned)
    client.request("block/rm", cid)


def _present(client, rows, lost: str) -> list[str]:
    """Inventory CIDs the node no longer has, after a `repo gc`."""
    gone = []
    for cid, *_ in rows:
        if cid != lost:
            try:
                client.block_stat(cid)
            except Exception:
                gone.append(cid)
    return gone


def _env(api_url: str, settings) -> dict:
    return {**os.environ, "IPFS_API_URL": api_url, "INDEX_POINTER_PATH": settings.index_pointer_path,
            "SNAPSHOTS_DIR": str(settings.snapshots_dir), "BACKUPS_DIR": str(settings.backups_dir),
            "ARKE_PROGRESS": "0"}


def arke_dr(*args, env):
    return subprocess.run([sys.executable, "-m", "arke_dr_pipeline.cli", *args],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("shape", ["api", "seed"])
def test_a_lost_component_is_named_the_rest_backed_up_pinned_and_restored(fresh_kubo, tmp_path, shape):
    """In the seed's shape Kubo's recursive pin follows the manifests' tag-42 links down to the
    lost block, so the blocks above it are pinned directly; in the API's, plain links hide it."""
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=120, events=300, seed=41, image_fraction=0.05,
                                           image_min=2_000, image_max=4_000, shape=shape))
        snapshot = build_snapshot(client, settings).snapshot_cid
        rows = _rows(build_inventory(client, settings).path)
        victim = next(cid for cid, role, codec, _ in rows if role == "components" and codec == "raw")
        before = logical_dump(client, settings, lost=frozenset({victim}))
        for staged in settings.backups_dir.iterdir():
            staged.unlink()
        _lose(client, victim)

        result = backup(client, settings, snapshot)
        lost = result.car.lost
        assert [e["cid"] for e in lost] == [victim] and not lost[0]["acknowledged"]
        assert lost[0]["pi"] in before["tips"] and isinstance(lost[0]["ver"], int)
        car = Path(result.car.car_path)
        assert read_sidecar(car)["lost"] == lost
        assert result.car.block_count == len(rows) - 1
        report, _ = verify_car(car)
        assert [e["cid"] for e in report.lost] == [victim]

        client.repo_gc()  # our pins hold every other block, the one above the loss included
        assert _present(client, rows, victim) == []
        if shape == "api":
            drilled = drill(client, settings)  # both nodes lack the same block: the restore is equal
            assert drilled.ok, drilled.differences
    fresh_kubo.wipe()
    with KuboClient(fresh_kubo.api_url) as client:
        out = restore(client, settings, car)
        assert out["lost_blocks"] == 1
        client.repo_gc()
        assert logical_dump(client, settings, lost=frozenset({victim})) == before


def test_cli_exits_8_until_the_loss_is_acknowledged(fresh_kubo, tmp_path):
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    env = _env(fresh_kubo.api_url, settings)
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=60, events=120, seed=43, image_fraction=0.1,
                                           image_min=2_000, image_max=4_000, shape="api"))
        build_snapshot(client, settings)
        rows = _rows(build_inventory(client, settings).path)
        victim = next(cid for cid, role, codec, _ in rows if role == "components" and codec == "raw")
        for staged in settings.backups_dir.iterdir():
            staged.unlink()
        _lose(client, victim)

    first = arke_dr("export-car", env=env)
    assert first.returncode == 8, first.stderr
    error = first.stderr.splitlines()[-1]
    assert error.startswith("arke-dr: error: backup made without 1 block missing from the node: " + victim)
    assert "acknowledge-loss" in error
    assert Path(first.stdout.strip()).is_file()  # the backup stands

    refused = arke_dr("acknowledge-loss", "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", env=env)
    assert refused.returncode == 2 and "not named lost" in refused.stderr
    assert not (settings.snapshots_dir / "acknowledged-loss.json").exists()

    again = arke_dr("export-car", env=env)
    assert again.returncode == 8  # the next backup says it too
    assert json.loads(Path(again.stdout.strip()).with_suffix(".json").read_text())["kind"] == "full"

    ok = arke_dr("acknowledge-loss", victim, "--note", "image re-requested from donor", env=env)
    assert ok.returncode == 0, ok.stderr
    acks = json.loads((settings.snapshots_dir / "acknowledged-loss.json").read_text())["acknowledged"]
    assert acks[victim]["note"] == "image re-requested from donor"

    third = arke_dr("export-car", env=env)
    assert third.returncode == 0, third.stderr
    assert "acknowledged lost" in third.stderr
    sidecar = json.loads(Path(third.stdout.strip()).with_suffix(".json").read_text())
    assert sidecar["lost"][0]["cid"] == victim and sidecar["lost"][0]["acknowledged"]


def test_a_lost_manifest_still_refuses_the_backup(fresh_kubo, tmp_path):
    """Without a manifest there is no version to restore: that is not a loss to back up around."""
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=80, seed=44, shape="api"))
        build_snapshot(client, settings)
        rows = _rows(build_inventory(client, settings).path)
        victim = next(cid for cid, role, codec, _ in rows if role == "manifests")
        for staged in settings.backups_dir.iterdir():
            staged.unlink()
        _lose(client, victim)
        with pytest.raises(BackupInvalid, match=f"{victim}: .*missing from the node"):
            build_inventory(client, settings)
        assert [p.name for p in settings.backups_dir.iterdir() if not p.name.startswith("cid-log")] == []


def test_a_sidecar_cannot_declare_away_a_block_it_does_not_name(fresh_kubo, tmp_path):
    """Verification accepts exactly the blocks the sidecar names as lost, no others."""
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=60, seed=45, image_fraction=0.2, image_min=2_000,
                                           image_max=3_000, shape="api"))
        build_snapshot(client, settings)
        rows = _rows(build_inventory(client, settings).path)
        raws = [cid for cid, role, codec, _ in rows if role == "components" and codec == "raw"]
        for staged in settings.backups_dir.iterdir():
            staged.unlink()
        _lose(client, raws[0])
        _lose(client, raws[1])
        car = Path(backup(client, settings, build_snapshot(client, settings).snapshot_cid).car.car_path)
    sidecar_file = car.with_suffix(".json")
    sidecar = json.loads(sidecar_file.read_text())
    assert sorted(e["cid"] for e in sidecar["lost"]) == sorted(raws[:2])
    sidecar["lost"] = sidecar["lost"][:1]
    sidecar_file.write_text(json.dumps(sidecar))
    with pytest.raises(BackupInvalid, match="block missing"):
        verify_car(car)


def test_repair_puts_back_a_lost_component_from_an_older_backup(fresh_kubo, tmp_path):
    """The loss is repaired, not only acknowledged: the next backup is whole and exits 0."""
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    env = _env(fresh_kubo.api_url, settings)
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=60, events=120, seed=46, image_fraction=0.2,
                                           image_min=300_000, image_max=400_000, shape="api"))
        snapshot = build_snapshot(client, settings).snapshot_cid
        first = backup(client, settings, snapshot)
        rows = _rows(first.inventory.path)
        victim = next(cid for cid, role, codec, _ in rows if role == "components" and codec == "dag-pb")
        before = logical_dump(client, settings)
        chunks = dag_pb_links(client.block_get(victim))
        assert chunks
        _lose(client, victim)
        for chunk in chunks:  # a gc takes the image's chunks too
            client.request("block/rm", cid_str(chunk))
    lossy = arke_dr("export-car", "--full", env=env)
    assert lossy.returncode == 8 and victim in lossy.stderr
    own = json.loads(Path(first.car.sidecar_path).read_text())["inventory"]  # no longer shared with the lossy one
    assert own != json.loads(Path(lossy.stdout.strip()).with_suffix(".json").read_text())["inventory"]
    assert victim in (settings.backups_dir / own).read_text()
    pruned = arke_dr("prune", env={**env, "ARKE_KEEP_LAST": "1", "ARKE_KEEP_DAILY": "0", "ARKE_KEEP_WEEKLY": "0",
                                   "ARKE_KEEP_MONTHLY": "0"})
    assert pruned.returncode == 0 and Path(first.car.car_path).exists()  # the only backup holding the image
    fixed = arke_dr("--json", "repair", env=env)
    assert fixed.returncode == 0, fixed.stderr
    doc = json.loads(fixed.stdout)
    assert victim in doc["repaired"] and doc["still_missing"] == [] and doc["blocks_imported"] > 1
    again = arke_dr("export-car", "--full", env=env)
    assert again.returncode == 0, again.stderr
    assert "lost" not in json.loads(Path(again.stdout.strip()).with_suffix(".json").read_text())
    with KuboClient(fresh_kubo.api_url) as client:
        client.repo_gc()
        assert logical_dump(client, settings) == before
    nothing = arke_dr("repair", env=env)
    assert nothing.returncode == 0 and "0 lost" in nothing.stdout
