"""`arke-dr prove` and `verify-proof`: the log's proofs as JSON documents.

A consistency proof names two backups by their sidecars' log sizes and
roots; an inclusion proof names one CID, its leaf index, and one backup's
size and root. Verification needs nothing but the document and, to mean
anything to a third party, the roots they already hold from earlier
(`--old-root`, `--new-root`, `--root`).
"""

from __future__ import annotations

from pathlib import Path

from ...ipld.cid import cid_str
from ..backup.translog import Log, ProofError, parse_hex, parse_leaf, verify_consistency, verify_inclusion
from ..catalog.sidecar import car_file, read_sidecar

FORMAT = "arke-dr/proof@1"


def _logged(car: str | Path) -> tuple[Path, int, str]:
    path = car_file(car)
    sidecar = read_sidecar(path) or {}
    entry = sidecar.get("log")
    if not isinstance(entry, dict) or not isinstance(entry.get("size"), int):
        raise ProofError(f"{path.name}: its sidecar has no log root (a backup from before the log)")
    return path, entry["size"], entry["root"]


def prove_consistency(old_car: str | Path, new_car: str | Path) -> dict:
    old_path, old_size, old_root = _logged(old_car)
    new_path, new_size, new_root = _logged(new_car)
    if old_size > new_size:
        raise ProofError(f"{old_path.name} ({old_size} CIDs) is not older than {new_path.name} ({new_size})")
    log = Log(new_path.parent)
    _check_root(log, new_size, new_root, new_path)
    path = log.consistency(old_size, new_size) if old_size else []
    return {"format": FORMAT, "kind": "consistency", "old": {"backup": old_path.name, "size": old_size,
            "root": old_root}, "new": {"backup": new_path.name, "size": new_size, "root": new_root},
            "path": [h.hex() for h in path]}


def prove_inclusion(cid: str, car: str | Path) -> dict:
    path, size, root = _logged(car)
    log = Log(path.parent)
    _check_root(log, size, root, path)
    raw = parse_leaf(cid)
    index = log.index_of(raw, size)
    return {"format": FORMAT, "kind": "inclusion", "cid": cid_str(raw), "index": index,
            "tree": {"backup": path.name, "size": size, "root": root},
            "path": [h.hex() for h in log.inclusion(index, size)]}


def _check_root(log: Log, size: int, root: str, car: Path) -> None:
    if log.state()["size"] < size or log.subtree(0, size).hex() != root:
        raise ProofError(f"the log beside {car.name} does not give its sidecar's root at size {size}")


def verify_proof(doc: object, *, old_root: str | None = None, new_root: str | None = None,
                 root: str | None = None) -> dict:
    """What the proof shows, or ProofError naming what does not hold."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ProofError(f"not an {FORMAT} document")
    try:
        path = [parse_hex(h, "a path hash") for h in doc["path"]]
        if doc.get("kind") == "consistency":
            old, new = doc["old"], doc["new"]
            _expect(old["root"], old_root, "old")
            _expect(new["root"], new_root, "new")
            verify_consistency(int(old["size"]), int(new["size"]), parse_hex(old["root"], "old root"),
                               parse_hex(new["root"], "new root"), path)
            return {"ok": True, "kind": "consistency", "old_size": old["size"], "new_size": new["size"],
                    "old_root": old["root"], "new_root": new["root"]}
        if doc.get("kind") == "inclusion":
            tree = doc["tree"]
            _expect(tree["root"], root, "")
            verify_inclusion(parse_leaf(doc["cid"]), int(doc["index"]), int(tree["size"]), path,
                             parse_hex(tree["root"], "root"))
            return {"ok": True, "kind": "inclusion", "cid": doc["cid"], "index": doc["index"],
                    "size": tree["size"], "root": tree["root"]}
    except (KeyError, TypeError) as exc:
        raise ProofError(f"the proof lacks a field or has one of the wrong type: {exc}") from None
    raise ProofError(f"unknown proof kind {doc.get('kind')!r}")


def _expect(found: str, held: str | None, which: str) -> None:
    if held is not None and found != held.lower():
        raise ProofError(f"the proof's {which + ' ' if which else ''}root {found} is not the one you hold, {held}")
