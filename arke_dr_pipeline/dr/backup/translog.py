"""An append-only log of the archive's CIDs, in the order they were first backed up.

Upstream's proof puts every CID in every snapshot (`all_cids`, tens of MB)
so that two snapshots can be compared. This log does it in O(log n): a
Merkle tree as RFC 6962 defines it (leaf hash SHA-256(0x00 || CID bytes),
node hash SHA-256(0x01 || left || right), split at the largest power of two
below the size), whose size and root go in every backup's sidecar. Between
two backups a consistency proof shows the older tree is a prefix of the
newer: nothing backed up was ever taken out. For one CID an inclusion proof
shows it is in a backup's tree. A third party checks either offline with
the two roots alone (`arke-dr verify-proof`).

On disk, beside the backups: `cid-log.bin` (each leaf's CID, one length
byte then the bytes), `cid-log.hashes` (each leaf's hash, 32 bytes, so a
range is one seek) and `cid-log.state`, JSON (size, root, and the inventory the
last leaves came from). The leaves are appended and synced first, the
state after, the sidecar naming the root last; leaves past the state's
size (a crash between) are cut off at the next append.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ...errors import ArkeDrError
from ...ipld.cid import CIDError, cid_str, parse_cid
from ..plumbing.files import atomic_write_json
from .inventory import inventory_cids

CIDS, HASHES, STATE = "cid-log.bin", "cid-log.hashes", "cid-log.state"


class ProofError(ArkeDrError, ValueError):
    """A proof that does not hold, or cannot be made; the message says which."""


def leaf_hash(cid: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + cid).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two below `n` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _push(peaks: list[tuple[int, bytes]], h: bytes) -> None:
    """One leaf onto the perfect subtrees so far, which merge as they complete."""
    size = 1
    while peaks and peaks[-1][0] == size:
        size, h = size * 2, node_hash(peaks.pop()[1], h)
    peaks.append((size, h))


def _fold(peaks: list[tuple[int, bytes]]) -> tuple[int, bytes]:
    """(size, root) of the perfect subtrees, folded from the right."""
    if not peaks:
        return 0, hashlib.sha256(b"").digest()
    total, acc = peaks[-1]
    for size, h in reversed(peaks[:-1]):
        total, acc = total + size, node_hash(h, acc)
    return total, acc


def root_of(hashes: Iterator[bytes]) -> tuple[int, bytes]:
    """(size, RFC 6962 root) of leaf hashes streamed in order, in O(log n) memory."""
    peaks: list[tuple[int, bytes]] = []
    for h in hashes:
        _push(peaks, h)
    return _fold(peaks)


@dataclass
class Log:
    folder: Path

    def state(self) -> dict:
        try:
            state = json.loads((self.folder / STATE).read_text())
        except FileNotFoundError:
            return {"format": 1, "size": 0, "root": root_of(iter(()))[1].hex(), "inventory": None}
        except (OSError, ValueError) as exc:
            raise ProofError(f"{self.folder / STATE}: unreadable log state: {exc}") from None
        if state.get("format") != 1:
            raise ProofError(f"{self.folder / STATE}: log format {state.get('format')!r}, this tool reads 1")
        return state

    def _hashes(self, start: int, stop: int) -> Iterator[bytes]:
        with open(self.folder / HASHES, "rb") as fh:
            fh.seek(32 * start)
            for _ in range(start, stop):
                h = fh.read(32)
                if len(h) != 32:
                    raise ProofError(f"{self.folder / HASHES} ends before leaf {stop}")
                yield h

    def subtree(self, start: int, stop: int) -> bytes:
        return root_of(self._hashes(start, stop))[1]

    def cids(self) -> Iterator[bytes]:
        with open(self.folder / CIDS, "rb") as fh:
            while n := fh.read(1):
                yield fh.read(n[0])

    def append(self, inventory: Path, *, since: str | None = None, new: list[str] | None = None) -> dict:
        """The inventory's CIDs the log does not hold yet, appended in CID
        order; the new state. New means not in the inventory last logged
        (both are sorted: one merge); without it, not in the log at all.
        `new`: the sorted CIDs `inventory` adds to the inventory named `since`
        (a delta's blocks), used when that is the inventory last logged: the
        merge would read the whole archive twice to find them again."""
        state = self.state()
        size = state["size"]
        previous = self.folder / state["inventory"] if state.get("inventory") else None
        if new is not None and since is not None and state.get("inventory") == since:
            fresh: Iterator[str] = iter(new)
        elif previous is not None and previous.exists():
            fresh = added(inventory_cids(previous), inventory_cids(inventory))
        else:
            known = {cid_str(c) for c in self.cids()} if size else set()
            fresh = (c for c in inventory_cids(inventory) if c not in known)
        peaks = self._peaks(state)
        with open(self.folder / CIDS, "ab") as cids, open(self.folder / HASHES, "ab") as hashes:
            end = self._cids_bytes(size, state)
            cids.truncate(end)
            hashes.truncate(32 * size)
            for text in fresh:
                raw = parse_cid(text)
                record = bytes([len(raw)]) + raw
                cids.write(record)
                h = leaf_hash(raw)
                hashes.write(h)
                _push(peaks, h)
                end += len(record)
                size += 1
            for fh in (cids, hashes):
                fh.flush()
                os.fsync(fh.fileno())
        root = _fold(peaks)[1].hex()
        state = {"format": 1, "size": size, "root": root, "inventory": inventory.name, "bytes": end,
                 "peaks": [[n, h.hex()] for n, h in peaks]}
        atomic_write_json(self.folder / STATE, state)
        return {"size": size, "root": root}

    def _peaks(self, state: dict) -> list[tuple[int, bytes]]:
        """The perfect subtrees of the logged leaves, from the state when it records them (checked
        against its root), else hashed again from every leaf: appending costs the new leaves only."""
        size = state["size"]
        if size == 0:
            return []
        try:
            peaks = [(int(n), bytes.fromhex(h)) for n, h in state["peaks"]]
            recorded = _fold(peaks) == (size, bytes.fromhex(state["root"]))
        except (KeyError, TypeError, ValueError):
            recorded = False
        hashes = self.folder / HASHES
        if recorded and hashes.exists() and hashes.stat().st_size >= 32 * size:
            return peaks
        peaks = []
        for h in self._hashes(0, size):
            _push(peaks, h)
        return peaks

    def _cids_bytes(self, size: int, state: dict) -> int:
        """Where the log's `size` leaves end in the CIDs file: from the state when it records it."""
        path = self.folder / CIDS
        if not path.exists():
            return 0
        recorded = state.get("bytes")  # written after the leaves were synced; later leaves only follow it
        if isinstance(recorded, int) and 0 <= recorded <= path.stat().st_size:
            return recorded
        with open(path, "rb") as fh:
            for _ in range(size):
                n = fh.read(1)
                if not n:
                    raise ProofError(f"{path} holds fewer leaves than its state's {size}")
                fh.seek(n[0], os.SEEK_CUR)
            return fh.tell()

    def index_of(self, cid: bytes, size: int) -> int:
        for i, c in enumerate(self.cids()):
            if i >= size:
                break
            if c == cid:
                return i
        raise ProofError(f"{cid_str(cid)} is not among the first {size} CIDs of the log")

    def inclusion(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 PATH(index, D[size])."""
        out: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = _split(hi - lo)
            if index - lo < k:
                out.append(self.subtree(lo + k, hi))
                hi = lo + k
            else:
                out.append(self.subtree(lo, lo + k))
                lo += k
        return out[::-1]

    def consistency(self, old: int, new: int) -> list[bytes]:
        """RFC 6962 PROOF(old, D[new])."""
        if not 0 < old <= new:
            raise ProofError(f"no consistency proof from size {old} to size {new}")
        out: list[bytes] = []
        lo, hi, m, whole = 0, new, old, True
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:
                out.append(self.subtree(lo + k, hi))
                hi = lo + k
            else:
                out.append(self.subtree(lo, lo + k))
                lo, m, whole = lo + k, m - k, False
        if not whole:
            out.append(self.subtree(lo, hi))
        return out[::-1]


def added(old: Iterator[str], new: Iterator[str]) -> Iterator[str]:
    """What sorted `new` holds that sorted `old` does not."""
    a = next(old, None)
    for b in new:
        while a is not None and a < b:
            a = next(old, None)
        if a != b:
            yield b


def verify_inclusion(cid: bytes, index: int, size: int, path: list[bytes], root: bytes) -> None:
    """RFC 9162 2.1.3.2; raises ProofError unless `cid` is leaf `index` of the tree of `size` with `root`."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is outside a tree of {size}")
    fn, sn, r = index, size - 1, leaf_hash(cid)
    for p in path:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or r != root:
        raise ProofError(f"{cid_str(cid)} is not leaf {index} of the tree of {size} with root {root.hex()}")


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, path: list[bytes]) -> None:
    """RFC 9162 2.1.4.2; raises ProofError unless the tree of `old` is a prefix of the tree of `new`."""
    if old == new:
        if path or old_root != new_root:
            raise ProofError(f"two trees of {old} leaves with different roots")
        return
    if old == 0 and not path and old_root == hashlib.sha256(b"").digest():
        return
    if not 0 < old < new:
        raise ProofError(f"no consistency from a tree of {old} to a tree of {new}")
    if old & (old - 1) == 0:
        path = [old_root, *path]
    if not path:
        raise ProofError("an empty consistency proof")
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise ProofError(f"the tree of {old} leaves (root {old_root.hex()[:16]}...) is not a prefix of "
                         f"the tree of {new} (root {new_root.hex()[:16]}...): something backed up was taken out")


def parse_hex(value: object, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ProofError(f"{what} is not a 32-byte hex hash: {value!r:.80}")
    return raw


def parse_leaf(value: object) -> bytes:
    try:
        return parse_cid(value) if isinstance(value, str) else parse_cid("")
    except CIDError as exc:
        raise ProofError(f"the proof's CID {value!r:.80}: {exc}") from None
