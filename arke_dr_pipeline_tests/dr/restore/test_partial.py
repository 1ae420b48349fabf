"""`arke-dr restore CAR --pi PI [--tips]`: chosen entities back into a live archive, the rest untouched."""

import json
import os
import subprocess
import sys

from arke_dr_pipeline.dr.archive.pointer import require_pointer
from arke_dr_pipeline.dr.archive.tips import read_tips
from arke_dr_pipeline.ipld.cid import cid_str, parse_cid
from arke_dr_pipeline.ipld.links import dag_cbor_links
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline.simulate.writer import ArchiveWriter
from arke_dr_pipeline_tests.conftest import make_settings
from arke_dr_pipeline_tests.helpers import backup


def arke_dr(*args, env):
    return subprocess.run([sys.executable, "-m", "arke_dr_pipeline.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_one_entity_comes_back_with_its_components_and_nothing_else_moves(fresh_kubo, tmp_path):
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    env = {**os.environ, "IPFS_API_URL": fresh_kubo.api_url, "INDEX_POINTER_PATH": settings.index_pointer_path,
           "SNAPSHOTS_DIR": str(settings.snapshots_dir), "BACKUPS_DIR": str(settings.backups_dir),
           "ARKE_PROGRESS": "0"}
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=40, events=80, seed=51, image_fraction=0.3,
                                           image_min=2_000, image_max=3_000, shape="api"))
        car = backup(client, settings)
        saved = read_tips(client, settings.index_root, exact=True)
        writer = ArchiveWriter(client, settings, seed=8)
        pi = sorted(saved)[3]
        writer.write_batch([writer.new_version(pi), writer.new_version(sorted(saved)[5])])  # the archive moves on
        writer.run(20)
        later = read_tips(client, settings.index_root, exact=True)
        pointer = require_pointer(client, settings.index_pointer_path).raw
        assert later[pi] != saved[pi]
        components = [cid_str(c.cid_bytes) for c in
                      dag_cbor_links(client.block_get(parse_cid(saved[pi].strip())))[0]["components"].values()]
        for pinned in client.pin_ls():
            client.request("pin/rm", pinned)
        for cid in components:  # the entity's components lost as well
            client.request("block/rm", cid)
    out = arke_dr("--json", "restore", str(car), "--pi", pi, "--tips", env=env)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["entities"][pi]["tip_written"] and doc["blocks_imported"] >= 1
    with KuboClient(fresh_kubo.api_url) as client:
        client.repo_gc()  # the partial cover keeps what came back
        now = read_tips(client, settings.index_root, exact=True)
        assert now[pi] == saved[pi]
        assert {p: t for p, t in now.items() if p != pi} == {p: t for p, t in later.items() if p != pi}
        assert require_pointer(client, settings.index_pointer_path).raw == pointer
        for cid in components:
            assert client.block_get(cid)
    unknown = arke_dr("restore", str(car), "--pi", "01ZZZZZZZZZZZZZZZZZZZZZZZZ", env=env)
    assert unknown.returncode == 2 and "is not in the snapshot" in unknown.stderr
