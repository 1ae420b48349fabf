"""The whole `arke-dr` entry point under hostile input: mutated real CARs,
mutated CARv2 headers, nested and oversized blocks, hostile sidecars, odd
paths and odd numbers. Anything but the project's own one-line error (or a
clean success) is a failure: a traceback, a second line, another exit code.
"""

import json
import os

import cbrrr
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arke_dr_pipeline.cli import main
from arke_dr_pipeline.ipld.car import CARV2_PRAGMA, car_header, car_section
from arke_dr_pipeline.ipld.cid import DAG_CBOR, DAG_JSON, make_cid
from arke_dr_pipeline.simulate.testdata import seed_scenario
from arke_dr_pipeline_tests.conftest import make_settings
from arke_dr_pipeline_tests.ipld.test_car_inputs import VALID, mutate
from arke_dr_pipeline_tests.ipld.test_hostile_cars import api_archive

ROOT, BLOCKS = api_archive()
API_CAR = car_header([ROOT]) + b"".join(car_section(c, d) for c, d in BLOCKS)


def _v2(inner: bytes, offset: int = 51, size: int | None = None) -> bytes:
    fixed = bytearray(40)
    fixed[16:24] = offset.to_bytes(8, "little")
    fixed[24:32] = (len(inner) if size is None else size).to_bytes(8, "little")
    return CARV2_PRAGMA + bytes(fixed) + inner


def _one_block(codec: int, data: bytes) -> bytes:
    cid = make_cid(codec, data)
    return car_header([cid]) + car_section(cid, data)


BASES = {
    "seed-shape": VALID,
    "api-shape": API_CAR,
    "carv2": _v2(API_CAR),
    "deep-cbor": _one_block(DAG_CBOR, b"\x81" * 200_000 + b"\x00"),
    "deep-json": _one_block(DAG_JSON, b"[" * 3000 + b"]" * 3000),
    "wide-cbor": _one_block(DAG_CBOR, cbrrr.encode_dag_cbor([[0]] * 300_000)),
}
SIDECARS = [None, b"{}", b"[1]", b"null", b"\"x\"", b"{" * 50_000, b"\xff\xfe", json.dumps(
    {"snapshot_cid": "bafy-not-a-cid", "block_count": "many", "sha256": 7}).encode()]

cases = st.fixed_dictionaries({
    "base": st.sampled_from(sorted(BASES)),
    "edits": st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1 << 20), st.integers(0, 255)), max_size=4),
    "v2_header": st.none() | st.tuples(st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 64) - 1)),
    "sidecar": st.sampled_from(range(len(SIDECARS))),
    "path": st.sampled_from(["file", "file", "file", "dir", "fifo", "nul", "long", "missing"]),  # files mostly
    "command": st.sampled_from(["verify-car", "restore"]),
    "extra": st.sampled_from([("any", []), ("any", ["--seq", "1"]), ("any", ["--seq", "-5"]),
                              ("verify-car", ["--snapshot", "bafynotacid"]), ("global", ["--timeout", "0"]),
                              ("global", ["--timeout", "inf"]), ("global", ["--timeout", "nan"]),
                              ("restore", ["--wait-timeout", "-1"])]),
})


def _path(workdir, kind: str, data: bytes, sidecar: bytes | None) -> str:
    car = workdir / "backup.car"
    for p in (car, workdir / "backup.json"):
        if p.exists() or p.is_symlink():
            p.unlink()
    if kind == "dir":
        return str(workdir)
    if kind == "fifo":
        fifo = workdir / "pipe.car"
        if not fifo.exists():
            os.mkfifo(fifo)
        return str(fifo)
    if kind == "nul":
        return str(car) + "\0x"
    if kind == "long":
        return str(workdir / ("x" * 10_000))
    if kind == "missing":
        return str(workdir / "nowhere.car")
    car.write_bytes(data)
    if sidecar is not None:
        (workdir / "backup.json").write_bytes(sidecar)
    return str(car)


def run_case(workdir, api: str, case: dict) -> None:
    data = mutate(BASES[case["base"]], case["edits"])
    if case["v2_header"] is not None:
        data = _v2(data, *case["v2_header"])
    path = _path(workdir, case["path"], data, SIDECARS[case["sidecar"]])
    scope, extra = case["extra"]
    command = case["command"]
    before = extra if scope == "global" else []
    after = extra if scope in ("any", command) else []
    if command == "verify-car":
        args = [*before, "verify-car", path, *after]
    else:
        args = ["--api", api, *before, "restore", path, "--wait-timeout", "5", *after]
    env = {"ARKE_PROGRESS": "0", "SNAPSHOTS_DIR": str(workdir / "snapshots"), "BACKUPS_DIR": str(workdir)}
    result = CliRunner(mix_stderr=False).invoke(main, args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args, repr(result.exception), result.stderr[-500:])
    if result.exit_code == 0:
        return
    assert result.exit_code in (1, 2, 4, 5, 6), (args, result.exit_code, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("arke-dr: error: "), (args, result.stderr[-800:])


@pytest.fixture(scope="module")
def refusing_node(kubo, tmp_path_factory):
    """A node holding another archive at the default paths: a valid CAR is refused without --force."""
    from arke_dr_pipeline.kubo.client import KuboClient

    settings = make_settings(kubo.api_url, tmp_path_factory.mktemp("other"))
    with KuboClient(kubo.api_url) as client:
        seed_scenario(client, settings)
    return kubo.api_url


def _fuzz(tmp_path_factory, api, case):
    workdir = tmp_path_factory.getbasetemp() / "cli-fuzz"
    workdir.mkdir(exist_ok=True)
    run_case(workdir, api, case)


PATHS = ["file", "dir", "fifo", "nul", "long", "missing"]


@pytest.mark.parametrize("command", ["verify-car", "restore"])
@pytest.mark.parametrize("sidecar", range(len(SIDECARS)))
@pytest.mark.parametrize("path", PATHS)
def test_every_path_and_sidecar(tmp_path_factory, refusing_node, command, sidecar, path):
    """The structural choices, each once (the fuzz below draws them unevenly), on every base."""
    for n, base in enumerate(sorted(BASES)):
        _fuzz(tmp_path_factory, refusing_node, {
            "base": base, "edits": [], "v2_header": None, "sidecar": sidecar, "path": path,
            "command": command, "extra": [("any", []), ("any", ["--seq", "1"])][n % 2]})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases)
def test_fuzz_cli_short(tmp_path_factory, refusing_node, case):
    _fuzz(tmp_path_factory, refusing_node, case)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases)
def test_fuzz_cli_full(tmp_path_factory, refusing_node, case):
    _fuzz(tmp_path_factory, refusing_node, case)


@pytest.mark.parametrize("args, says", [
    (["--timeout", "0", "doctor"], "--timeout must be a positive number of seconds"),
    (["--timeout", "inf", "doctor"], "--timeout must be a positive number of seconds"),
])
def test_odd_numbers_are_named(args, says):
    result = CliRunner(mix_stderr=False).invoke(main, args)
    assert result.exit_code == 2 and result.stderr == f"arke-dr: error: {says}\n"


def test_a_valid_car_against_another_archive_says_force(tmp_path, refusing_node):
    car = tmp_path / "ok.car"
    car.write_bytes(API_CAR)
    result = CliRunner(mix_stderr=False).invoke(main, ["--api", refusing_node, "restore", str(car)],
                                                env={"ARKE_PROGRESS": "0"})
    assert result.exit_code == 6 and "pass --force" in result.stderr and result.stderr.count("\n") == 1
