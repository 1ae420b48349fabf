"""The real daemon does what the rest of the project relies on."""

import io
import json

import cbrrr
import pytest

from arke_dr_pipeline.ipld.car import CarReader
from arke_dr_pipeline.ipld.cid import DAG_CBOR, parse_cid
from arke_dr_pipeline.ipld.links import decode_block
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.kubo.errors import KuboError, KuboUnreachable


def test_dag_cbor_link_is_tag_42(client):
    target = client.add_bytes(b"component bytes")
    cid = client.dag_put(json.dumps({"name": "x", "component": {"/": target}}).encode())
    raw = client.block_get(cid)
    assert b"\xd8\x2a" in raw  # CBOR tag 42
    value = decode_block(DAG_CBOR, raw)
    assert value["component"] == cbrrr.CID(parse_cid(target))


def test_dag_json_export_import_roundtrip(kubo, client):
    leaf = client.dag_put(b'{"leaf": true}', store_codec="dag-json")
    root = client.dag_put(json.dumps({"child": {"/": leaf}}).encode(), store_codec="dag-json")
    with client.dag_export(root) as chunks:
        car = b"".join(chunks)
    blocks = list(CarReader(io.BytesIO(car)))
    assert {b.cid for b in blocks} == {parse_cid(root), parse_cid(leaf)}

    kubo.wipe()
    with KuboClient(kubo.api_url) as fresh:
        with pytest.raises(KuboError, match="not found"):
            fresh.block_get(root)
        roots = fresh.dag_import(io.BytesIO(car))
        assert roots[0]["Cid"]["/"] == root
        assert json.loads(fresh.dag_get(root)) == {"child": {"/": leaf}}
        assert fresh.pin_ls(root) == {root: "recursive"}


def test_errors_name_the_call_and_kubo_message(client):
    with pytest.raises(KuboError) as err:
        client.files_read("/no/such/file")
    assert str(err.value).startswith("files/read /no/such/file: ")
    assert "does not exist" in str(err.value)


def test_stopped_node_fails_within_timeout(tmp_path):
    from arke_dr_pipeline.kubo.daemon import KuboDaemon

    d = KuboDaemon(tmp_path / "ipfs")
    url = d.start()
    d.pause()
    try:
        with KuboClient(url, timeout=1.0, retries=1, backoff=0.01) as c, \
                pytest.raises(KuboUnreachable, match=r"^id: node at .* timed out"):
            c.id()
    finally:
        d.resume()
        d.stop()
    with KuboClient(url, timeout=1.0, retries=0) as c, pytest.raises(KuboUnreachable, match="unreachable"):
        c.version()
