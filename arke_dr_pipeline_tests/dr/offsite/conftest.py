"""One S3 server (versitygw, built by the suite) per test module, a fresh bucket per test."""

import itertools

import pytest

from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline_tests.helpers import backup
from arke_dr_pipeline_tests.s3server import S3Server

_buckets = itertools.count(1)


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server(tmp_path_factory.mktemp("s3")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket(s3):
    name = f"arke-{next(_buckets)}"
    s3.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def local_backup(client, settings):
    generate(client, settings, GenSpec(entities=40, seed=8, image_fraction=0.1))
    return backup(client, settings)
