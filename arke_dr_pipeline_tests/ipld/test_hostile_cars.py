"""A verifier to trust: each class of hostile or foreign CAR, built here, gets
a one-line refusal, and what `verify-car` passes the pinned Kubo imports."""

import hashlib
import json
import os
import tracemalloc

import cbrrr
import pytest

from arke_dr_pipeline.arke.models import Event, Manifest, SnapshotEntry
from arke_dr_pipeline.arke.snapshot_codec import encode_snapshot
from arke_dr_pipeline.dr.restore.whole import restore
from arke_dr_pipeline.dr.verify.car import verify_car
from arke_dr_pipeline.dr.verify.dagcheck import BackupInvalid
from arke_dr_pipeline.ipld.car import CARV2_PRAGMA, car_header, car_section
from arke_dr_pipeline.ipld.cid import DAG_CBOR, DAG_JSON, RAW, cid_str, make_cid, uvarint
from arke_dr_pipeline.ipld.unixfs import file_blocks
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.kubo.errors import KuboError
from arke_dr_pipeline.simulate.testdata import encode_event
from arke_dr_pipeline_tests.conftest import make_settings
from arke_dr_pipeline_tests.helpers import logical_dump

PI = "01K75GZSKKSP2K6TP05JBFNV09"


def api_archive(component: tuple[bytes, list] | None = None, extra: list | None = None, names: dict | None = None):
    """(root, blocks) of a small production-shaped backup: two versions, a component, two events;
    `names` receives the CIDs by role."""
    comp_root, comp_blocks = component or file_blocks(b"metadata " * 50)
    m1 = Manifest(PI, 1, "t1", None, {}, [], "v1", "arke/manifest/v1")
    d1 = cbrrr.encode_dag_cbor(m1.to_ipld(plain=True))
    c1 = make_cid(DAG_CBOR, d1)
    m2 = Manifest(PI, 2, "t2", c1, {"file": comp_root}, [], "v2", "arke/manifest/v1")
    d2 = cbrrr.encode_dag_cbor(m2.to_ipld(plain=True))
    c2 = make_cid(DAG_CBOR, d2)
    e1c, e1 = encode_event(Event("create", PI, 1, c1, "t1", None), api=True)
    e2c, e2 = encode_event(Event("update", PI, 2, c2, "t2", e1c), api=True)
    root, snap = encode_snapshot(seq=1, ts="t", event_cid=cid_str(e2c), prev_snapshot=None,
                                 entries=[SnapshotEntry(PI, 2, c2, "t2", e2c)])
    if names is not None:
        names.update(tip=c2, first=c1, component=comp_root)
    return root, snap + [(e2c, e2), (e1c, e1), (c2, d2), (c1, d1)] + comp_blocks + (extra or [])


@pytest.fixture(params=["in-memory", "spilled"], autouse=True)
def _spill(request):
    """Every refusal holds when the verifier's CIDs and facts are on disk, as at 10x."""
    if request.param == "spilled":
        request.getfixturevalue("spilled")


def write_car(path, root, blocks, *, v2: bool = False):
    inner = car_header([root]) + b"".join(car_section(c, d) for c, d in blocks)
    if v2:
        fixed = bytearray(40)
        fixed[16:24] = (51).to_bytes(8, "little")
        fixed[24:32] = len(inner).to_bytes(8, "little")
        inner = CARV2_PRAGMA + bytes(fixed) + inner
    path.write_bytes(inner)
    return path


def refused(path, match):
    with pytest.raises(BackupInvalid, match=match):
        verify_car(path)


def test_the_api_shaped_backup_verifies(tmp_path):
    report, _ = verify_car(write_car(tmp_path / "a.car", *api_archive()))
    assert (report.entity_count, report.event_count, report.manifest_count) == (1, 2, 2)


@pytest.mark.parametrize("digest_len", [16, 1])
def test_a_truncated_digest_is_not_a_hash_check(tmp_path, digest_len):
    """A CID naming only the first bytes of sha2-256 used to "verify" bytes it was never made from."""
    data = b"anything at all"
    cid = b"\x01\x55\x12" + uvarint(digest_len) + hashlib.sha256(data).digest()[:digest_len]
    refused(write_car(tmp_path / "t.car", cid, [(cid, data)]),
            f"digest of {digest_len} bytes, but hash function 0x12 makes 32")


def test_identity_cids_within_kubos_bound(tmp_path):
    data = b"y" * 129
    cid = b"\x01\x55\x00" + uvarint(len(data)) + data
    refused(write_car(tmp_path / "i.car", cid, [(cid, data)]), "digest length 129 is too long")
    empty = b"\x01\x55\x00\x00"
    refused(write_car(tmp_path / "e.car", empty, [(empty, b"not empty")]), "do not hash to their CID")


def test_a_block_nothing_links_to_is_refused(tmp_path):
    stray = make_cid(RAW, b"stray")
    refused(write_car(tmp_path / "s.car", *api_archive(extra=[(stray, b"stray")])),
            f"{cid_str(stray)}: block that nothing in the CAR links to")


def test_deeply_nested_blocks_are_refused_in_bounded_memory(tmp_path):
    deep_cbor = b"\x81" * (4 << 20) + b"\x00"
    cid = make_cid(DAG_CBOR, deep_cbor)
    tracemalloc.start()
    try:
        refused(write_car(tmp_path / "c.car", cid, [(cid, deep_cbor)]), "nested deeper than 256 levels")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20  # the block's bytes and the reader's buffer, never a tree of objects
    deep_json = b"[" * 5000 + b"]" * 5000
    jcid = make_cid(DAG_JSON, deep_json)
    refused(write_car(tmp_path / "j.car", jcid, [(jcid, deep_json)]), "not dag-json: nested deeper")
    wide = b"[" + b",".join([b"{}"] * 300_000) + b"]"
    wcid = make_cid(DAG_JSON, wide)
    refused(write_car(tmp_path / "w.car", wcid, [(wcid, wide)]), "more than 200000 maps and lists")


@pytest.mark.parametrize("header, match", [
    ((1 << 63).to_bytes(8, "little") + (10).to_bytes(8, "little"), "data offset .* padding"),
    ((51).to_bytes(8, "little") + (1 << 62).to_bytes(8, "little"), "truncated CARv2"),
    ((51).to_bytes(8, "little") + (0).to_bytes(8, "little"), "data size 0"),
])
def test_hostile_carv2_headers(tmp_path, header, match):
    root, blocks = api_archive()
    inner = car_header([root]) + b"".join(car_section(c, d) for c, d in blocks)
    fixed = bytes(16) + header + bytes(8)
    (tmp_path / "h.car").write_bytes(CARV2_PRAGMA + fixed + inner)
    refused(tmp_path / "h.car", match)


def test_messages_that_say_what_is_wrong(tmp_path):
    names: dict = {}
    root, blocks = api_archive(names=names)
    first = names["first"]
    refused(write_car(tmp_path / "r.car", first, [b for b in blocks if b[0] == first]),
            "root is not an Arke snapshot: it is a manifest")
    foreign = b"\x63\xff\xfe\xfd"
    fcid = make_cid(DAG_CBOR, foreign)
    refused(write_car(tmp_path / "f.car", fcid, [(fcid, foreign)]), "not dag-cbor: a string is not valid UTF-8")
    (tmp_path / "z.car").write_bytes(car_header([root]) + b"\x00")
    refused(tmp_path / "z.car", r"section at byte \d+ is empty \(length 0\)")
    os.mkfifo(tmp_path / "fifo.car")
    refused(tmp_path / "fifo.car", "not a regular file")
    refused(tmp_path, "not a regular file")
    write_car(tmp_path / "s.car", root, blocks)
    (tmp_path / "s.json").write_text("[1, 2]")
    refused(tmp_path / "s.car", "is not a JSON object")


def _big_block():
    """A component of 1.5 MiB in one raw block: over Kubo's 1 MiB without allow-big-block."""
    data = os.urandom(3 << 19)
    cid = make_cid(RAW, data)
    return cid, [(cid, data)]


@pytest.mark.parametrize("kind", ["carv2", "big-block"])
def test_what_verifies_restores(fresh_kubo, tmp_path, kind):
    """CARv2 is unwrapped to its CARv1; a block above 1 MiB goes in with allow-big-block."""
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    names: dict = {}
    root, blocks = api_archive(_big_block() if kind == "big-block" else None, names=names)
    car = write_car(tmp_path / "x.car", root, blocks, v2=kind == "carv2")
    report, _ = verify_car(car)
    assert report.version == (2 if kind == "carv2" else 1)
    assert report.big_blocks == (1 if kind == "big-block" else 0)
    with KuboClient(fresh_kubo.api_url) as client:
        result = restore(client, settings, car)
        assert result["entity_count"] == 1
        dump = logical_dump(client, settings)
        assert dump["tips"] == {PI: cid_str(names["tip"])}
        assert [h["ver"] for h in dump["histories"][PI]] == [2, 1]
        assert dump["histories"][PI][0]["components"] == {"file": cid_str(names["component"])}
        for cid, data in blocks:
            assert client.block_get(cid_str(cid)) == data
        client.repo_gc()
        assert logical_dump(client, settings) == dump


def test_restore_writes_nothing_unless_everything_verified(fresh_kubo, tmp_path):
    """A CAR whose only fault is at its very end: not one block reaches the node."""
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    stray = make_cid(RAW, b"stray")
    root, blocks = api_archive(extra=[(stray, b"stray")])
    car = write_car(tmp_path / "late.car", root, blocks)
    with KuboClient(fresh_kubo.api_url) as client:
        with pytest.raises(BackupInvalid, match="nothing in the CAR links to"):
            restore(client, settings, car)
        for cid, _ in blocks:
            with pytest.raises(KuboError, match="not found|could not find"):
                client.block_stat(cid_str(cid))
        assert client.files_stat("/arke") is None


def test_sidecar_for_json_value(tmp_path):
    root, blocks = api_archive()
    car = write_car(tmp_path / "b.car", root, blocks)
    (tmp_path / "b.json").write_text(json.dumps({"snapshot_cid": cid_str(root), "block_count": len(blocks)}))
    report, _ = verify_car(car)
    assert report.sidecar == str(tmp_path / "b.json") and report.block_count == len(blocks)
    (tmp_path / "b.json").write_text("[" * 100_000)
    refused(car, "sidecar .* is not JSON")



def _identity(codec: int, data: bytes) -> bytes:
    return b"\x01" + uvarint(codec) + b"\x00" + uvarint(len(data)) + data


def _holder(inline: bytes) -> tuple[bytes, list]:
    data = cbrrr.encode_dag_cbor({"inline": cbrrr.CID(inline)})
    cid = make_cid(DAG_CBOR, data)
    return cid, [(cid, data)]


def _component(codec: int, data: bytes) -> tuple[bytes, list]:
    cid = make_cid(codec, data)
    return cid, [(cid, data)]


_LINK = b"\x0a\x24" + make_cid(RAW, b"x")
KUBO_REFUSES = {  # the nine kinds of CAR that verified and that Kubo 0.39's import or pin refused
    "dag-json duplicate key": (_component(DAG_JSON, b'{"a":1,"a":2}'), "map key 'a' twice"),
    "dag-json NaN": (_component(DAG_JSON, b'{"a":NaN}'), "NaN is not a number"),
    "dag-json 30-digit integer": (_component(DAG_JSON, b'{"a":123456789012345678901234567890}'), "64 bits"),
    "dag-pb link field 9": (_component(0x70, b"\x12\x28" + _LINK + b"\x48\x01"), "field 9 in a PBLink"),
    "dag-pb two Data": (_component(0x70, b"\x0a\x01a\x0a\x01b"), "two Data fields"),
    "dag-pb links on both sides of Data": (  # found by the differential fuzz at 10,000 cases
        _component(0x70, b"\x12\x26" + _LINK + b"\x0a\x01a\x12\x26" + _LINK), "two Links sections"),
    "identity dag-cbor linking an absent block": (
        _holder(_identity(DAG_CBOR, cbrrr.encode_dag_cbor({"x": cbrrr.CID(make_cid(RAW, b"absent"))}))),
        "block missing"),
    "identity dag-cbor of ff fe fd": (_holder(_identity(DAG_CBOR, b"\xff\xfe\xfd")), "inline block .*not dag-cbor"),
    "identity dag-pb of ff fe fd": (_holder(_identity(0x70, b"\xff\xfe\xfd")), "inline block .*not dag-pb"),
}


@pytest.mark.parametrize("kind", sorted(KUBO_REFUSES))
def test_what_kubo_refuses_does_not_verify(tmp_path, kind):
    component, match = KUBO_REFUSES[kind]
    refused(write_car(tmp_path / "k.car", *api_archive(component)), match)


def test_a_car_header_with_a_key_kubo_does_not_know_is_refused(tmp_path):
    root, blocks = api_archive()
    raw = cbrrr.encode_dag_cbor({"roots": [cbrrr.CID(root)], "version": 1, "zzz": 1})
    path = tmp_path / "h.car"
    path.write_bytes(uvarint(len(raw)) + raw + b"".join(car_section(c, d) for c, d in blocks))
    refused(path, "unknown key 'zzz'")


def test_restore_of_an_inline_block_that_fails_writes_nothing(fresh_kubo, tmp_path):
    """It used to write six blocks, then fail at the pin."""
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    root, blocks = api_archive(KUBO_REFUSES["identity dag-cbor of ff fe fd"][0])
    car = write_car(tmp_path / "i.car", root, blocks)
    with KuboClient(fresh_kubo.api_url) as client:
        with pytest.raises(BackupInvalid, match="inline block"):
            restore(client, settings, car)
        for cid, _ in blocks:
            with pytest.raises(KuboError, match="not found|could not find"):
                client.block_stat(cid_str(cid))
