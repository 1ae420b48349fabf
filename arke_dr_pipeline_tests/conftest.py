"""A real Kubo daemon for the tests: never a fake of its API.

`kubo` is one node per test module; tests that share it keep their archives
apart by giving each its own MFS prefix (`archive` below), so that one
daemon serves a whole module. `fresh_kubo` is a node of the test's own, for
the tests that wipe it or kill it.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest

from arke_dr_pipeline.dr.plumbing.config import Settings
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.kubo.daemon import KuboDaemon

_prefixes = itertools.count(1)


@pytest.fixture(scope="module")
def kubo(tmp_path_factory):
    daemon = KuboDaemon(tmp_path_factory.mktemp("ipfs"))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def fresh_kubo(tmp_path):
    daemon = KuboDaemon(tmp_path / "ipfs")
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def client(kubo):
    with KuboClient(kubo.api_url, timeout=30) as c:
        yield c


def make_settings(api_url: str, root: Path, prefix: str = "/arke") -> Settings:
    return replace(
        Settings(), api_url=api_url, snapshots_dir=root / "snapshots",
        backups_dir=root / "backups", index_pointer_path=f"{prefix}/index-pointer",
    )


@pytest.fixture
def settings(kubo, tmp_path) -> Settings:
    """Settings for an archive of this test's own under a unique MFS prefix."""
    return make_settings(kubo.api_url, tmp_path, f"/arke-t{next(_prefixes)}")


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("ARKE_PROGRESS", "0")


@pytest.fixture
def spilled(monkeypatch):
    """Every set, map, queue and sorted run of CIDs on disk from its second entry: the 10x path, on a small
    archive."""
    from arke_dr_pipeline.dr.plumbing import spill

    for name in ("CID_LIMIT", "FACT_LIMIT", "LINK_LIMIT", "CHUNK_LIMIT", "LINE_LIMIT", "QUEUE_LIMIT"):
        monkeypatch.setattr(spill, name, 1)
    return spill
