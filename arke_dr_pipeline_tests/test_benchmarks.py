"""The benchmark entry point at small scale: every figure produced, every restore verified.

Times are recorded, never asserted: targets are for `python -m benchmarks` at full scale.
"""

import json

from benchmarks.__main__ import main


def test_small_benchmark_run_produces_every_figure(tmp_path, capsys):
    out = tmp_path / "results.json"
    assert main(["run", "--entities", "120", "--events", "300", "--chain-events", "2000", "--large-mb", "8",
                 "--small-blocks", "5000", "--image-fraction", "0.02", "--workdir", str(tmp_path / "work"),
                 "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    for section in ("snapshot", "export", "restore", "verify", "memory"):
        assert results[section], section
        for key, value in results[section].items():
            assert value is not None or key in ("bare_dag_export_same_root_stopped_after_s",), (section, key)
    assert results["snapshot"]["entries_match_baseline"] is True
    assert results["restore"]["restored_archive_verified"] is True
    export = results["export"]
    assert export["bare_dag_export_same_root_completed"] is True
    # the flat root lists exactly our CAR's blocks: Kubo's export of it is our CAR plus the lists
    assert export["blocks_listed_under_flat_root"] == export["car_blocks"] > results["generate"]["blocks"]
    assert export["bare_dag_export_same_blocks_car_bytes"] > export["car_bytes"]
    assert len(results["restore"]["samples"]["ours_restore_s"]) == 2
    assert set(results["per_block_us"]) == {"export", "verify", "restore"}
    assert len(results["targets"]) == 10 and all(t["measured"] is not None for t in results["targets"])
    assert {"cores", "memory_mb", "python", "kubo"} <= set(results["machine"])
    assert "targets:" in capsys.readouterr().out
    assert (tmp_path / "results.txt").exists()


def test_a_run_of_some_phases_measures_only_those(tmp_path):
    out = tmp_path / "results.json"
    assert main(["run", "--entities", "60", "--events", "150", "--chain-events", "0", "--large-mb", "4",
                 "--small-blocks", "2000", "--phases", "export,verify", "--workdir", str(tmp_path / "work"),
                 "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert "snapshot" not in results and "restore" not in results
    assert results["export"]["car_blocks"] > 0 and results["verify"]["archive_car_verify_s"] > 0
    measured = {t["target"].split(" ")[0]: t["measured"] for t in results["targets"]}
    assert measured["export"] is not None and measured["restore"] is None
    assert set(results["per_block_us"]) == {"export", "verify"}


def test_linear_compares_the_cost_of_a_block_at_both_sizes(tmp_path, capsys):
    from benchmarks.linear import main as linear

    small, large = tmp_path / "30k.json", tmp_path / "10x.json"
    small.write_text(json.dumps({"per_block_us": {"export": 200.0, "verify": 20.0, "restore": 100.0}}))
    large.write_text(json.dumps({"export-car": {"us_per_block": 250.0}, "verify-car": {"us_per_block": 60.0}}))
    assert linear([str(small), str(large)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2  # the 10x run has no restore: left out, not guessed
    assert lines[0].startswith("met") and "1.25x" in lines[0]
    assert lines[1].startswith("MISSED") and "3.0x" in lines[1]
    large.write_text("{}")
    assert linear([str(small), str(large)]) == 2
    assert "no operation" in capsys.readouterr().err


def test_decoders_times_every_step_of_a_verified_block(tmp_path, capsys):
    import cbrrr

    from arke_dr_pipeline.ipld.car import CarWriter
    from arke_dr_pipeline.ipld.cid import DAG_CBOR, RAW, make_cid
    from benchmarks.decoders import main as decoders

    leaves = [(make_cid(RAW, bytes([i]) * 100), bytes([i]) * 100) for i in range(20)]
    data = cbrrr.encode_dag_cbor({"schema": "x", "parts": [cbrrr.CID(c) for c, _ in leaves]})
    root = make_cid(DAG_CBOR, data)
    car = tmp_path / "small.car"
    with CarWriter(car, [root]) as writer:
        for cid, block in [(root, data), *leaves]:
            writer.add(cid, block)
    out = tmp_path / "decoders.json"
    assert decoders([str(car), "--every", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert (result["car_blocks"], result["sample_blocks"], result["sample_dag_cbor_blocks"]) == (21, 21, 1)
    steps = [k for k in result if k.endswith(("_per_block", "_per_cbor_block"))]
    assert len(steps) == 6 and all(result[k] > 0 for k in steps)
    assert json.loads(capsys.readouterr().out) == result


def test_alternate_takes_two_checkouts_in_turns_and_stops_on_a_failed_run(tmp_path, capsys):
    from pathlib import Path

    import pytest

    from benchmarks.alternate import main as alternate

    here = str(Path(__file__).resolve().parent.parent)  # this checkout as its own "before"
    out = tmp_path / "alternate.json"
    assert alternate(["--before", here, "--rounds", "2", "--out", str(out), "--", "--help"]) == 0
    result = json.loads(out.read_text())
    assert [len(result["runs"][k]) for k in ("before", "after")] == [2, 2]
    assert all(r["seconds"] > 0 and r["peak_rss_mb"] > 0 for k in ("before", "after") for r in result["runs"][k])
    assert result["after_over_before"] > 0
    with pytest.raises(SystemExit, match="verify-car .* failed"):
        alternate(["--before", here, "--rounds", "1", "--out", str(out), "--", "verify-car",
                   str(tmp_path / "missing.car")])
