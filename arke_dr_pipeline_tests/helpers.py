"""What a user means by "the archive is the same": a logical dump."""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
from pathlib import Path

from arke_dr_pipeline.arke.models import Manifest
from arke_dr_pipeline.arke.snapshot_codec import encode_snapshot
from arke_dr_pipeline.dr.archive.dump import dump
from arke_dr_pipeline.dr.archive.event_chain import walk_events
from arke_dr_pipeline.dr.archive.pointer import require_pointer
from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
from arke_dr_pipeline.dr.archive.snapshot_base import load_snapshot
from arke_dr_pipeline.dr.archive.tips import read_tips
from arke_dr_pipeline.dr.backup.run import backup as run_backup
from arke_dr_pipeline.dr.plumbing.config import Settings
from arke_dr_pipeline.dr.restore import whole as restore_mod
from arke_dr_pipeline.ipld.cid import cid_str, parse_cid
from arke_dr_pipeline.ipld.links import dag_cbor_links
from arke_dr_pipeline.kubo.client import KuboClient


def logical_dump(client: KuboClient, settings: Settings, *, lost: frozenset[str] = frozenset()) -> dict:
    """Every PI's tip file, byte for byte; every manifest of its history with
    its fields; the sha256 of every component's bytes (but those `lost`); the
    event chain; the pointer's counts."""
    pointer = require_pointer(client, settings.index_pointer_path)
    tips = read_tips(client, settings.index_root, exact=True) or {}
    histories: dict[str, list[dict]] = {}
    components: dict[str, str] = {}
    for pi, tip in sorted(tips.items()):
        history = []
        cur = tip
        while cur:
            m = Manifest.decode(dag_cbor_links(client.block_get(cur))[0])
            assert m.pi == pi
            for comp in m.components.values():
                c = cid_str(comp)
                if c not in components and c not in lost:
                    components[c] = hashlib.sha256(client.cat(c)).hexdigest()
            history.append({"cid": cur, "schema": m.schema, "ver": m.ver, "ts": m.ts, "note": m.note,
                            "children_pi": m.children_pi,
                            "components": {k: cid_str(v) for k, v in m.components.items()}})
            cur = cid_str(m.prev) if m.prev else None
        histories[pi] = history
    chain = [(cid_str(c), e.type, e.pi, e.ver, cid_str(e.tip_cid), e.ts)
             for c, e in walk_events(client, pointer.event_head)] if pointer.event_head else []
    return {
        "pointer": {k: pointer.raw.get(k) for k in ("event_head", "event_count", "total_count")},
        "tips": tips, "histories": histories, "components": components, "chain": chain,
    }


def dump_digest(client: KuboClient, settings: Settings, car: Path | None = None) -> str:
    """The sha256 of `arke-dr dump` of the node; with `car`, of the archive a restore
    of that CAR's snapshot must give (`dump --at-snapshot`)."""
    at = json.loads(car.with_suffix(".json").read_text())["snapshot_cid"] if car else None
    with tempfile.TemporaryDirectory() as tmp:
        return dump(client, settings, Path(tmp) / "dump", at_snapshot=at).sha256


def lossy_snapshot(client: KuboClient, snapshot_cid: str, drop: int):
    """A snapshot after `snapshot_cid` that lost its `drop`-th entity (by PI): (its CID, the lost entry)."""
    header, entries = load_snapshot(client, snapshot_cid)
    kept = sorted(entries.values(), key=lambda e: e.pi)
    lost = kept.pop(drop)
    root, blocks = encode_snapshot(seq=header.seq + 1, ts=header.ts, event_cid=header.event_cid,
                                   prev_snapshot=parse_cid(snapshot_cid), entries=kept)
    for _, data in blocks:
        client.block_put(data, cid_codec="dag-json")
    return cid_str(root), lost


def backup(client: KuboClient, settings: Settings) -> Path:
    """The whole backup as the CLI's build-snapshot then export-car do it; the CAR's path."""
    snap = build_snapshot(client, settings)
    return Path(run_backup(client, settings, snap.snapshot_cid).car.car_path)


def restores_paused_before_verifying(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """(inside, release): every restore stops inside its lock, before it verifies, until released."""
    inside, release = threading.Event(), threading.Event()
    real = restore_mod.plan_restore

    def paused(*a, **kw):
        inside.set()
        release.wait(60)
        return real(*a, **kw)

    monkeypatch.setattr(restore_mod, "plan_restore", paused)
    return inside, release
