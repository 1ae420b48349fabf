"""Restore from a CAR alone: the nuclear test, point in time, refusals, interruptions."""

import random
import subprocess
import sys

import pytest

from arke_dr_pipeline.arke.models import SnapshotEntry, tip_path
from arke_dr_pipeline.arke.snapshot_codec import encode_snapshot
from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.restore import whole as restore_mod
from arke_dr_pipeline.dr.restore.whole import Restore, RestoreRefused, SnapshotTips, restore
from arke_dr_pipeline.dr.verify.dagcheck import BackupInvalid, DagCheck
from arke_dr_pipeline.ipld.car import CarReader, car_header, car_section
from arke_dr_pipeline.ipld.cid import RAW, cid_str, make_cid
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.kubo.errors import KuboError
from arke_dr_pipeline.simulate.testdata import GenSpec, generate, seed_scenario
from arke_dr_pipeline.simulate.writer import ArchiveWriter
from arke_dr_pipeline_tests.conftest import make_settings
from arke_dr_pipeline_tests.helpers import backup, dump_digest, logical_dump


def wiped(daemon, settings):
    daemon.wipe()
    from dataclasses import replace

    return KuboClient(daemon.api_url), replace(settings, api_url=daemon.api_url)


@pytest.mark.parametrize("spec, spill", [
    (None, False), (GenSpec(entities=2000, seed=21, image_fraction=0.01, shape="mixed"), False),
    (GenSpec(entities=300, seed=22, image_fraction=0.01, shape="api"), True),
], ids=["seed", "2000-entities-mixed", "300-entities-api-spilled"])
def test_nuclear(fresh_kubo, tmp_path, request, spec, spill):
    if spill:  # the export's and the restore's checks with every CID on disk, as at 10x
        request.getfixturevalue("spilled")
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        if spec is None:
            seed_scenario(client, settings)
        else:
            generate(client, settings, spec)
        car = backup(client, settings)
        before = logical_dump(client, settings)
        expected = dump_digest(client, settings, car)
    if spec is not None:
        assert any(len(h) > 1 for h in before["histories"].values())
    client, settings = wiped(fresh_kubo, settings)
    with client:
        assert client.files_stat("/arke") is None
        result = restore(client, settings, car)
        assert result["restored"] and result["entity_count"] == len(before["tips"])
        assert logical_dump(client, settings) == before
        assert dump_digest(client, settings) == expected
        again = restore(client, settings, car)  # idempotent
        assert again["snapshot_cid"] == result["snapshot_cid"]
        assert logical_dump(client, settings) == before


def test_point_in_time(fresh_kubo, tmp_path):
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        seed_scenario(client, settings)
        build_snapshot(client, settings)
        state1 = logical_dump(client, settings)
        ArchiveWriter(client, settings).run(5)
        car = backup(client, settings)
        state2 = logical_dump(client, settings)
    assert state1 != state2
    client, settings = wiped(fresh_kubo, settings)
    with client:
        restore(client, settings, car, seq=1)
        assert logical_dump(client, settings) == state1
        with pytest.raises(RestoreRefused, match="different archive"):
            restore(client, settings, car)
        restore(client, settings, car, force=True)
        assert logical_dump(client, settings) == state2
        restore(client, settings, car, seq=1, force=True)
        ArchiveWriter(client, settings, seed=8).run(2)
        nxt = build_snapshot(client, settings)  # continues from seq 1, under a seq never used
        assert nxt.incremental and nxt.new_events == 2 and not nxt.pointer_repaired and nxt.seq == 3


def _cli(api, *args):
    return subprocess.run([sys.executable, "-m", "arke_dr_pipeline.cli", "--api", api, "restore", *args],
                          capture_output=True, text=True, timeout=120)


def test_bad_cars_refused_and_mfs_untouched(kubo, client, settings, tmp_path):
    seed_scenario(client, settings)
    car = backup(client, settings)
    data = car.read_bytes()
    with open(car, "rb") as fh:
        reader = CarReader(fh)
        roots, blocks = reader.roots, [(b.cid, b.data) for b in reader]
    bad = {}
    bad["truncated"] = data[: len(data) // 2]
    flipped = bytearray(data)
    flipped[len(data) - 40] ^= 0x04
    bad["flipped"] = bytes(flipped)
    bad["no-snapshot"] = car_header(roots) + b"".join(car_section(c, d) for c, d in blocks[1:])
    mfs_before = client.files_stat("/")["Hash"]
    for name, content in bad.items():
        path = tmp_path / f"{name}.car"
        path.write_bytes(content)
        out = _cli(kubo.api_url, str(path))
        assert out.returncode != 0, name
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
        assert client.files_stat("/")["Hash"] == mfs_before, name
    wrong = "bafyreigdmqpykrgxyaxtlafqpqhzrb7qy2rh75nldvfd4tucqmqqme5yje"
    out = _cli(kubo.api_url, str(car), wrong)
    assert out.returncode != 0 and "snapshot not in the CAR" in out.stderr
    out = _cli(kubo.api_url, str(car), "not-a-cid")
    assert out.returncode != 0 and "not a CID" in out.stderr
    assert client.files_stat("/")["Hash"] == mfs_before


@pytest.mark.parametrize("where, shape", [("mid-import", "api"), ("after-import", "api"), ("mid-import", "seed")])
def test_killed_node_mid_restore_then_rerun_completes(fresh_kubo, tmp_path, monkeypatch, where, shape):
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        generate(client, settings, GenSpec(entities=400, seed=5, image_fraction=0.05, shape=shape))
        car = backup(client, settings)
        before = logical_dump(client, settings)
    client, settings = wiped(fresh_kubo, settings)

    if where == "mid-import":
        real = KuboClient.dag_import

        def dying_import(self, chunks, **kw):
            half = car.stat().st_size // 2

            def dying():
                sent = 0
                for chunk in chunks:
                    if sent >= half:
                        fresh_kubo.kill()
                    sent += len(chunk)
                    yield chunk
            return real(self, dying(), **kw)

        monkeypatch.setattr(KuboClient, "dag_import", dying_import)
    else:
        def dying_install(*a, **kw):
            fresh_kubo.kill()
            return real_install(*a, **kw)

        real_install = restore_mod.install_tips
        monkeypatch.setattr(restore_mod, "install_tips", dying_install)
    with client, pytest.raises(KuboError):
        restore(client, settings, car, wait_timeout=5)
    monkeypatch.undo()
    fresh_kubo.start()
    from dataclasses import replace

    settings = replace(settings, api_url=fresh_kubo.api_url)
    with KuboClient(fresh_kubo.api_url) as client:
        restore(client, settings, car)
        assert logical_dump(client, settings) == before


def test_index_rebuild_is_a_constant_number_of_calls(fresh_kubo, tmp_path):
    counts = {}
    for n in (50, 10_000):
        settings = make_settings(fresh_kubo.api_url, tmp_path / str(n), f"/arke{n}")
        with KuboClient(fresh_kubo.api_url) as client:
            generate(client, settings, GenSpec(entities=n, events=n, seed=n, image_fraction=0.0))
            car = backup(client, settings)
            client.files_rm(settings.index_root)
            client.files_rm(settings.index_pointer_path)
        with KuboClient(fresh_kubo.api_url) as client:
            result = restore(client, settings, car)
            assert result["tips_verified"] == n
            counts[n] = sum(client.calls.values())
    assert counts[10_000] == counts[50] and counts[50] < 40, counts


def test_every_bad_input_leaves_the_node_untouched(kubo, client, settings, tmp_path):
    from arke_dr_pipeline_tests.ipld.test_car_inputs import bad_cars

    seed_scenario(client, settings)
    before = client.files_stat("/")["Hash"]
    pins = client.pin_ls()
    for name, content in bad_cars().items():
        path = tmp_path / f"{name}.car"
        path.write_bytes(content)
        out = _cli(kubo.api_url, str(path), "--force")
        assert out.returncode == 5, name  # backup invalid
        assert out.stderr.startswith("arke-dr: error: backup invalid: ") and out.stderr.count("\n") == 1, out.stderr
        assert client.files_stat("/")["Hash"] == before, name
    assert client.pin_ls() == pins


def test_the_read_back_check_names_a_wrong_and_an_extra_tip_file(fresh_kubo, tmp_path):
    settings = make_settings(fresh_kubo.api_url, tmp_path)
    with KuboClient(fresh_kubo.api_url) as client:
        gen = generate(client, settings, GenSpec(entities=30, seed=23, image_fraction=0.0))
        car = backup(client, settings)
        job = Restore(settings=settings, car_path=car, force=True)
        assert job.run(client)["tips_verified"] == 30
        first, second = sorted(gen.tips)[:2]
        client.files_write(tip_path(first, settings.index_root), gen.tips[second].encode())
        with pytest.raises(BackupInvalid, match=f"tip file of {first} reads '{gen.tips[second]}' after restore"):
            job.verify_restored(client)
        client.files_write(tip_path(first, settings.index_root), gen.tips[first].encode())
        assert job.verify_restored(client)["tips_verified"] == 30
        stray = "01ZZZZZZZZZZZZZZZZZZZZZZZZ"
        client.files_mkdir(tip_path(stray, settings.index_root).rsplit("/", 1)[0], parents=True)
        client.files_write(tip_path(stray, settings.index_root), gen.tips[first].encode())
        with pytest.raises(BackupInvalid, match=f"1 tip files not in the snapshot: \\['{stray}'\\]"):
            job.verify_restored(client)


@pytest.mark.parametrize("spill", [False, True], ids=["in-memory", "spilled"])
def test_a_snapshot_not_sorted_by_pi_restores_its_tips_sorted(request, spill):
    if spill:  # the check's chunks and the sort's runs on disk
        request.getfixturevalue("spilled")
    rng = random.Random(5)
    pis = [f"01{''.join(rng.choices('0123456789ABCDEFGHJKMNPQRSTVWXYZ', k=24))}" for _ in range(2500)]
    ts = "2026-11-30T00:00:00Z"
    entries = [SnapshotEntry(pi, 1, make_cid(RAW, pi.encode()), ts, make_cid(RAW, pi[::-1].encode())) for pi in pis]
    root, blocks = encode_snapshot(seq=1, ts=ts, event_cid=cid_str(entries[0].chain_cid),
                                   prev_snapshot=None, entries=entries)
    check = DagCheck([root])
    for cid, data in blocks:
        check.add(cid, data)
    tips = SnapshotTips(check, root)
    assert not tips.ordered and len(tips) == 2500
    assert list(tips) == sorted((e.pi, cid_str(e.tip_cid)) for e in entries)
    assert list(tips) == list(tips)  # read again for the read-back check
