"""`arke-dr`: every operation from a shell, with Dagster gone entirely."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import replace
from functools import wraps

import click

from . import __version__
from .dr.config import Settings
from .dr.dagcheck import BackupInvalid
from .errors import ArkeDrError
from .kubo.client import KuboClient, normalize_api
from .kubo.errors import KuboError


def _json_mode() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and getattr(ctx.find_root().obj, "json", False))


def _fields(exc: BaseException | None) -> dict:
    """The facts an error names, as keys: scripts and Dagster read them without parsing the line."""
    out: dict = {}
    for attr, key in (("cid", "cid"), ("problem", "problem"), ("call", "call"), ("arg", "arg")):
        value = getattr(exc, attr, None)
        if isinstance(value, str | int):
            out[key] = value
    if isinstance(exc, OSError) and exc.filename:
        out["file"] = str(exc.filename)
    return out


def _fail(msg: str, code: int = 1, exc: BaseException | None = None):
    """The one error line on stderr; with --json, also the error as the one document on stdout
    (unless the command already wrote its result, as `export-car` does before exit 8)."""
    line = " ".join(str(msg).split())
    ctx = click.get_current_context(silent=True)
    if _json_mode() and not getattr(ctx.find_root().obj, "emitted", False):
        _out({"error": {"class": type(exc).__name__ if exc else "Error", "message": line, "exit": code,
                        **_fields(exc)}})
    click.echo(f"arke-dr: error: {line}", err=True)
    sys.exit(code)


def _emit(doc: dict, text: str | None = None) -> None:
    """A command's result: the JSON document with --json, else its text (the document when it has none)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().obj is not None:
        ctx.find_root().obj.emitted = True
    if _json_mode() or text is None:
        _out(doc)
    elif text:
        click.echo(text)


# Exit codes by class, for scripts (README: "Exit codes"): 1 any other failure, 2 bad input,
# 3 another operation holds the archive, 4 node unreachable, 5 backup invalid, 6 restore
# refused, 7 offsite error, 8 backup made without blocks the node lost, 130 interrupted.
EXIT_CODES = (("BadInput", 2), ("PathRefused", 2), ("LockBusy", 3), ("KuboUnreachable", 4),
              ("BackupInvalid", 5), ("NewerFormat", 5), ("RestoreRefused", 6), ("OffsiteError", 7),
              ("LossRefused", 2))


def exit_code(exc: BaseException) -> int:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return next((code for name, code in EXIT_CODES if name in names), 1)


def operation(fn):
    """One clear line and a non-zero exit, by class, for every failure we know of."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BackupInvalid as exc:
            _fail(f"backup invalid: {exc}", exit_code(exc), exc)
        except ArkeDrError as exc:
            _fail(str(exc), exit_code(exc), exc)
        except OSError as exc:  # a local file: disk full, permissions; the path is in the message
            _fail(f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}", 1, exc)
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return wrapper


def seconds_ok(value: float) -> bool:
    """A timeout a socket takes: positive and finite (0 would make every call "unreachable")."""
    return 0 < value <= 7 * 86400 and math.isfinite(value)


def _out(obj) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True))


class Ctx:
    """The environment's settings (read once), overridden by the global options."""

    def __init__(self, api: str | None, timeout: float | None, transport: str | None, as_json: bool = False):
        self.json = as_json
        self.emitted = False
        env = Settings.from_env()
        self.settings = replace(env, api_url=api or env.api_url, timeout=env.timeout if timeout is None else timeout,
                                transport=transport or env.transport)
        normalize_api(self.settings.api_url)

    @property
    def transport(self) -> str:
        return self.settings.transport

    def client(self, **kw) -> KuboClient:
        kw.setdefault("timeout", self.settings.timeout)
        return KuboClient(self.settings.api_url, long_timeout=self.settings.export_timeout, **kw)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="arke-dr")
@click.option("--api", default=None, show_default="IPFS_API_URL, IPFS_API, http://localhost:5001/api/v0",
              help="Kubo RPC URL.")
@click.option("--timeout", type=float, default=None,
              show_default="ARKE_RPC_TIMEOUT, 30", help="Seconds per RPC call.")
@click.option("--transport", type=click.Choice(["http", "docker"]), default=None, show_default="ARKE_TRANSPORT, http",
              help="How CARs reach the node: HTTP, or `ipfs` inside CONTAINER_NAME via docker exec.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON document on stdout: the result, or {\"error\": {class, message, exit, ...}}.")
@click.pass_context
def main(ctx, api: str | None, timeout: float | None, transport: str | None, as_json: bool):
    """Disaster recovery for the Arke IPFS archive."""
    ctx.obj = type("Early", (), {"json": as_json, "emitted": False})()
    if timeout is not None and not seconds_ok(timeout):
        _fail("--timeout must be a positive number of seconds", 2)
    try:
        ctx.obj = Ctx(api, timeout, transport, as_json)
    except ArkeDrError as exc:
        _fail(str(exc), 2, exc)


@main.command()
@click.pass_obj
@operation
def doctor(obj: Ctx):
    """Check the node: print its ID and Kubo version."""
    with obj.client(retries=0, timeout=min(obj.settings.timeout, 8.0)) as client:
        ident = client.id()
        version = client.version()
        if "Version" not in version or "ID" not in ident:
            raise KuboError("version", None, f"the server at {obj.settings.api_url} is not Kubo")
    _emit({"node": ident["ID"], "kubo": version["Version"], "system": version.get("System"),
           "golang": version.get("Golang"), "api": obj.settings.api_url},
          f"node {ident['ID']}\nkubo {version['Version']} ({version.get('System', '?')}, {version.get('Golang', '?')})"
          f"\napi  {obj.settings.api_url}")


@main.command()
@click.pass_obj
@operation
def status(obj: Ctx):
    """The archive on the node: pointer fields and the number of tip files, as JSON."""
    from .dr.pointer import read_pointer
    from .dr.tips import iter_tips

    with obj.client() as client:
        pointer = read_pointer(client, obj.settings.index_pointer_path)
        tips = iter_tips(client, obj.settings.index_root) if pointer else None
        tip_files = sum(1 for _ in tips or ())
    if pointer is None:
        _emit({"archive": False})
        return
    fields = ("event_head", "event_count", "total_count", "latest_snapshot_cid", "snapshot_seq")
    _emit({"archive": True, **{k: pointer.raw.get(k) for k in fields}, "tip_files": tip_files})


@main.command("gen-test-data")
@click.option("--entities", type=int, default=0, help="0: the seed's scenario (A, B, C; six events).")
@click.option("--events", type=int, default=None, help="Total events (default: 1-3 versions, long tail).")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--image-fraction", type=float, default=0.05, show_default=True,
              help="Share of versions that add a multi-block image.")
@click.option("--image-size", type=(int, int), default=(300_000, 700_000), show_default=True)
@click.option("--shape", type=click.Choice(["api", "seed", "mixed"]), default="api", show_default=True,
              help="api: as the Arke API writes (dag-cbor, plain-map links); seed: as the seed's generator; "
                   "mixed: begun by the seed, grown by the API.")
@click.pass_obj
@operation
def gen_test_data(obj: Ctx, entities, events, seed, image_fraction, image_size, shape):
    """Fill an empty node with an archive to test on."""
    from .simulate.testdata import GenSpec, generate, seed_scenario

    with obj.client() as client:
        if entities == 0:
            result = seed_scenario(client, obj.settings, shape)
        else:
            spec = GenSpec(entities=entities, events=events, seed=seed, image_fraction=image_fraction,
                           image_min=image_size[0], image_max=image_size[1], shape=shape)
            result = generate(client, obj.settings, spec)
    _emit({**result.summary(), "shape": shape})


@main.command("simulate-writes")
@click.option("--events", type=click.IntRange(min=1), required=True, help="Events to append.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Events per second (default: as fast as the node takes them, in batches of 50).")
@click.option("--update-share", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of events that update an entity written in this run rather than create one.")
@click.option("--shape", type=click.Choice(["api", "seed"]), default="api", show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.pass_obj
@operation
def simulate_writes(obj: Ctx, events, rate, update_share, shape, seed):
    """Append events to an existing archive exactly as the Arke API does."""
    from .simulate.writer import ArchiveWriter

    with obj.client() as client:
        writer = ArchiveWriter(client, obj.settings, seed=seed, shape=shape)
        appended = writer.run(events, rate=rate, update_share=update_share, show_progress=True)
    _emit({"appended": len(appended), "event_head": writer.head, "shape": shape})


@main.command("build-snapshot")
@click.option("--wait", is_flag=True, help="Wait for a running build instead of failing.")
@click.option("--trigger", default="manual", show_default=True)
@click.option("--full", is_flag=True, help="Walk the whole event chain, not only the events since the last snapshot.")
@click.pass_obj
@operation
def build_snapshot_cmd(obj: Ctx, wait, trigger, full):
    """Snapshot the newest version of every entity; prints the snapshot CID."""
    from .dr.snapshot import build_snapshot

    with obj.client() as client:
        result = build_snapshot(client, obj.settings, wait=wait, trigger=trigger, full=full)
    _emit(dataclasses.asdict(result), result.snapshot_cid)


@main.command("export-car")
@click.argument("snapshot_cid", required=False)
@click.option("--full", is_flag=True, help="A full CAR even when a delta of the newest backup would do.")
@click.pass_obj
@operation
def export_car_cmd(obj: Ctx, snapshot_cid, full):
    """Inventory, pin and export a snapshot (default: the newest); prints the CAR path.

    With ARKE_OFFSITE_URL set, the CAR then goes offsite (verified) too."""
    from .dr.backup import backup
    from .dr.pointer import current_snapshot

    with obj.client() as client:
        result = backup(client, obj.settings, snapshot_cid or current_snapshot(client, obj.settings), full=full)
    if result.inventory.removed:
        click.echo(f"warning: {result.inventory.removed} CIDs of the previous inventory are gone", err=True)
    if obj.settings.offsite_url:
        from .dr.offsite import OffsiteTarget, S3Config, upload_backup

        offsite = upload_backup(S3Config.from_env(), OffsiteTarget.parse(obj.settings.offsite_url),
                                result.car.car_path, verified=True)  # the export verified it as it wrote it
    car = result.car
    _emit({"car": car.car_path, "sidecar": car.sidecar_path, "snapshot_cid": car.snapshot_cid, "seq": car.seq,
           "kind": car.kind, "full_reason": car.full_reason, "unchanged": car.unchanged, "size": car.size,
           "sha256": car.sha256, "blocks": car.block_count, "entities": car.entity_count, "events": car.event_count,
           "lost": car.lost, "seconds": round(car.seconds, 3),
           "offsite": dataclasses.asdict(offsite) if obj.settings.offsite_url else None}, car.car_path)
    _fail_on_loss(result.car.lost)


LOSS_EXIT = 8


def _fail_on_loss(lost: list[dict]) -> None:
    """The backup stands and holds the rest; the exit says the archive is damaged until repaired or acknowledged."""
    from .dr.loss import summary, unacknowledged

    open_loss = unacknowledged(lost)
    if open_loss:
        _fail(f"backup made without {summary(open_loss)}; put the blocks back on the node, or accept the loss "
              "with `arke-dr acknowledge-loss CID...`", LOSS_EXIT)
    if lost:
        click.echo(f"warning: {len(lost)} acknowledged lost block(s) stay missing", err=True)


@main.command("repair")
@click.argument("snapshot_cid", required=False)
@click.pass_obj
@operation
def repair_cmd(obj: Ctx, snapshot_cid):
    """Put back the blocks the node lost (default: of the newest snapshot) from the backups that hold them."""
    from .dr.backup import backup_lock
    from .dr.repair import repair

    with obj.client() as client, backup_lock(obj.settings):
        result = repair(client, obj.settings, snapshot_cid)
    _emit(dataclasses.asdict(result),
          f"{len(result.lost)} lost, {len(result.repaired)} repaired, {len(result.still_missing)} still missing")
    if result.still_missing:
        _fail(f"{len(result.still_missing)} lost block(s) are in no listed backup: {result.still_missing[0]}"
              + (f" and {len(result.still_missing) - 1} more" if len(result.still_missing) > 1 else ""), 1)


@main.command("acknowledge-loss")
@click.argument("cids", nargs=-1, required=True)
@click.option("--note", default="", help="Why the loss is accepted (kept with it).")
@click.pass_obj
@operation
def acknowledge_loss_cmd(obj: Ctx, cids, note):
    """Accept blocks the newest backup names as lost: later backups then exit 0 (the sidecars still name them)."""
    from .dr.freshness import newest_backup
    from .dr.loss import acknowledge

    newest = newest_backup(obj.settings.backups_dir)
    lost = newest[1].get("lost", []) if newest else []
    if not lost:
        _fail("the newest backup names no lost block; nothing to acknowledge", 2)
    done = acknowledge(obj.settings.snapshots_dir, lost, cids, note)
    record = obj.settings.snapshots_dir / "acknowledged-loss.json"
    _emit({"acknowledged": done, "record": str(record)}, f"acknowledged {len(done)} lost block(s) in {record}")


@main.command("verify-snapshot")
@click.argument("snapshot_cid", required=False)
@click.pass_obj
@operation
def verify_snapshot_cmd(obj: Ctx, snapshot_cid):
    """Check a snapshot (default: the latest): no duplicate PIs, valid CIDs, size."""
    from .dr.criteria import verify_snapshot

    with obj.client() as client:
        report = verify_snapshot(client, obj.settings.index_pointer_path, snapshot_cid)
    _emit(report)
    if not report["ok"]:
        failed = [k for k, v in report["checks"].items() if not v]
        _fail(f"snapshot {report['snapshot_cid']} fails: {', '.join(failed)}")


@main.command("ls")
@click.argument("car")
@click.option("--seq", type=int, default=None, help="List the snapshot with this seq instead, found through "
                                                   "prev_snapshot.")
@click.pass_obj
@operation
def ls_cmd(obj: Ctx, car, seq):
    """The entities a backup holds (PI, version, time, tip), offline, from a CAR (its chain for a delta)
    or s3://BUCKET/KEY.car; verified first, so what it lists is what a restore gives."""
    from .dr.fetch import discard, fetch
    from .dr.verify import verify_car
    from .ipld.cid import cid_str, parse_cid

    staged = None
    if car.startswith("s3://"):
        from .dr.offsite import S3Config

        car = staged = fetch(S3Config.from_env(), car, obj.settings.backups_dir)
    try:
        report, check = verify_car(car, seq=seq)
        if seq is not None:
            snapshot = check.snapshot_by_seq(parse_cid(report.snapshot_cid), seq)
            header = check.snapshots[snapshot]
            snapshot_cid, snap_seq = cid_str(snapshot), header.seq
        else:
            snapshot, snapshot_cid, snap_seq = parse_cid(report.snapshot_cid), report.snapshot_cid, report.seq
        entries = sorted(check.iter_entries(snapshot), key=lambda e: e.pi)
    finally:
        if staged is not None:
            discard(staged)
    rows = [{"pi": e.pi, "ver": e.ver, "ts": e.ts, "tip_cid": cid_str(e.tip_cid)} for e in entries]
    _emit({"snapshot_cid": snapshot_cid, "seq": snap_seq, "entity_count": len(rows), "entities": rows},
          "\n".join(f"{r['pi']}\t{r['ver']}\t{r['ts']}\t{r['tip_cid']}" for r in rows))


@main.command("verify-car")
@click.argument("car")
@click.option("--snapshot", "snapshot_cid", default=None, help="Snapshot CID (default: the root).")
@click.option("--seq", type=int, default=None, help="Check the snapshot with this seq instead.")
@operation
def verify_car_cmd(car, snapshot_cid, seq):
    """Verify a CAR offline: every block, every link, the whole archive."""
    from .dr.verify import verify_car

    report, _ = verify_car(car, snapshot_cid=snapshot_cid, seq=seq)
    _emit(report.to_dict())
    if report.lost:
        from .dr.loss import summary

        click.echo(f"warning: taken {summary(report.lost)} (its sidecar names them)", err=True)


@main.command()
@click.argument("car")
@click.argument("snapshot_cid", required=False)
@click.option("--seq", type=int, default=None, help="Restore an older snapshot (point in time).")
@click.option("--force", is_flag=True, help="Replace a different archive already on the node.")
@click.option("--wait-timeout", type=float, default=60.0, show_default=True)
@click.pass_obj
@operation
def restore(obj: Ctx, car, snapshot_cid, seq, force, wait_timeout):
    """Rebuild the archive on a node from one CAR (a path, or s3://BUCKET/KEY.car)."""
    from .dr.restore import restore as do_restore

    if not seconds_ok(wait_timeout):
        _fail("--wait-timeout must be a positive number of seconds", 2)
    from .dr.fetch import discard, fetch, is_staged, promote

    if car.startswith("s3://"):
        from .dr.offsite import S3Config

        car = fetch(S3Config.from_env(), car, obj.settings.backups_dir)
    try:
        with obj.client() as client:
            transport = None
            if obj.transport == "docker":
                from .kubo.transport import make_transport

                transport = make_transport("docker", client, obj.settings.container_name)
            result = do_restore(client, obj.settings, car, snapshot_cid=snapshot_cid, seq=seq,
                                force=force, wait_timeout=wait_timeout, transport=transport)
    except BaseException:
        discard(car)
        raise
    if is_staged(car):
        result["car"] = str(promote(car, obj.settings.backups_dir))
    _emit(result)


@main.command("dump")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="File to write (default: stdout).")
@click.option("--at-snapshot", "at_snapshot", default=None,
              help="Describe the archive a restore of this snapshot must give, from the chain as of it.")
@click.pass_obj
@operation
def dump_cmd(obj: Ctx, out, at_snapshot):
    """A canonical, sorted description of the archive on the node, with its digest."""
    import shutil
    import tempfile
    from pathlib import Path

    from .dr.dump import dump

    with obj.client() as client:
        if out:
            result = dump(client, obj.settings, Path(out), at_snapshot=at_snapshot)
            click.echo(f"{result.path}: {result.lines} lines, sha256 {result.sha256}", err=True)
            if _json_mode():
                _emit({"path": result.path, "lines": result.lines, "sha256": result.sha256})
            return
        if _json_mode():
            _fail("dump --json needs --out FILE: without it, the dump itself is what goes to stdout", 2)
        with tempfile.TemporaryDirectory() as tmp:
            result = dump(client, obj.settings, Path(tmp) / "dump", at_snapshot=at_snapshot)
            with open(result.path, "rb") as fh:
                shutil.copyfileobj(fh, sys.stdout.buffer)


@main.command("diff")
@click.argument("a", type=click.Path(exists=True, dir_okay=False))
@click.argument("b", type=click.Path(exists=True, dir_okay=False))
@click.option("--limit", type=click.IntRange(1, 10_000), default=10, show_default=True)
@operation
def diff_cmd(a, b, limit):
    """The first differences between two dumps; exit 1 if there are any."""
    from pathlib import Path

    from .dr.dump import diff

    found = diff(Path(a), Path(b), limit=limit)
    _emit({"equal": not found, "differences": found}, "\n".join(found) if found else "")
    if found:
        sys.exit(1)


@main.command("prove")
@click.argument("car")
@click.option("--since", "since", default=None, metavar="OLDER_CAR",
              help="A consistency proof: OLDER_CAR's log is a prefix of CAR's.")
@click.option("--cid", default=None, help="An inclusion proof: this CID is in CAR's log.")
@operation
def prove_cmd(car, since, cid):
    """A proof from the backups' append-only log, as JSON on stdout."""
    from .dr.prove import prove_consistency, prove_inclusion

    if (since is None) == (cid is None):
        _fail("give --since OLDER_CAR (consistency) or --cid CID (inclusion), one of the two", 2)
    _emit(prove_consistency(since, car) if since else prove_inclusion(cid, car))


@main.command("verify-proof")
@click.argument("proof", type=click.File("rb"))
@click.option("--old-root", default=None, help="The older root you hold (consistency).")
@click.option("--new-root", default=None, help="The newer root you hold (consistency).")
@click.option("--root", default=None, help="The root you hold (inclusion).")
@operation
def verify_proof_cmd(proof, old_root, new_root, root):
    """Check a proof offline, with only the roots; exit 5 if it does not hold."""
    from .dr.prove import verify_proof
    from .dr.translog import ProofError

    try:
        doc = json.loads(proof.read())
    except ValueError:
        _fail(f"{proof.name}: not JSON", 5)
    try:
        _emit(verify_proof(doc, old_root=old_root, new_root=new_root, root=root))
    except ProofError as exc:
        _fail(f"proof does not hold: {exc}", 5)


@main.command("drill")
@click.pass_obj
@operation
def drill_cmd(obj: Ctx):
    """Restore the newest backup onto a scratch node and compare it with the node; exit 1 if it differs."""
    from .dr.drill import drill
    from .dr.offsite import S3Config

    with obj.client() as client:
        result = drill(client, obj.settings, s3=S3Config.from_env() if obj.settings.offsite_url else None)
    _emit({"backup": result.backup, "restores": result.ok, "differences": result.differences,
          "rto_seconds": round(result.rto_seconds, 2), "phases": result.phases, "seq": result.seq,
          "bytes": result.bytes, "blocks": result.blocks, "entities": result.entities,
          "rpo_hours": round(result.backup_age_seconds / 3600, 2), "rpo_events": result.events_not_in_backup})
    if not result.ok:
        _fail(f"the newest backup does not restore as it should: {result.differences[0]}")


@main.command("prune")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@click.pass_obj
@operation
def prune_cmd(obj: Ctx, dry_run):
    """Delete old backups by the GFS policy (ARKE_KEEP_*), locally and offsite; never a base a kept delta needs."""
    from .dr.offsite import S3Config
    from .dr.retention import RetentionPolicy, prune

    with obj.client() as client:
        _emit(prune(client, obj.settings, RetentionPolicy.from_env(), dry_run=dry_run,
                   s3=S3Config.from_env() if obj.settings.offsite_url else None))


@main.group()
def offsite():
    """Offsite copies on S3-compatible storage (ARKE_OFFSITE_URL, AWS_* variables)."""


def _target(obj: Ctx, url: str | None):
    from .dr.offsite import OffsiteTarget

    url = url or obj.settings.offsite_url
    if not url:
        _fail("no offsite URL: pass s3://BUCKET/PREFIX or set ARKE_OFFSITE_URL", 2)
    return OffsiteTarget.parse(url)


@offsite.command("upload")
@click.argument("car")
@click.option("--to", "url", default=None, help="s3://BUCKET/PREFIX (default: ARKE_OFFSITE_URL).")
@click.pass_obj
@operation
def offsite_upload(obj: Ctx, car, url):
    """Copy one local backup offsite; the sidecar goes up after the copy reads back right."""
    from .dr.offsite import S3Config, upload_backup
    from .dr.verify import car_file

    result = upload_backup(S3Config.from_env(), _target(obj, url), car_file(car))
    _emit({"car": result.car_key, "sidecar": result.sidecar_key, "bytes": result.bytes,
          "mb_per_s": round(result.mb_per_s, 1), "already_there": result.already_there})


@offsite.command("list")
@click.argument("url", required=False)
@click.pass_obj
@operation
def offsite_list(obj: Ctx, url):
    """The offsite copies, newest first: seq, time, size, `verified <when a re-read last matched>` or
    `NOT VERIFIED (why)`, URL."""
    from .dr.offsite import S3Config, list_copies

    rows = list_copies(S3Config.from_env(), _target(obj, url))
    status = [f"verified {r['verified_at']}" if r["verified"] else f"NOT VERIFIED ({r['problem']})" for r in rows]
    text = "\n".join(f"{r['seq']}\t{r['time']}\t{r['size']}\t{st}\t{r['url']}" for r, st in zip(rows, status,
                                                                                           strict=True))
    _emit({"copies": rows}, text)


@offsite.command("verify")
@click.argument("key", required=False)
@click.option("--subset", default=None, help="n/t: re-read every copy in slice n of t (t runs read them all), "
                                            "each result recorded in BACKUPS_DIR/offsite-verify.jsonl.")
@click.pass_obj
@operation
def offsite_verify(obj: Ctx, key, subset):
    """Re-read one copy (s3://BUCKET/KEY.car, or a key under ARKE_OFFSITE_URL) and its chain against their
    sidecars; or, with --subset n/t, a slice of all the copies."""
    from .dr.offsite import S3Config, verify_copy

    if subset is not None:
        from .dr.sampling import parse_subset, verify_subset

        n, t = parse_subset(subset)
        result = verify_subset(S3Config.from_env(), _target(obj, key), n, t, obj.settings.backups_dir)
        _emit(result)
        if result["failed"]:
            _fail(f"{len(result['failed'])} of {result['checked']} copies in slice {subset} do not verify: "
                  f"{result['failed'][0]['problem']}", 7)
        return
    if key is None:
        _fail("give the copy to verify (s3://BUCKET/KEY.car or a key), or --subset n/t", 2)

    if key.startswith("s3://"):
        url = key
    else:
        target = _target(obj, None)
        url = target.url(key if target.prefix and key.startswith(f"{target.prefix}/") else target.key(key))
    _emit(verify_copy(S3Config.from_env(), url))


if __name__ == "__main__":
    main()
