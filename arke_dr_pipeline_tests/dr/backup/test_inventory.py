"""Two inventories compared by a merge of their files."""

from dataclasses import replace

from arke_dr_pipeline.dr.backup.inventory import inventory_diff, inventory_path
from arke_dr_pipeline.dr.plumbing.config import Settings


def _write(settings, seq, cids):
    inventory_path(settings, seq, f"snap{seq}").write_text("".join(f"{c}\tcomponents\traw\t1\n" for c in sorted(cids)))


def test_added_and_removed_counted_against_the_inventory_before(tmp_path):
    settings = replace(Settings(), backups_dir=tmp_path)
    _write(settings, 1, ["b", "c", "d", "x"])
    _write(settings, 2, ["a", "c", "d", "e", "f", "z"])
    _write(settings, 4, ["a"])
    assert inventory_diff(settings, 2, "snap2") == (4, 2, str(inventory_path(settings, 1, "snap1")))
    assert inventory_diff(settings, 4, "snap4") == (0, 5, str(inventory_path(settings, 2, "snap2")))
    assert inventory_diff(settings, 1, "snap1") == (4, 0, None)
