"""Every kind of bad CAR gets its own error, from the offline verifier alone."""

import io
import os
import random

import cbrrr
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arke_dr_pipeline.arke.models import Event, Manifest, SnapshotEntry
from arke_dr_pipeline.arke.snapshot_codec import encode_dag_json, encode_snapshot
from arke_dr_pipeline.dr.verify.car import verify_car
from arke_dr_pipeline.dr.verify.dagcheck import BackupInvalid
from arke_dr_pipeline.ipld.car import CARV2_PRAGMA, MAX_SECTION, CarReader, car_header, car_section
from arke_dr_pipeline.ipld.cid import DAG_CBOR, RAW, cid_str, make_cid, uvarint
from arke_dr_pipeline.ipld.unixfs import file_blocks


def archive():
    """A tiny but complete backup: two versions of one entity, a component, two events."""
    blocks = []
    comp_root, comp_blocks = file_blocks(random.Random(1).randbytes(300_000))
    blocks += comp_blocks
    m1 = Manifest("ENTITY_A00000000000000", 1, "t1", None, {}, [], "v1")
    d1 = cbrrr.encode_dag_cbor(m1.to_ipld())
    c1 = make_cid(DAG_CBOR, d1)
    m2 = Manifest("ENTITY_A00000000000000", 2, "t2", c1, {"image": comp_root}, [], "v2")
    d2 = cbrrr.encode_dag_cbor(m2.to_ipld())
    c2 = make_cid(DAG_CBOR, d2)
    e1c, e1 = encode_dag_json(Event("create", m1.pi, 1, c1, "t1", None).to_ipld())
    e2c, e2 = encode_dag_json(Event("update", m1.pi, 2, c2, "t2", e1c).to_ipld())
    root, snap = encode_snapshot(seq=1, ts="t", event_cid=cid_str(e2c), prev_snapshot=None,
                                 entries=[SnapshotEntry(m1.pi, 2, c2, "t2", e2c)])
    blocks = snap + [(e2c, e2), (e1c, e1), (c2, d2), (c1, d1)] + blocks
    return root, blocks


ROOT, BLOCKS = archive()
ROLE = {"snapshot": 0, "event": 1, "manifest": 3, "component": 5}


def car_bytes(roots=None, blocks=None):
    roots = [ROOT] if roots is None else roots
    return car_header(roots) + b"".join(car_section(c, d) for c, d in (BLOCKS if blocks is None else blocks))


def check(tmp_path, data, match):
    path = tmp_path / "x.car"
    path.write_bytes(data)
    with pytest.raises(BackupInvalid, match=match):
        verify_car(path)


def test_the_good_one_passes(tmp_path):
    path = tmp_path / "good.car"
    path.write_bytes(car_bytes())
    report, _ = verify_car(path)
    assert report.entity_count == 1 and report.event_count == 2 and report.manifest_count == 2


def test_carv2_is_read_through_its_inner_v1(tmp_path):
    inner = car_bytes()
    header = bytes(16) + (51).to_bytes(8, "little") + len(inner).to_bytes(8, "little") + bytes(8)
    path = tmp_path / "v2.car"
    path.write_bytes(CARV2_PRAGMA + header + inner + b"index bytes after the data are ignored")
    report, _ = verify_car(path)
    assert report.version == 2 and report.entity_count == 1


@pytest.mark.parametrize("data, match", [
    (b"", "empty file"),
    (random.Random(3).randbytes(5000), "not a CAR|malformed|truncated"),
    (car_header([]) , "no roots"),
    (uvarint(5) + b"hello", "header is not dag-cbor"),
])
def test_bad_headers(tmp_path, data, match):
    check(tmp_path, data, match)


@pytest.mark.parametrize("root", [ROOT[:-1], ROOT + b"\x00", ROOT[:4] + b"\x21" + ROOT[5:], b""],
                         ids=["short digest", "trailing byte", "length past the end", "empty"])
def test_a_root_that_is_not_one_cid_is_refused_as_the_header(tmp_path, root):
    """Found by the fuzzing: such a root was an internal error at the end of the verification."""
    check(tmp_path, car_bytes(roots=[ROOT, root]), "malformed CAR header: root 1 is not a CID")


def test_root_not_in_file(tmp_path):
    other = make_cid(RAW, b"elsewhere")
    check(tmp_path, car_bytes(roots=[other]), f"{cid_str(other)}: block missing")


def test_truncation_everywhere(tmp_path):
    data = car_bytes()
    boundaries, pos = [], len(car_header([ROOT]))
    for cid, d in BLOCKS:
        boundaries.append(pos)
        pos += len(car_section(cid, d))
    cuts = set(boundaries[1:]) | {b + k for b in boundaries for k in (1, 3, 40)}
    cuts |= {5, 20, len(data) - 1}
    for cut in sorted(c for c in cuts if 0 < c < len(data)):
        path = tmp_path / "cut.car"
        path.write_bytes(data[:cut])
        with pytest.raises(BackupInvalid):
            verify_car(path)


@pytest.mark.parametrize("role", sorted(ROLE))
def test_one_flipped_bit_in_each_kind_of_block(tmp_path, role):
    i = ROLE[role]
    cid, data = BLOCKS[i]
    flipped = bytearray(data)
    flipped[len(flipped) // 3] ^= 0x10
    blocks = list(BLOCKS)
    blocks[i] = (cid, bytes(flipped))
    check(tmp_path, car_bytes(blocks=blocks), f"block {cid_str(cid)} .*do not hash")


def test_duplicate_block(tmp_path):
    check(tmp_path, car_bytes(blocks=BLOCKS + [BLOCKS[2]]), f"{cid_str(BLOCKS[2][0])}: duplicate block")


def test_section_over_the_limit_is_refused_before_reading(tmp_path):
    data = car_header([ROOT]) + uvarint(MAX_SECTION + 1) + b"\0" * 64
    check(tmp_path, data, "over the limit")


def test_unknown_codec_and_hash(tmp_path):
    odd = b"\x01" + uvarint(0x0300) + b"\x12\x20" + make_cid(RAW, b"z")[4:]
    check(tmp_path, car_header([odd]) + car_section(odd, b"z"), "unknown codec 0x300")
    weird_hash = b"\x01\x55" + uvarint(0x1B) + b"\x20" + bytes(32)
    check(tmp_path, car_header([weird_hash]) + car_section(weird_hash, b"z"), "unsupported hash function 0x1b")


def test_cid_whose_hash_does_not_match(tmp_path):
    cid = make_cid(RAW, b"one thing")
    check(tmp_path, car_header([cid]) + car_section(cid, b"another"), f"{cid_str(cid)} .*do not hash")


def test_sidecar_mismatch_is_refused(tmp_path):
    path = tmp_path / "x.car"
    path.write_bytes(car_bytes())
    (tmp_path / "x.json").write_text(f'{{"snapshot_cid": "{cid_str(ROOT)}", "block_count": 999}}')
    with pytest.raises(BackupInvalid, match="block_count is .* but the sidecar says 999"):
        verify_car(path)


VALID = car_bytes()


def mutate(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for kind, pos, val in edits:
        pos %= max(len(out), 1)
        if kind == 0 and out:
            out[pos] ^= 1 << (val % 8)
        elif kind == 1:
            del out[pos:]
        else:
            out[pos:pos] = bytes([val % 256])
    return bytes(out)


edits = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1 << 20), st.integers(0, 255)), max_size=4)


def _only_our_errors(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "f.car"
    path.write_bytes(data)
    try:
        verify_car(path, use_sidecar=False)
    except BackupInvalid:
        pass
    finally:
        os.unlink(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=edits)
def test_fuzz_reader_short(tmp_path_factory, edits):
    _only_our_errors(tmp_path_factory, mutate(VALID, edits))


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=edits)
def test_fuzz_reader_full(tmp_path_factory, edits):
    _only_our_errors(tmp_path_factory, mutate(VALID, edits))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000))
def test_fuzz_random_bytes(tmp_path_factory, data):
    _only_our_errors(tmp_path_factory, data)


def test_reader_alone_on_a_stream():
    blocks = list(CarReader(io.BytesIO(VALID)))
    assert [b.cid for b in blocks] == [c for c, _ in BLOCKS]


def bad_cars() -> dict[str, bytes]:
    """One of each kind of bad input, for the tests that feed them to restore."""
    flipped = list(BLOCKS)
    cid, data = flipped[ROLE["event"]]
    flipped[ROLE["event"]] = (cid, data[:-2] + bytes([data[-2] ^ 1]) + data[-1:])
    odd = b"\x01" + uvarint(0x0300) + b"\x12\x20" + make_cid(RAW, b"z")[4:]
    good = car_bytes()
    return {
        "empty": b"",
        "random": random.Random(9).randbytes(4096),
        "no-roots": car_header([]),
        "root-missing": car_bytes(roots=[make_cid(RAW, b"elsewhere")]),
        "truncated-header": good[:10],
        "truncated-section": good[: len(good) - 7],
        "flipped-event": car_bytes(blocks=flipped),
        "duplicate": car_bytes(blocks=BLOCKS + [BLOCKS[1]]),
        "oversized-section": car_header([ROOT]) + uvarint(MAX_SECTION + 1) + b"\0" * 64,
        "unknown-codec": car_header([odd]) + car_section(odd, b"z"),
        "no-snapshot": car_bytes(blocks=BLOCKS[1:]),
    }
