"""Tip files against the chain: reported when wrong, quiet when merely early.

The Arke API writes an entity's tip file when the version is created and
its event up to `BATCH_TIMEOUT_MS` (500 ms) later, in a batch. A build that
reads the tips in between sees a tip one version ahead of the chain: normal.
Such a tip is looked at again once `ARKE_TIP_GRACE_S` has passed, against
the events appended meanwhile; only one that is still ahead, or one that
points backwards, is an anomaly.

The audit also brings back each tip file's exact text where it is the
right CID with white space around it (upstream's walkthrough writes tips
with `echo`), so the snapshot can keep those bytes for the restore.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ...arke.models import ArkeDecodeError, Manifest, SnapshotEntry, tip_text_of
from ...ipld.cid import CIDError, cid_str, parse_cid, split_cid
from ...ipld.links import BlockDecodeError, decode_block
from ...kubo.client import KuboClient
from ...kubo.errors import KuboError
from ..plumbing.config import Settings
from .event_chain import ChainError, walk_events
from .pointer import read_pointer
from .tips import iter_tips, read_tips_of


@dataclass
class TipAudit:
    anomalies: list[str] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    early: int = 0


def audit_tips(client: KuboClient, settings: Settings, newest: dict[str, SnapshotEntry], *,
               head: str, every: bool = True) -> TipAudit:
    """An audit, not an input: when the tip tree cannot be read the snapshot
    is still built from the chain, and the failure is one more anomaly. A
    full build (`every`) streams every tip file past its entries; an
    incremental one reads only the tips of the entities its new events
    touched, so it stays fast whatever the archive's size."""
    started = time.monotonic()
    out = TipAudit()
    try:
        if every:
            tips = iter_tips(client, settings.index_root, exact=True)
        else:
            some = read_tips_of(client, settings.index_root, list(newest), exact=True)
            tips = None if some is None else iter(some.items())
        if tips is None:
            out.anomalies.append(f"no tip tree at {settings.index_root}")
            return out
        left = dict(newest)
        differ: dict[str, tuple[str, SnapshotEntry | None]] = {}
        for pi, text in tips:
            e = left.pop(pi, None)
            if e is None:
                if every:
                    differ[pi] = (text, None)
            elif text != cid_str(e.tip_cid):
                if tip_text_of(e.tip_cid, text):
                    out.texts[pi] = text
                else:
                    differ[pi] = (text, e)
    except (KuboError, ValueError) as exc:  # ValueError: a tree we cannot decode (UnixfsError, BlockDecodeError)
        return TipAudit([f"tip files not compared: {exc}"])
    out.anomalies.extend(f"{pi}: no tip file" for pi in left)
    if differ:
        _settle(client, settings, differ, head, started, out)
    out.anomalies.sort()
    return out


def _settle(client: KuboClient, settings: Settings, differ: dict, head: str, started: float,
            out: TipAudit) -> None:
    """Tips ahead of the chain get the grace window to be caught up with."""
    ahead: dict[str, tuple[str, int]] = {}
    for pi, (text, e) in differ.items():
        found = _tip_version(client, text.strip(), pi)
        if isinstance(found, str):
            said = f", newest event says {cid_str(e.tip_cid)}" if e is not None else ", and no event names it"
            out.anomalies.append(f"{pi}: tip file says {text.strip()!s:.80}{said}: {found}")
        elif e is None or found > e.ver:
            ahead[pi] = (text.strip(), found)
        else:
            out.anomalies.append(f"{pi}: tip file says {text.strip()} (ver {found}), "
                                 f"newest event says {cid_str(e.tip_cid)} (ver {e.ver}): it points backwards")
    if not ahead:
        return
    time.sleep(max(0.0, started + settings.tip_grace - time.monotonic()))
    caught_up = _newer_tips(client, settings, head)
    for pi, (tip, ver) in sorted(ahead.items()):
        if caught_up.get(pi, 0) >= ver:
            out.early += 1
            continue
        out.anomalies.append(f"{pi}: tip file says {tip} (ver {ver}), ahead of every event for more than "
                             f"{settings.tip_grace:g}s (ARKE_TIP_GRACE_S): a version with no event")


def _tip_version(client: KuboClient, tip: str, pi: str) -> int | str:
    """The version a tip file names, or what is wrong with it."""
    try:
        raw = parse_cid(tip)
        m = Manifest.decode(decode_block(split_cid(raw)[1], client.block_get(raw)), f"manifest {tip}")
    except CIDError:
        return "not a CID"
    except (KuboError, BlockDecodeError, ArkeDecodeError) as exc:
        return f"not a readable manifest ({exc})"
    if m.pi != pi:
        return f"a manifest of {m.pi}"
    return m.ver


def _newer_tips(client: KuboClient, settings: Settings, head: str) -> dict[str, int]:
    """{pi: newest ver} of the events appended after `head`."""
    pointer = read_pointer(client, settings.index_pointer_path)
    newer: dict[str, int] = {}
    if pointer is None or not pointer.event_head or pointer.event_head == head:
        return newer
    try:
        for _, ev in walk_events(client, pointer.event_head, head):
            newer.setdefault(ev.pi, ev.ver)
    except (ChainError, KuboError):
        pass
    return newer
