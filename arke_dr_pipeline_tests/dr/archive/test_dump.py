"""The logical dump: a restore gives exactly the dump of its snapshot, and a
snapshot that lost an entity is named by the diff."""

import json
import subprocess
import sys
from dataclasses import replace

from arke_dr_pipeline.arke.models import tip_relpath
from arke_dr_pipeline.dr.archive.dump import diff, dump
from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.backup.run import backup as run_backup
from arke_dr_pipeline.dr.restore.whole import restore
from arke_dr_pipeline.ipld.cid import cid_str, parse_cid
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline.simulate.writer import ArchiveWriter
from arke_dr_pipeline_tests.conftest import make_settings
from arke_dr_pipeline_tests.helpers import backup, lossy_snapshot


def test_a_restore_gives_the_dump_of_its_snapshot_and_later_events_show(fresh_kubo, tmp_path):
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=150, seed=6, image_fraction=0.05, shape="mixed"))
        car = backup(client, settings)
        snapshot = cid_str(parse_cid(load_snapshot_cid(settings)))
        expected = dump(client, settings, tmp_path / "expected.dump", at_snapshot=snapshot)
        live_before = dump(client, settings, tmp_path / "live.dump")
        ArchiveWriter(client, settings, seed=2).run(3)  # after the backup: not in it
        later = dump(client, settings, tmp_path / "later.dump")
    assert expected.lines > 150 * 3 and live_before.sha256 != later.sha256
    fresh_kubo.wipe()
    settings = replace(settings, api_url=fresh_kubo.api_url)
    with KuboClient(fresh_kubo.api_url) as client:
        restore(client, settings, car)
        restored = dump(client, settings, tmp_path / "restored.dump")
    assert restored.sha256 == expected.sha256, diff(tmp_path / "expected.dump", tmp_path / "restored.dump")
    found = diff(tmp_path / "restored.dump", tmp_path / "later.dump", limit=100)
    assert any(line.startswith("pointer event_head:") for line in found)
    assert any("only in later.dump" in line and line.startswith("event ") for line in found)
    cli = subprocess.run([sys.executable, "-m", "arke_dr_pipeline.cli", "diff", str(tmp_path / "expected.dump"),
                          str(tmp_path / "restored.dump")], capture_output=True, text=True)
    assert cli.returncode == 0 and cli.stdout == ""
    cli = subprocess.run([sys.executable, "-m", "arke_dr_pipeline.cli", "diff", str(tmp_path / "restored.dump"),
                          str(tmp_path / "later.dump")], capture_output=True, text=True)
    assert cli.returncode == 1 and cli.stdout.count("\n") == 10


def load_snapshot_cid(settings) -> str:
    return json.loads((settings.snapshots_dir / "latest.json").read_text())["snapshot_cid"]


def test_a_snapshot_that_lost_an_entity_is_named(client, settings, tmp_path):
    generate(client, settings, GenSpec(entities=20, seed=9, image_fraction=0.0))
    good = build_snapshot(client, settings)
    bad, lost = lossy_snapshot(client, good.snapshot_cid, 7)
    expected = tmp_path / "expected.dump"
    dump(client, settings, expected, at_snapshot=good.snapshot_cid)
    dump(client, settings, tmp_path / "lossy.dump", at_snapshot=bad)
    # the chain as of the lossy snapshot still names the entity: both dumps have its tip...
    tips = [line for line in diff(expected, tmp_path / "lossy.dump", limit=50) if line.startswith("tip ")]
    assert tips == []
    # ...so a restore of the lossy snapshot, which installs only the snapshot's entries, differs by it
    car = run_backup(client, settings, bad).car.car_path
    elsewhere = replace(settings, index_pointer_path="/restored-arke/index-pointer")  # same node, own tree
    restore(client, elsewhere, car)
    dump(client, elsewhere, tmp_path / "restored.dump")
    found = diff(tmp_path / "lossy.dump", tmp_path / "restored.dump", limit=50)
    assert f"tip {tip_relpath(lost.pi)}: only in lossy.dump ({json.dumps(cid_str(lost.tip_cid))})" in found


def test_no_data_adds_a_line_to_the_dump(client, settings, tmp_path):
    """A pointer key or value holding a newline, a tab or U+2028 stays inside its one line."""
    from arke_dr_pipeline.dr.archive.pointer import require_pointer
    from arke_dr_pipeline.simulate.testdata import seed_scenario

    seed_scenario(client, settings)
    clean = dump(client, settings, tmp_path / "clean.dump")
    pointer = require_pointer(client, settings.index_pointer_path)
    pointer.raw["x\nversion\tINJECTED"] = "v\nversion\tINJECTED\u2028"
    client.files_write(settings.index_pointer_path, json.dumps(pointer.raw).encode())
    out = dump(client, settings, tmp_path / "hostile.dump")
    lines = (tmp_path / "hostile.dump").read_bytes().split(b"\n")[:-1]
    assert out.lines == clean.lines + 1 and len(lines) == out.lines + 1  # and the digest line
    assert not any(line.startswith(b"version\tINJECTED") for line in lines)
