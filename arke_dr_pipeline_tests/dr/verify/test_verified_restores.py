"""The promise of `verify-car`: a CAR it passes restores on the pinned Kubo, whatever the archive."""

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arke_dr_pipeline.dr.restore.whole import restore
from arke_dr_pipeline.dr.verify.car import verify_car
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline.simulate.writer import ArchiveWriter
from arke_dr_pipeline_tests.conftest import make_settings
from arke_dr_pipeline_tests.helpers import backup, logical_dump

archives = st.fixed_dictionaries({
    "entities": st.integers(1, 40),
    "extra_events": st.integers(0, 60),
    "shape": st.sampled_from(["api", "seed", "mixed"]),
    "image_fraction": st.sampled_from([0.0, 0.2]),
    "seed": st.integers(0, 1 << 16),
    "writes": st.integers(0, 8),
})


def _verified_then_restored(daemon, workdir, arch: dict) -> None:
    daemon.wipe()  # one node for every example: each starts empty
    settings = make_settings(daemon.api_url, workdir)
    spec = GenSpec(entities=arch["entities"], events=arch["entities"] + arch["extra_events"], seed=arch["seed"],
                   image_fraction=arch["image_fraction"], image_min=2_000, image_max=400_000, shape=arch["shape"])
    with KuboClient(daemon.api_url) as client:
        generate(client, settings, spec)
        if arch["writes"]:
            ArchiveWriter(client, settings, seed=arch["seed"]).run(arch["writes"])
        car = backup(client, settings)
        before = logical_dump(client, settings)
    report, _ = verify_car(car)
    assert report.sidecar is not None
    daemon.wipe()
    with KuboClient(daemon.api_url) as client:
        restore(client, replace(settings, api_url=daemon.api_url), car)
        assert logical_dump(client, settings) == before


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arch=archives)
def test_a_verified_car_restores(fresh_kubo, tmp_path_factory, arch):
    _verified_then_restored(fresh_kubo, tmp_path_factory.mktemp("arch"), arch)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arch=archives)
def test_a_verified_car_restores_many(fresh_kubo, tmp_path_factory, arch):
    _verified_then_restored(fresh_kubo, tmp_path_factory.mktemp("arch"), arch)
