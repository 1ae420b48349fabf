"""A snapshot in one block past 8 MiB, as upstream's builder and our `inline` publishing write
it from ~23,000 entities on (the production archive has about 40,000): backed up, verified
and restored. The CAR reader refused any section over 8 MiB, so every backup of such an
archive failed at its verification."""

from dataclasses import replace

from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.backup.run import backup
from arke_dr_pipeline.dr.restore.whole import restore
from arke_dr_pipeline.dr.verify.car import verify_car
from arke_dr_pipeline.ipld.car import CarReader
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline_tests.conftest import make_settings
from arke_dr_pipeline_tests.helpers import dump_digest


def test_a_snapshot_block_over_8_mib_backs_up_and_restores(fresh_kubo, tmp_path):
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url, timeout=120, long_timeout=600) as client:
        generate(client, settings, GenSpec(entities=24_000, events=24_000, seed=3, components=False))
        snap = build_snapshot(client, settings)
        assert len(client.block_get(snap.snapshot_cid)) > 8 << 20  # published inline, as upstream does
        car = backup(client, settings, snap.snapshot_cid).car.car_path
        before = dump_digest(client, settings)
    with open(car, "rb") as fh:
        assert max(len(b.data) for b in CarReader(fh)) > 8 << 20
    report, _ = verify_car(car)
    assert report.entity_count == 24_000
    fresh_kubo.wipe()
    with KuboClient(fresh_kubo.api_url, timeout=120, long_timeout=600) as client:
        restore(client, replace(settings, api_url=fresh_kubo.api_url), car)
        assert dump_digest(client, settings) == before
