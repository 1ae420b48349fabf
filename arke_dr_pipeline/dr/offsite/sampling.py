"""Sampled offsite verification: slice n of t re-reads every t-th copy, so t runs read them all.

restic's `check --read-data-subset n/t`, over our offsite copies: a copy's
slice is fixed by its name (its CRC-32 modulo t), so a daily slice rotates
over every backup in t days whatever is added or pruned meanwhile. Each
re-read goes to a record beside the backups (`offsite-verify.jsonl`: time,
URL, outcome), the history an operator asks for when a copy turns out bad.
"""

from __future__ import annotations

import json
import os
import zlib
from datetime import UTC, datetime
from pathlib import Path

from ...errors import BadInput
from .copy import OffsiteError, OffsiteTarget, S3Config
from .reread import list_copies, verify_copy

RECORD = "offsite-verify.jsonl"


def parse_subset(text: str) -> tuple[int, int]:
    try:
        n, t = (int(x) for x in text.split("/"))
    except ValueError:
        raise BadInput(f"--subset takes n/t (for example 1/7), not {text!r}") from None
    if not 1 <= n <= t:
        raise BadInput(f"--subset {text}: n must be between 1 and t")
    return n, t


def in_slice(url: str, n: int, t: int) -> bool:
    return zlib.crc32(url.rsplit("/", 1)[-1].encode()) % t == n - 1


def verify_subset(s3: S3Config, target: OffsiteTarget, n: int, t: int, record_dir: Path) -> dict:
    """Re-read slice n of t (each CAR alone: its chain's copies are in their own slices)."""
    results = []
    for row in list_copies(s3, target):
        if not in_slice(row["url"], n, t):
            continue
        try:
            verify_copy(s3, row["url"], chain=False)
            results.append({"url": row["url"], "ok": True})
        except OffsiteError as exc:
            results.append({"url": row["url"], "ok": False, "problem": str(exc)})
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    record_dir.mkdir(parents=True, exist_ok=True)
    with open(record_dir / RECORD, "a") as fh:
        for r in results:
            fh.write(json.dumps({"time": stamp, "subset": f"{n}/{t}", **r}) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return {"subset": f"{n}/{t}", "checked": len(results), "failed": [r for r in results if not r["ok"]],
            "record": str(record_dir / RECORD)}
