"""Restoring from `s3://`: the download waits in a staging folder until the restore succeeds.

A copy offsite can be damaged or tampered with, and the backups folder may
already hold a good copy of the same backup. So the CAR (and, for a delta,
the chain it extends) lands in `.offsite-fetch-{pid}/` inside the backups
folder, which nothing lists. A local backup of the same name is never
replaced: when its sha256 is the offsite sidecar's, it is linked into the
staging folder and not downloaded; when it differs, the restore is refused
naming both hashes. The restore verifies the staged chain; only when it
succeeds are the downloaded files moved into the backups folder (the CAR,
then its sidecar, which is what makes it listed). A failed restore leaves
nothing listed, and the next fetch removes a staging folder whose process
is gone.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..catalog.sidecar import read_sidecar, sidecar_path
from ..offsite.copy import OffsiteError, S3Config, parse_object_url, read_back, remote_sidecar, s3_calls
from ..plumbing.files import WriteFailed, atomic_write_json
from ..plumbing.progress import log

STAGING_PREFIX = ".offsite-fetch-"


def fetch(s3: S3Config, url: str, backups_dir: Path) -> Path:
    """The staged CAR of `url`, with the chain it extends beside it; verified by the restore that follows."""
    _drop_stale(backups_dir)
    staging = backups_dir / f"{STAGING_PREFIX}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        return _fetch_chain(s3, url, backups_dir, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _fetch_chain(s3: S3Config, url: str, backups_dir: Path, staging: Path) -> Path:
    bucket, key = parse_object_url(url)
    name = key.rsplit("/", 1)[-1]
    staged = staging / name
    with s3_calls(s3, url):
        sidecar = remote_sidecar(s3.client(), bucket, key)
    local = backups_dir / name
    if local.exists():
        mine = (read_sidecar(local) or {}).get("sha256") if local.is_file() else None
        if mine != sidecar["sha256"]:
            raise OffsiteError(f"{local} (sha256 {str(mine)[:16]}…) and {url} (sha256 {sidecar['sha256'][:16]}…) "
                               "differ: the local backup is kept and nothing is restored; compare them before "
                               "choosing one")
        _link(local, staged)
        _link(sidecar_path(local), sidecar_path(staged))
        log(f"{name}: the local copy is the offsite one (same sha256); not downloaded")
    else:
        _download(s3, url, bucket, key, staged, sidecar)
    base = sidecar.get("base") if sidecar.get("kind") == "delta" else None
    if isinstance(base, dict) and isinstance(base.get("file"), str) and "/" not in base["file"]:
        prefix = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
        _fetch_chain(s3, f"s3://{bucket}/{prefix}{base['file']}", backups_dir, staging)  # from the same prefix
    return staged


def _download(s3: S3Config, url: str, bucket: str, key: str, staged: Path, sidecar: dict) -> None:
    try:
        with s3_calls(s3, url), open(staged, "wb") as out:
            size, sha = read_back(s3.client(), bucket, key, f"downloading {staged.name}", sink=out)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise WriteFailed(f"writing {staged}: {exc.strerror or exc}") from None
    if size != sidecar.get("size") or sha != sidecar["sha256"]:
        raise OffsiteError(f"{url} downloaded as {size} bytes, sha256 {sha[:16]}…, but its sidecar says "
                           f"{sidecar.get('size')} bytes, {sidecar['sha256'][:16]}…: refused")
    atomic_write_json(sidecar_path(staged), {k: v for k, v in sidecar.items() if k != "offsite"})
    log(f"downloaded {url} ({size / 1e6:.1f} MB), sha256 matches its sidecar")


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def is_staged(car: str | os.PathLike) -> bool:
    return Path(car).parent.name.startswith(STAGING_PREFIX)


def promote(staged: Path, backups_dir: Path) -> Path:
    """After a successful restore: the downloads join the backups folder, each CAR before its sidecar."""
    staging = staged.parent
    for car in sorted(staging.glob("*.car")):
        final = backups_dir / car.name
        if not final.exists():
            os.replace(car, final)
            os.replace(sidecar_path(car), sidecar_path(final))
    shutil.rmtree(staging, ignore_errors=True)
    return backups_dir / staged.name


def discard(staged: Path) -> None:
    """After a failed restore: nothing it downloaded stays."""
    if is_staged(staged):
        shutil.rmtree(staged.parent, ignore_errors=True)


def _drop_stale(backups_dir: Path) -> None:
    for folder in backups_dir.glob(f"{STAGING_PREFIX}*"):
        try:
            pid = int(folder.name[len(STAGING_PREFIX):])
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            pass

