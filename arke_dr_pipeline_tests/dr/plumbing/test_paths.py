"""Paths stay in the backups folder."""


import pytest

from arke_dr_pipeline.dr.plumbing.paths import PathRefused, backup_path


@pytest.fixture
def backups(tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    (folder / "arke-1-x.car").write_bytes(b"car")
    (tmp_path / "outside.car").write_bytes(b"car")
    (folder / "link-out.car").symlink_to(tmp_path / "outside.car")
    (folder / "link-in.car").symlink_to(folder / "arke-1-x.car")
    return folder


def test_paths_inside_are_accepted(backups):
    assert backup_path(backups, "arke-1-x.car") == (backups / "arke-1-x.car").resolve()
    assert backup_path(backups, str(backups / "arke-1-x.car")).name == "arke-1-x.car"
    assert backup_path(backups, "link-in.car").name == "arke-1-x.car"


@pytest.mark.parametrize("path", ["../outside.car", "/etc/hostname", "link-out.car", "sub/../../outside.car", "."])
def test_paths_outside_are_refused(backups, path):
    with pytest.raises(PathRefused):
        backup_path(backups, path)


@pytest.mark.parametrize("path, says", [
    ("arke\0.car", "contains a NUL byte"),
    ("x" * 10_000, "File name too long"),
    ("sub", "is not a regular file"),
])
def test_odd_paths_are_refused_in_one_line(backups, path, says):
    (backups / "sub").mkdir()
    with pytest.raises(PathRefused, match=says) as err:
        backup_path(backups, path)
    assert "\n" not in str(err.value) and len(str(err.value)) < 400
