"""Offsite copies: every backup leaves the host, on S3-compatible storage.

Order of writes, so that a listing never shows a copy that is not whole:
the CAR (multipart, streamed from disk), then its inventory, then the CAR
is read back and hashed, and only then the sidecar, which is what `list`
and `restore` look for. A run killed mid-upload leaves at most an
unfinished multipart upload (never an object under the final key); the
next upload aborts such leftovers under the prefix.

Why a streamed re-read and not the server's checksum: S3's SHA-256 of a
multipart object is a checksum of the parts' checksums (`...-N`), not the
file's; full-object checksums exist only for the CRC family, which the
sidecar does not carry. Reading the object back through the same client a
restore uses proves what matters: those bytes hash to the sidecar's
sha256.

Credentials come from the standard AWS variables or the caller; no message
this module writes contains them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from ...errors import ArkeDrError, BadInput
from ..catalog.sidecar import read_sidecar, sidecar_path
from ..plumbing.progress import log, progress
from .objectlock import LockPolicy, extend
from .throttle import LimitedClient, Throttle

CHUNK = 8 << 20
PART = 64 << 20


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class OffsiteError(ArkeDrError, RuntimeError):
    """The offsite store said no, or a copy is not what its sidecar says; names the key, never a secret."""


@dataclass(frozen=True)
class OffsiteTarget:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> OffsiteTarget:
        """`s3://BUCKET/PREFIX`, split by hand: the key is everything after the bucket, so a `?` or
        `#` in it stays in the key (a URL parser would take them for a query or a fragment, and a
        copy uploaded under such a key could not be verified or restored by the URL we print)."""
        if not isinstance(url, str) or not url.startswith("s3://"):
            raise BadInput(f"not an offsite URL (s3://BUCKET/PREFIX): {url!r:.200}")
        bucket, _, prefix = url[len("s3://"):].partition("/")
        if not _BUCKET.fullmatch(bucket) or any(ord(c) < 0x20 or ord(c) == 0x7F for c in prefix):
            raise BadInput(f"not an offsite URL (s3://BUCKET/PREFIX): {url!r:.200}")
        return cls(bucket, prefix.strip("/"))

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def parse_object_url(url: str) -> tuple[str, str]:
    """(bucket, key) of `s3://BUCKET/KEY.car`."""
    target = OffsiteTarget.parse(url)
    if not target.prefix.endswith(".car"):
        raise BadInput(f"not the URL of a CAR (s3://BUCKET/KEY.car): {url!r}")
    return target.bucket, target.prefix


@dataclass(frozen=True, kw_only=True)
class S3Config:
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    throttle: Throttle | None = field(default=None, repr=False, compare=False)  # ARKE_OFFSITE_MBPS

    @classmethod
    def from_env(cls, env=None, **overrides) -> S3Config:
        env = os.environ if env is None else env
        values = {"endpoint_url": env.get("AWS_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL_S3") or None,
                  "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
                  "access_key_id": env.get("AWS_ACCESS_KEY_ID") or None,
                  "secret_access_key": env.get("AWS_SECRET_ACCESS_KEY") or None}
        values.update({k: v for k, v in overrides.items() if v})
        values.setdefault("throttle", Throttle.from_env(env))
        return cls(**values)

    def for_prune(self, env=None) -> S3Config:
        """The credentials prune deletes with: ARKE_PRUNE_AWS_ACCESS_KEY_ID and _SECRET_ACCESS_KEY when
        both are set, so the host's everyday credentials need no right to delete."""
        env = os.environ if env is None else env
        key, secret = env.get("ARKE_PRUNE_AWS_ACCESS_KEY_ID"), env.get("ARKE_PRUNE_AWS_SECRET_ACCESS_KEY")
        return replace(self, access_key_id=key, secret_access_key=secret) if key and secret else self

    @property
    def where(self) -> str:
        return self.endpoint_url or "AWS S3"

    def client(self):
        import boto3
        from botocore.config import Config

        # Path-style for every non-AWS server: bucket names need no DNS there.
        config = Config(s3={"addressing_style": "path" if self.endpoint_url else "auto"},
                        retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=60,
                        request_checksum_calculation="when_required", response_checksum_validation="when_required")
        client = boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region or "us-east-1",
                              aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
                              config=config)
        return LimitedClient(client, self.throttle) if self.throttle else client


def explain(exc: Exception, s3: S3Config, what: str) -> OffsiteError:
    """One line for what boto said, in our words: its own text may quote an access key."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(exc, OffsiteError):
        return exc
    if isinstance(exc, NoCredentialsError):
        return OffsiteError("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "")) or "error"
        if code in ("NoSuchBucket",):
            return OffsiteError(f"{what}: the bucket does not exist on {s3.where}")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "Forbidden"):
            return OffsiteError(f"{what}: {s3.where} refused the credentials ({code})")
        if code in ("NoSuchKey", "404", "NotFound"):
            return OffsiteError(f"{what}: no such object")
        return OffsiteError(f"{what}: {s3.where} answered {code}")
    if isinstance(exc, EndpointConnectionError):
        return OffsiteError(f"{what}: S3 endpoint {s3.where} unreachable")
    return OffsiteError(f"{what}: {type(exc).__name__} talking to {s3.where}")


@contextmanager
def s3_calls(s3: S3Config, what: str) -> Iterator[None]:
    """Every boto error inside becomes one OffsiteError line about `what`."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise explain(exc, s3, what) from None


@dataclass(frozen=True, kw_only=True)
class OffsiteResult:
    car_key: str
    sidecar_key: str
    inventory_key: str | None
    bytes: int
    upload_seconds: float
    verify_seconds: float
    already_there: bool = False

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.upload_seconds if self.upload_seconds > 0 else 0.0


def upload_backup(s3: S3Config, target: OffsiteTarget, car: str | os.PathLike, *,
                  verified: bool = False, lock: LockPolicy | None = None) -> OffsiteResult:
    """Copy one local backup offsite and prove the copy before the sidecar goes up.

    Only a CAR that verifies goes: a sidecar can be written by hand. `verified`: the caller has
    just verified it (the export that wrote it), so it is not read twice. `lock` (default:
    ARKE_OFFSITE_LOCK_DAYS): every object goes up under Object Lock, and a delta's chain is
    retained at least as long as the delta (dr/offsite/objectlock.py)."""
    from boto3.s3.transfer import TransferConfig

    lock = lock or LockPolicy.from_env()

    car = Path(car)
    sidecar = read_sidecar(car)
    if sidecar is None or "sha256" not in sidecar:
        raise BadInput(f"{car.name} has no sidecar: only verified backups go offsite")
    if not verified:
        from ..verify.car import verify_car

        verify_car(car)
    client = s3.client()
    car_key, sidecar_key = target.key(car.name), target.key(sidecar_path(car).name)
    inventory = car.parent / sidecar["inventory"] if sidecar.get("inventory") else None
    inventory_key = target.key(f"{car.stem}.inventory.tsv") if inventory and inventory.is_file() else None
    until = lock.until() if lock.enabled else None
    with s3_calls(s3, f"upload of {target.url(car_key)}"):
        if _copy_is_there(client, target, car_key, sidecar_key, sidecar):
            put_sidecar(client, target.bucket, sidecar_key, sidecar, car_key, until, lock.mode)  # re-read matched
            return OffsiteResult(car_key=car_key, sidecar_key=sidecar_key, inventory_key=inventory_key,
                                 bytes=sidecar["size"], upload_seconds=0.0, verify_seconds=0.0, already_there=True)
        _abort_unfinished(client, target)
        started = time.monotonic()
        if s3.throttle:
            log(f"offsite bandwidth limited to {s3.throttle.rate / 1e6:g} MB/s (ARKE_OFFSITE_MBPS)")
        bar = progress(f"uploading {car.name}", total=car.stat().st_size, unit="B")
        try:
            client.upload_file(str(car), target.bucket, car_key, Callback=bar.update,
                               ExtraArgs={"Metadata": {"sha256": sidecar["sha256"]}, **lock.put_args(until)},
                               Config=TransferConfig(multipart_threshold=PART, multipart_chunksize=PART,
                                                     max_concurrency=4, io_chunksize=1 << 20))
        finally:
            bar.close()
        if inventory_key:
            client.upload_file(str(inventory), target.bucket, inventory_key, ExtraArgs=lock.put_args(until))
        uploaded = time.monotonic()
        size, sha = read_back(client, target.bucket, car_key, f"checking {car.name}")
        if (size, sha) != (sidecar["size"], sidecar["sha256"]):
            client.delete_object(Bucket=target.bucket, Key=car_key)
            raise OffsiteError(f"{target.url(car_key)} read back as {size} bytes, sha256 {sha[:16]}…, "
                               f"not the sidecar's {sidecar['size']} bytes, {sidecar['sha256'][:16]}…; deleted")
        verified = time.monotonic()
        if until is not None and sidecar.get("kind") == "delta":
            _retain_chain(client, target, car, until, lock.mode)
        put_sidecar(client, target.bucket, sidecar_key, sidecar, car_key, until, lock.mode)
    log(f"offsite {target.url(car_key)}: {size / 1e6:.1f} MB in {uploaded - started:.1f}s, "
        f"verified in {verified - uploaded:.1f}s")
    return OffsiteResult(car_key=car_key, sidecar_key=sidecar_key, inventory_key=inventory_key, bytes=size,
                         upload_seconds=uploaded - started, verify_seconds=verified - uploaded)


def put_sidecar(client, bucket: str, sidecar_key: str, sidecar: dict, car_key: str,
                 until: datetime | None = None, mode: str = "GOVERNANCE") -> None:
    """The sidecar, last, with the time a streamed re-read of the CAR matched its sha256 (and
    the retention its objects went up with)."""
    offsite = {"car_key": car_key, "verified": "sha256 of a streamed re-read",
               "verified_at": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")}
    if until is not None:
        offsite.update(retain_until=until.strftime("%Y%m%dT%H%M%SZ"), lock_mode=mode)
    record = {**{k: v for k, v in sidecar.items() if k != "offsite"}, "offsite": offsite}
    client.put_object(Bucket=bucket, Key=sidecar_key, Body=json.dumps(record, indent=2).encode(),
                      ContentType="application/json", **LockPolicy(mode=mode).put_args(until))


def _retain_chain(client, target: OffsiteTarget, car: Path, until: datetime, mode: str) -> None:
    """Every backup a delta extends, retained offsite at least as long as the delta."""
    from ..catalog.chains import chain_of

    for link in chain_of(car, hashed=False)[:-1]:
        stems = [target.key(link.name), target.key(link.with_suffix(".json").name),
                 target.key(f"{link.stem}.inventory.tsv")]
        present = [k for k in stems if _exists(client, target.bucket, k)]
        extended = extend(client, target.bucket, present, until, mode)
        if extended:
            log(f"offsite {link.name}: retained until {until:%Y-%m-%d %H:%M} UTC, as long as the delta that extends it")


def _exists(client, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError:
        return False


def _copy_is_there(client, target: OffsiteTarget, car_key: str, sidecar_key: str, sidecar: dict) -> bool:
    """A rerun after a finished copy does nothing, but only once a re-read of the copy hashes to
    the local sha256: a copy damaged behind the server's back is replaced, after saying so."""
    from botocore.exceptions import ClientError

    bucket = target.bucket
    try:
        remote = json.loads(client.get_object(Bucket=bucket, Key=sidecar_key)["Body"].read())
        head = client.head_object(Bucket=bucket, Key=car_key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return False
        raise
    except ValueError:
        return False
    if not isinstance(remote, dict) or remote.get("sha256") != sidecar["sha256"]:
        log(f"warning: {target.url(sidecar_key)} is not this backup's sidecar: replacing the copy")
        return False
    size, sha = (head["ContentLength"], None) if head["ContentLength"] != sidecar["size"] else \
        read_back(client, bucket, car_key, f"re-reading {car_key.rsplit('/', 1)[-1]}")
    if sha != sidecar["sha256"]:
        log(f"warning: {target.url(car_key)} differs from the local backup ({size} bytes, sha256 "
            f"{(sha or '?')[:16]}…, not {sidecar['size']} bytes, {sidecar['sha256'][:16]}…): replacing it")
        return False
    return True


def _abort_unfinished(client, target: OffsiteTarget) -> None:
    """Multipart uploads a killed run left under the prefix hold storage and are never an object."""
    listing = client.list_multipart_uploads(Bucket=target.bucket, Prefix=target.prefix)
    for upload in listing.get("Uploads", []):
        client.abort_multipart_upload(Bucket=target.bucket, Key=upload["Key"], UploadId=upload["UploadId"])


def read_back(client, bucket: str, key: str, desc: str, sink=None) -> tuple[int, str]:
    """(size, sha256) of the object as streamed; `sink` gets the bytes when given."""
    obj = client.get_object(Bucket=bucket, Key=key)
    sha = hashlib.sha256()
    size = 0
    bar = progress(desc, total=obj["ContentLength"], unit="B")
    try:
        for chunk in obj["Body"].iter_chunks(CHUNK):
            sha.update(chunk)
            size += len(chunk)
            if sink is not None:
                sink.write(chunk)
            bar.update(len(chunk))
    finally:
        bar.close()
    return size, sha.hexdigest()


def remote_sidecar(client, bucket: str, car_key: str) -> dict:
    """The sidecar beside an offsite CAR; a missing one is named as the sidecar, not as the CAR."""
    from botocore.exceptions import ClientError

    key = car_key[: -len(".car")] + ".json"
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read(1 << 20)
        sidecar = json.loads(body)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code", "")) in ("NoSuchKey", "404", "NotFound"):
            raise OffsiteError(f"s3://{bucket}/{key}: no such sidecar, so s3://{bucket}/{car_key} is not a "
                               "listed backup (an upload writes the sidecar last)") from None
        raise
    except ValueError:
        raise OffsiteError(f"s3://{bucket}/{key} is not a JSON sidecar") from None
    if not isinstance(sidecar, dict) or not isinstance(sidecar.get("sha256"), str):
        raise OffsiteError(f"s3://{bucket}/{key} is not a sidecar")
    return sidecar
