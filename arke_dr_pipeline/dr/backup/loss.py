"""Blocks the node lost, and backups that protect everything else.

The Arke API adds components with `pin=false`; a `repo gc` between its
write and our next backup deletes them. Refusing every backup from then on
would leave the whole archive unprotected for one file, so the walk goes on
without a lost block (dr/backup/traverse.py), the backup names it in its sidecar
(`lost`: the CID, the block that linked it, that block's entity and
version), and the CLI, the Dagster check and the alert say so until the
block is back on the node or an operator acknowledges the loss
(`arke-dr acknowledge-loss CID`, kept in the record folder). A lost
snapshot or event is no such case: without it there is no archive, and the
backup is refused as before.

The inventory pass writes what it lost beside the inventory
(`….lost.json`) before the inventory itself, so the export, a later step,
verifies the CAR against exactly that list and nothing more.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from ...errors import ArkeDrError
from ...ipld.car import CarReader
from ...ipld.cid import DAG_CBOR, DAG_JSON, DAG_PB, CIDError, cid_str, parse_cid, split_cid
from ...ipld.links import dag_cbor_value, dag_json_links, dag_pb_links
from ..plumbing.files import atomic_write_json

ACK_FILE = "acknowledged-loss.json"


class LossRefused(ArkeDrError, ValueError):
    """An acknowledgment of a block no backup names as lost."""


def loss_path(inventory: str | os.PathLike) -> Path:
    path = Path(inventory)
    return path.with_name(path.name.removesuffix(".inventory.tsv") + ".lost.json")


def write_loss(inventory: str | os.PathLike, lost: list[dict]) -> None:
    """The inventory pass's lost blocks, or no file when it lost none."""
    path = loss_path(inventory)
    if lost:
        atomic_write_json(path, {"lost": lost})
    else:
        path.unlink(missing_ok=True)


def read_loss(inventory: str | os.PathLike | None) -> list[dict]:
    if inventory is None:
        return []
    try:
        value = json.loads(loss_path(inventory).read_bytes())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise LossRefused(f"{loss_path(inventory)} cannot be read: {exc}") from None
    return _entries(value.get("lost") if isinstance(value, dict) else None, loss_path(inventory))


def declared(sidecar: dict | None) -> set[bytes]:
    """The CIDs a backup's sidecar says were lost when it was taken: its verification accepts them missing."""
    return {parse_cid(e["cid"]) for e in _entries((sidecar or {}).get("lost", []), "the sidecar")}


def _entries(value, where) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(e, dict) and isinstance(e.get("cid"), str) for e in value):
        raise LossRefused(f"{where}: `lost` is not a list of {{cid, ...}} objects")
    for e in value:
        try:
            parse_cid(e["cid"])
        except CIDError as exc:
            raise LossRefused(f"{where}: lost CID {e['cid'][:80]!r}: {exc}") from None
    return value


def ack_path(record_dir: Path) -> Path:
    return record_dir / ACK_FILE


def acknowledged(record_dir: Path) -> dict[str, dict]:
    try:
        value = json.loads(ack_path(record_dir).read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise LossRefused(f"{ack_path(record_dir)} cannot be read: {exc}") from None
    acks = value.get("acknowledged") if isinstance(value, dict) else None
    if not isinstance(acks, dict):
        raise LossRefused(f"{ack_path(record_dir)}: no `acknowledged` object")
    return acks


def with_acknowledgments(lost: list[dict], record_dir: Path) -> list[dict]:
    acks = acknowledged(record_dir) if lost else {}
    return [{**e, "acknowledged": e["cid"] in acks} for e in lost]


def unacknowledged(lost: list[dict]) -> list[dict]:
    return [e for e in lost if not e.get("acknowledged")]


def acknowledge(record_dir: Path, named_lost: list[dict], cids: Iterable[str], note: str = "") -> list[str]:
    """Record `cids` as accepted losses; each must be one the newest backup names as lost."""
    known = {e["cid"]: e for e in named_lost}
    texts = []
    for text in cids:
        try:
            text = cid_str(parse_cid(text))
        except CIDError as exc:
            raise LossRefused(f"{text[:80]!r} is not a CID: {exc}") from None
        if text not in known:
            raise LossRefused(f"{text} is not named lost by the newest backup; nothing to acknowledge")
        texts.append(text)
    acks = acknowledged(record_dir)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for text in texts:
        e = known[text]
        acks.setdefault(text, {"at": stamp, "note": note, "pi": e.get("pi"), "ver": e.get("ver")})
    record_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(ack_path(record_dir), {"acknowledged": acks})
    return texts


def summary(lost: list[dict], limit: int = 3) -> str:
    """`3 blocks missing from the node: CID (PI ver 2), ...`, for one error line."""
    shown = ", ".join(f"{e['cid']}" + (f" ({e['pi']} ver {e['ver']})" if e.get("pi") else "") for e in lost[:limit])
    more = f" and {len(lost) - limit} more" if len(lost) > limit else ""
    return f"{len(lost)} block{'s' if len(lost) != 1 else ''} missing from the node: {shown}{more}"


def kubo_links(cid: bytes, data: bytes) -> list[bytes]:
    """The links Kubo's recursive pin follows: tag 42, dag-json links, dag-pb links (not the API's plain maps)."""
    codec = split_cid(cid)[1]
    if codec == DAG_PB:
        return dag_pb_links(data)
    if codec == DAG_CBOR:
        return dag_cbor_value(data)[1]
    if codec == DAG_JSON:
        return dag_json_links(data)[1]
    return []


def tainted(cars: Iterable[Path], lost: set[bytes]) -> set[bytes]:
    """The blocks of `cars` from which Kubo's recursive pin would reach a lost block.

    They cannot sit under the recursive pin cover (its pin would fail), so
    they are pinned directly. Only blocks with links Kubo follows are kept
    in memory (in the API's shape, UnixFS roots; in the seed's, most
    blocks): this runs only when something is lost. Passes go children
    first (the walk wrote parents first), until nothing changes.
    """
    edges: list[tuple[bytes, list[bytes]]] = []
    for car in cars:
        with open(car, "rb", buffering=1 << 20) as fh:
            for block in CarReader(fh, verify=False):
                links = kubo_links(block.cid, block.data)
                if links:
                    edges.append((block.cid, links))
    bad = set(lost)
    changed = True
    while changed:
        changed = False
        for cid, links in reversed(edges):
            if cid not in bad and any(link in bad for link in links):
                bad.add(cid)
                changed = True
    return bad - lost


def declared_lost(sidecar: dict | None) -> set[bytes]:
    from ..verify.dagcheck import BackupInvalid

    try:
        return declared(sidecar)
    except LossRefused as exc:
        raise BackupInvalid(None, str(exc)) from None
