"""Sorted runs give back every item, sorted, however many runs they went through."""

import random

import pytest

from arke_dr_pipeline.dr.plumbing import runs
from arke_dr_pipeline.dr.plumbing.runs import SortedRuns
from arke_dr_pipeline.errors import ArkeDrError


def _links(n: int, seed: int) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    cids = [bytes([1, 0x71, 0x12, 32]) + rng.randbytes(32) for _ in range(n // 3)]
    return [(rng.choice(cids), rng.choice(cids)) for _ in range(n)]


@pytest.mark.parametrize("limit", [10**9, 1, 97], ids=["in-memory", "a-run-per-item", "runs-and-memory"])
def test_items_come_back_sorted_with_their_duplicates(monkeypatch, limit):
    monkeypatch.setattr(runs, "MAX_RUNS", 8)
    items = _links(2000, limit)
    out = SortedRuns(limit)
    for item in items:
        out.add(item)
    assert len(out) == 2000
    assert len(out._runs) <= 8
    assert list(out) == sorted(items)
    assert list(out) == sorted(items), "a second reading gives the same"


def test_two_readers_of_the_same_runs_do_not_disturb_each_other(monkeypatch):
    monkeypatch.setattr(runs, "BATCH", 5)
    items = [bytes([i % 251, i // 251]) for i in range(1000)]
    random.Random(1).shuffle(items)
    out = SortedRuns(64)
    for item in items:
        out.add(item)
    first, second = iter(out), iter(out)
    together = [(a, b) for a, b in zip(first, second, strict=True)]
    assert [a for a, _ in together] == [b for _, b in together] == sorted(items)


def test_no_room_for_a_run_is_one_clear_error(tmp_path):
    out = SortedRuns(1, directory=str(tmp_path / "gone"))
    with pytest.raises(ArkeDrError, match=r"^cannot keep sorted runs in .*gone.*No such file") as err:
        out.add(b"a" * 36)
    assert "\n" not in str(err.value)
