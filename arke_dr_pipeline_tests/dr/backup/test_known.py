"""The base's blocks, asked of its sorted inventory file: the same answers as a set of its rows."""

import random

import pytest

from arke_dr_pipeline.dr.backup.known import KnownBlocks, SortedInventory
from arke_dr_pipeline.dr.catalog.format import INVENTORY_HEADER, NewerFormat
from arke_dr_pipeline.ipld.cid import cid_str, make_cid


def _cids(rnd: random.Random, n: int) -> list[bytes]:
    return [make_cid(rnd.choice([0x71, 0x0129, 0x55]), rnd.randbytes(rnd.randint(1, 64))) for _ in range(n)]


@pytest.mark.parametrize("rows", [0, 1, 2, 57, 3000])
@pytest.mark.parametrize("header, trailing", [(True, True), (False, True), (True, False), (False, False)])
@pytest.mark.parametrize("stride", [1, 64, 4096])
def test_every_row_is_found_and_nothing_else(tmp_path, monkeypatch, rows, header, trailing, stride):
    monkeypatch.setattr(SortedInventory, "STRIDE", stride)
    rnd = random.Random(rows)
    held = _cids(rnd, rows)
    lines = sorted(f"{cid_str(c)}\tcomponent\traw\t{rnd.randint(1, 10**6)}" for c in held)
    path = tmp_path / "inventory.tsv"
    text = (INVENTORY_HEADER + "\n" if header else "") + "\n".join(lines) + ("\n" if trailing and lines else "")
    path.write_text(text)
    inventory = SortedInventory(path)
    assert all(cid_str(c) in inventory for c in held)
    others = _cids(random.Random(rows + 1), 500)
    assert not any(cid_str(c) in inventory for c in others if c not in set(held))
    assert not any(cid_str(c)[:-1] in inventory for c in held)  # a prefix of a row is not the row
    inventory.close()


def test_a_small_stride_still_finds_every_row(tmp_path, monkeypatch):
    monkeypatch.setattr(SortedInventory, "STRIDE", 1)
    held = _cids(random.Random(7), 400)
    path = tmp_path / "inventory.tsv"
    path.write_text(INVENTORY_HEADER + "\n" + "".join(sorted(f"{cid_str(c)}\tmanifest\tdag-cbor\t9\n" for c in held)))
    known = KnownBlocks(path)
    assert all(c in known for c in held)
    fresh = _cids(random.Random(8), 50)
    assert not any(c in known for c in fresh)
    assert all(known.add(c) for c in fresh) and all(c in known for c in fresh)
    assert not known.add(held[0]) and not known.add(fresh[0])


def test_an_inventory_of_a_newer_format_is_refused_by_name(tmp_path):
    path = tmp_path / "inventory.tsv"
    path.write_text(INVENTORY_HEADER.replace("format 1", "format 9") + "\n")
    with pytest.raises(NewerFormat, match="format 9"):
        SortedInventory(path)
