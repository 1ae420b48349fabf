"""Sets and maps of CIDs behave the same in memory and on disk, and leave no file behind."""

import gc
import random

import pytest

from arke_dr_pipeline.dr.plumbing.spill import CidMap, CidSet, SpillFile


def _ops(seed: int):
    rng = random.Random(seed)
    keys = [bytes([1, 0x71, 0x12, 32]) + rng.randbytes(32) for _ in range(60)]
    return [(rng.choice("asdp"), rng.choice(keys), (f"pi{rng.randrange(9)}", rng.randrange(5), rng.choice(keys)))
            for _ in range(600)]


@pytest.mark.parametrize("limit", [10**9, 1, 25], ids=["in-memory", "on-disk", "moves-midway"])
def test_a_cid_set_and_map_answer_as_a_set_and_a_dict(monkeypatch, limit):
    from arke_dr_pipeline.dr.plumbing import spill

    monkeypatch.setattr(spill, "CID_LIMIT", limit)
    monkeypatch.setattr(spill, "FACT_LIMIT", limit)
    disk = SpillFile()
    ours_set, ours_map, ref_set, ref_map = CidSet(disk), CidMap(disk), set(), {}
    for op, key, value in _ops(limit):
        if op == "a":
            assert ours_set.add(key) == (key not in ref_set)
            ref_set.add(key)
            ours_map.setdefault(key, value)
            ref_map.setdefault(key, value)
        elif op == "s":
            ours_map[key] = value
            ref_map[key] = value
        elif op == "d":
            ours_set.discard(key)
            ref_set.discard(key)
        else:
            assert ours_map.pop(key, None) == ref_map.pop(key, None)
        assert (key in ours_set, key in ours_map) == (key in ref_set, key in ref_map)
        assert ours_map.get(key) == ref_map.get(key)
    assert len(ours_set) == len(ref_set) and set(ours_set) == ref_set
    assert len(ours_map) == len(ref_map) and dict(ours_map.items()) == ref_map
    assert sorted(ours_map) == sorted(ref_map)
    assert ours_set.on_disk == ours_map.on_disk == (limit < 10**9)
    missing = b"\x01\x71\x12\x20" + bytes(32)
    with pytest.raises(KeyError):
        ours_map[missing]


def test_the_spill_folder_goes_with_its_owner(monkeypatch, tmp_path):
    from arke_dr_pipeline.dr.plumbing import spill

    monkeypatch.setattr(spill, "CID_LIMIT", 1)
    disk = SpillFile(str(tmp_path))
    cids = CidSet(disk)
    for i in range(10):
        cids.add(bytes([i]) * 36)
    assert cids.on_disk and len(list(tmp_path.iterdir())) == 1
    del cids, disk
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_lines_come_back_sorted_from_runs_on_disk(monkeypatch):
    from arke_dr_pipeline.dr.plumbing import spill

    monkeypatch.setattr(spill, "LINE_LIMIT", 1)
    rng = random.Random(3)
    lines = [f"b{rng.randrange(10**12):x}\trole\t{i}" for i in range(3500)]
    out = spill.SortedLines()
    for line in lines:
        out.add(line)
    assert len(out._runs) == 3 and out.count == 3500
    assert list(out) == sorted(lines)


def test_a_queue_on_disk_keeps_its_order(monkeypatch):
    from arke_dr_pipeline.dr.plumbing import spill

    monkeypatch.setattr(spill, "QUEUE_LIMIT", 3)
    queue = spill.CidQueue()
    queue.extend(bytes([i]) * (i % 40 + 1) for i in range(10))
    got = queue.take(4)
    queue.extend([b"x" * 300, b"y"])
    got += queue.take(100)
    assert got == [bytes([i]) * (i % 40 + 1) for i in range(10)] + [b"x" * 300, b"y"] and not queue


def test_no_room_for_the_spill_file_is_one_clear_error(monkeypatch, tmp_path):
    from arke_dr_pipeline.dr.plumbing import spill
    from arke_dr_pipeline.errors import ArkeDrError

    monkeypatch.setattr(spill, "CID_LIMIT", 1)
    cids = CidSet(SpillFile(str(tmp_path / "gone")))
    cids.add(b"a" * 36)
    with pytest.raises(ArkeDrError, match=r"^cannot keep CIDs on disk in .*gone.*No such file") as err:
        cids.add(b"b" * 36)
    assert "\n" not in str(err.value)
