"""The base's blocks, asked of its sorted inventory file: the same answers as a set of its rows."""

import random

import pytest

from arke_dr_pipeline.dr.backup.known import KnownBlocks, SortedInventory, splice, spliced
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


@pytest.mark.parametrize("rows, new", [(0, 3), (1, 1), (57, 0), (3000, 40)])
@pytest.mark.parametrize("trailing", [True, False])
@pytest.mark.parametrize("stride", [1, 64, 4096])
def test_a_splice_is_the_sorted_merge_and_only_it_passes_as_one(tmp_path, monkeypatch, rows, new, trailing, stride):
    """A delta's inventory is its base's bytes with the new rows put in; the check that an inventory
    is one accepts exactly the merge of the two, and refuses any other byte."""
    monkeypatch.setattr(SortedInventory, "STRIDE", stride)
    rnd = random.Random(rows * 7 + new)
    held, fresh = _cids(rnd, rows), _cids(rnd, new)
    base_lines = sorted(f"{cid_str(c)}\tmanifest\tdag-cbor\t{rnd.randint(1, 10**6)}" for c in held)
    new_lines = sorted(f"{cid_str(c)}\tcomponent\traw\t{rnd.randint(1, 10**6)}" for c in fresh)
    base_path, out_path = tmp_path / "base.tsv", tmp_path / "new.tsv"
    base_path.write_text(INVENTORY_HEADER + "\n" + "\n".join(base_lines) + ("\n" if trailing and base_lines else ""))
    base = SortedInventory(base_path)
    with open(out_path, "wb") as out:
        out.write(INVENTORY_HEADER.encode() + b"\n")
        splice(base, new_lines, out)
    merged = sorted(base_lines + new_lines)
    assert out_path.read_text() == INVENTORY_HEADER + "\n" + "".join(line + "\n" for line in merged)
    added = sorted(cid_str(c) for c in fresh)
    # a base without its last newline gets one: no longer its bytes (the delta's check then merges)
    assert spliced(base, SortedInventory(out_path), added) == (trailing or not rows)
    if new:
        assert not spliced(base, SortedInventory(out_path), added[1:])  # a row the check was not told of
    if trailing and rows:
        text = out_path.read_bytes()
        for line in {base_lines[0], base_lines[len(base_lines) // 2], base_lines[-1]}:
            at = text.index(line.encode()) + len(line) - 1  # a base row's size
            spoiled = tmp_path / f"spoiled-{at}.tsv"
            spoiled.write_bytes(text[:at] + bytes([text[at] ^ 0x01]) + text[at + 1:])
            assert not spliced(base, SortedInventory(spoiled), added), at
    for c in held[:3]:
        assert base.role(cid_str(c)) == "manifest"
    assert all(base.role(cid_str(c)) is None for c in fresh)
    if held:
        with pytest.raises(ValueError, match="already a row"):
            splice(base, [base_lines[0]], open(tmp_path / "x.tsv", "wb"))
