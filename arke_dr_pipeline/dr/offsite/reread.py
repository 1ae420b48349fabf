"""Whether the copies offsite are what their sidecars say: a re-read of one copy and its chain,
and the listing with each copy's verdict (when a re-read last matched, or why it cannot be
called verified)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ..catalog.order import order_key
from .copy import (
    OffsiteError,
    OffsiteTarget,
    S3Config,
    parse_object_url,
    put_sidecar,
    read_back,
    remote_sidecar,
    s3_calls,
)
from .objectlock import parse_until


def verify_copy(s3: S3Config, url: str, *, chain: bool = True) -> dict:
    """Re-read one offsite CAR, and for a delta every copy of its chain: each must hash to its
    sidecar's sha256, and each base must be the one the delta names. Each sidecar then records
    the time of this re-read (`offsite.verified_at`), which `offsite list` shows."""
    bucket, key = parse_object_url(url)
    links: list[tuple[str, str | None]] = []  # (URL, the sha256 of the base it names)
    first_sidecar: dict | None = None
    with s3_calls(s3, url):
        client = s3.client()
        while True:
            sidecar = remote_sidecar(client, bucket, key)
            here = f"s3://{bucket}/{key}"
            size, sha = read_back(client, bucket, key, f"verifying {key.rsplit('/', 1)[-1]}")
            if size != sidecar.get("size") or sha != sidecar["sha256"]:
                raise OffsiteError(f"{here} is not its sidecar's CAR: {size} bytes, sha256 {sha[:16]}…, "
                                   f"sidecar says {sidecar.get('size')} bytes, {sidecar['sha256'][:16]}…")
            if links and sha != links[-1][1]:
                raise OffsiteError(f"{here} is not the backup {links[-1][0]} extends: its sha256 differs")
            first_sidecar = first_sidecar or sidecar
            kept = sidecar.get("offsite") if isinstance(sidecar.get("offsite"), dict) else {}
            until = parse_until(kept.get("retain_until"))
            put_sidecar(client, bucket, key[: -len(".car")] + ".json", sidecar, key,
                         until if until and until > datetime.now(UTC) else None, kept.get("lock_mode", "GOVERNANCE"))
            base = sidecar.get("base") if sidecar.get("kind") == "delta" else None
            links.append((here, (base or {}).get("sha256") if isinstance(base, dict) else None))
            if not chain or not isinstance(base, dict) or not isinstance(base.get("file"), str) \
                    or "/" in base["file"]:
                break
            key = (key.rsplit("/", 1)[0] + "/" if "/" in key else "") + base["file"]
    first = first_sidecar
    return {"url": url, "size": first.get("size"), "sha256": first.get("sha256"), "seq": first.get("seq"),
            "verified": True, "chain": [c for c, _ in links]}


def list_copies(s3: S3Config, target: OffsiteTarget) -> list[dict]:
    """Every copy with its sidecar under the prefix, newest first; unlike the catalog's listing, a
    sidecar whose CAR is gone is shown too, as a copy that is not verified."""
    from ..catalog.stores import S3Store

    rows = []
    with s3_calls(s3, f"listing {target.url(target.prefix)}"):
        store = S3Store(s3, target)
        client, objects = store.client, store.objects
        for key in sorted(k for k in objects if k.endswith(".json")):
            car_key = key[: -len(".json")] + ".car"
            try:
                sidecar = json.loads(client.get_object(Bucket=target.bucket, Key=key)["Body"].read(1 << 20))
            except ValueError:
                continue
            if not isinstance(sidecar, dict):
                continue
            rows.append({"url": target.url(car_key), "seq": sidecar.get("seq"), "time": sidecar.get("timestamp"),
                         "size": objects.get(car_key), "sha256": sidecar.get("sha256"),
                         "order": order_key(sidecar), "sidecar": sidecar,
                         "name": car_key.rsplit("/", 1)[-1]})
    by_name = {r["name"]: r["sidecar"] for r in rows}
    for r in rows:
        r["problem"] = _copy_problem(r["sidecar"], r["size"], by_name)
        r["verified_at"] = (r["sidecar"].get("offsite") or {}).get("verified_at")
        r["verified"] = r["problem"] is None
    rows.sort(key=lambda r: r["order"], reverse=True)  # as made, not by stamp (freshness.order_key)
    for r in rows:
        del r["order"], r["sidecar"], r["name"]
    return rows


def _copy_problem(sidecar: dict, size: int | None, by_name: dict[str, dict]) -> str | None:
    """Why a listed copy cannot be called verified, from the listing alone: no re-read ever matched,
    its size is not the sidecar's, or its chain (for a delta) is not there as the delta names it."""
    if not isinstance(sidecar.get("offsite"), dict) or not sidecar["offsite"].get("verified_at"):
        return "never re-read"
    if size != sidecar.get("size"):
        return f"size {size}, not the sidecar's {sidecar.get('size')}"
    seen = set()
    while sidecar.get("kind") == "delta":
        base = sidecar.get("base") if isinstance(sidecar.get("base"), dict) else {}
        name = base.get("file")
        if name in seen or name not in by_name:
            return f"its chain is broken: {name} is not offsite"
        seen.add(name)
        if by_name[name].get("sha256") != base.get("sha256"):
            return f"its chain is broken: {name} offsite is not the backup it extends"
        sidecar = by_name[name]
    return None
