"""Checking what a backup holds, offline: verify-snapshot, verify-car, ls, prove, verify-proof."""

from __future__ import annotations

import json

import click

from .base import Ctx, _emit, _fail, main, operation


@main.command("verify-snapshot")
@click.argument("snapshot_cid", required=False)
@click.pass_obj
@operation
def verify_snapshot_cmd(obj: Ctx, snapshot_cid):
    """Check a snapshot (default: the latest): no duplicate PIs, valid CIDs, size."""
    from ..dr.archive.criteria import verify_snapshot

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
    from ..dr.restore.fetch import discard, fetch
    from ..dr.verify.car import verify_car
    from ..ipld.cid import cid_str, parse_cid

    staged = None
    if car.startswith("s3://"):
        from ..dr.offsite.copy import S3Config

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
    from ..dr.verify.car import verify_car

    report, _ = verify_car(car, snapshot_cid=snapshot_cid, seq=seq)
    _emit(report.to_dict())
    if report.lost:
        from ..dr.backup.loss import summary

        click.echo(f"warning: taken {summary(report.lost)} (its sidecar names them)", err=True)


@main.command("prove")
@click.argument("car")
@click.option("--since", "since", default=None, metavar="OLDER_CAR",
              help="A consistency proof: OLDER_CAR's log is a prefix of CAR's.")
@click.option("--cid", default=None, help="An inclusion proof: this CID is in CAR's log.")
@operation
def prove_cmd(car, since, cid):
    """A proof from the backups' append-only log, as JSON on stdout."""
    from ..dr.verify.prove import prove_consistency, prove_inclusion

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
    from ..dr.backup.translog import ProofError
    from ..dr.verify.prove import verify_proof

    try:
        doc = json.loads(proof.read())
    except ValueError:
        _fail(f"{proof.name}: not JSON", 5)
    try:
        _emit(verify_proof(doc, old_root=old_root, new_root=new_root, root=root))
    except ProofError as exc:
        _fail(f"proof does not hold: {exc}", 5)
