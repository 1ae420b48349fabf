"""The docker-exec transport: the exact argv a container would run, against the local node.

Only the Docker hop is replaced (`LocalExecBackend`); the `ipfs` CLI, the
daemon, the files moved in and out are real.
"""

import json

import pytest

from arke_dr_pipeline.dr.restore.whole import restore
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.kubo.errors import KuboError
from arke_dr_pipeline.kubo.transport import DockerTransport, HttpTransport, LocalExecBackend
from arke_dr_pipeline.simulate.testdata import seed_scenario
from arke_dr_pipeline_tests.conftest import make_settings
from arke_dr_pipeline_tests.helpers import backup, logical_dump


@pytest.fixture
def transports(kubo, client, tmp_path):
    backend = LocalExecBackend(kubo.ipfs, kubo.repo, tmp_path / "container")
    return HttpTransport(client), DockerTransport(backend), backend


def test_dag_put_and_export_agree_byte_for_byte(transports, tmp_path):
    http, docker, backend = transports
    doc = json.dumps({"name": "entity", "n": 1}).encode()
    assert docker.dag_put(doc) == http.dag_put(doc)
    leaf = http.dag_put(b'{"leaf": 1}', store_codec="dag-json")
    root = docker.dag_put(json.dumps({"child": {"/": leaf}}).encode(), store_codec="dag-json")
    assert backend.argvs[-1][:6] == ["ipfs", "dag", "put", "--store-codec=dag-json", "--input-codec=dag-json",
                                     "--pin=false"]
    a, b = tmp_path / "http.car", tmp_path / "docker.car"
    http.dag_export(root, a)
    docker.dag_export(root, b)
    assert backend.argvs[-1] == ["ipfs", "dag", "export", "--progress=false", root]
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 0


def test_same_errors_from_both(transports, tmp_path):
    http, docker, _ = transports
    missing = "bafyreigdmqpykrgxyaxtlafqpqhzrb7qy2rh75nldvfd4tucqmqqme5yje"
    for t in (http, docker):
        with pytest.raises(KuboError, match="not found"):
            t.dag_export(missing, tmp_path / "x.car")
    with pytest.raises(KuboError, match="dag/put"):
        docker.dag_put(b"{not json")


def test_restore_through_the_docker_transport(fresh_kubo, tmp_path):
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        seed_scenario(client, settings)
        car = backup(client, settings)
        before = logical_dump(client, settings)
    fresh_kubo.wipe()
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    backend = LocalExecBackend(fresh_kubo.ipfs, fresh_kubo.repo, tmp_path / "container")
    with KuboClient(fresh_kubo.api_url) as client:
        restore(client, settings, car, transport=DockerTransport(backend))
        assert logical_dump(client, settings) == before
    assert backend.argvs[0][:4] == ["ipfs", "dag", "import", "--pin-roots=false"]
    assert backend.argvs[0][4].startswith("/tmp/arke-dr-")
    assert not list((tmp_path / "container" / "tmp").iterdir())  # the CAR moved in was removed
