"""Restore, and the logical dump and diff that say the restored archive equals the original."""

from __future__ import annotations

import dataclasses
import sys

import click

from .base import Ctx, _emit, _fail, _json_mode, main, operation, seconds_ok


@main.command()
@click.argument("car")
@click.argument("snapshot_cid", required=False)
@click.option("--seq", type=int, default=None, help="Restore an older snapshot (point in time).")
@click.option("--force", is_flag=True, help="Replace a different archive already on the node.")
@click.option("--wait-timeout", type=float, default=60.0, show_default=True)
@click.option("--pi", "pis", multiple=True, help="Only this entity's history and components, into the live "
                                                 "archive (repeatable); the pointer and the rest stay.")
@click.option("--tips", is_flag=True, help="With --pi: write those entities' tip files too.")
@click.pass_obj
@operation
def restore(obj: Ctx, car, snapshot_cid, seq, force, wait_timeout, pis, tips):
    """Rebuild the archive on a node from one CAR (a path, or s3://BUCKET/KEY.car); or, with --pi,
    bring back chosen entities without touching the rest."""
    from ..dr.restore.whole import restore as do_restore

    if not seconds_ok(wait_timeout):
        _fail("--wait-timeout must be a positive number of seconds", 2)
    if tips and not pis:
        _fail("--tips goes with --pi", 2)
    from ..dr.restore.fetch import discard, fetch, is_staged, promote

    if pis:
        from ..dr.restore.partial import restore_entities

        staged = None
        if car.startswith("s3://"):
            from ..dr.offsite.copy import S3Config

            car = staged = fetch(S3Config.from_env(), car, obj.settings.backups_dir)
        try:
            from ..dr.backup.run import backup_lock

            with obj.client() as client, backup_lock(obj.settings):
                client.wait_until_ready(wait_timeout)
                done = restore_entities(client, obj.settings, car, list(pis), tips=tips, snapshot_cid=snapshot_cid,
                                        seq=seq)
        finally:
            if staged is not None:
                discard(staged)
        _emit(dataclasses.asdict(done))
        return

    if car.startswith("s3://"):
        from ..dr.offsite.copy import S3Config

        car = fetch(S3Config.from_env(), car, obj.settings.backups_dir)
    try:
        with obj.client() as client:
            transport = None
            if obj.transport == "docker":
                from ..kubo.transport import make_transport

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

    from ..dr.archive.dump import dump

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

    from ..dr.archive.dump import diff

    found = diff(Path(a), Path(b), limit=limit)
    _emit({"equal": not found, "differences": found}, "\n".join(found) if found else "")
    if found:
        sys.exit(1)
