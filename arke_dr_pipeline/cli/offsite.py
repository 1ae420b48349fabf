"""Offsite copies: upload, list, verify (one copy and its chain, or a slice of all)."""

from __future__ import annotations

import click

from .base import Ctx, _emit, _fail, main, operation


@main.group()
def offsite():
    """Offsite copies on S3-compatible storage (ARKE_OFFSITE_URL, AWS_* variables)."""


def _target(obj: Ctx, url: str | None):
    from ..dr.offsite.copy import OffsiteTarget

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
    from ..dr.catalog.sidecar import car_file
    from ..dr.offsite.copy import S3Config, upload_backup

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
    from ..dr.offsite.copy import S3Config
    from ..dr.offsite.reread import list_copies

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
    from ..dr.offsite.copy import S3Config
    from ..dr.offsite.reread import verify_copy

    if subset is not None:
        from ..dr.offsite.sampling import parse_subset, verify_subset

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
