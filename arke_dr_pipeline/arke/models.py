"""Typed models of what the archive holds, decoded strictly.

Decoders take the IPLD value (links as `cbrrr.CID`) and refuse anything off
shape with an `ArkeDecodeError` naming the object and the field: a wrong
model is worse than no backup, because it is trusted at restore time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import cbrrr

from ..errors import ArkeDrError, BadInput
from ..ipld.cid import CIDError, cid_str, parse_cid

# The seed writes `arke/manifest@v1`; the Arke API writes `arke/manifest/v1`.
MANIFEST_SCHEMA = "arke/manifest@v1"
API_MANIFEST_SCHEMA = "arke/manifest/v1"
MANIFEST_SCHEMAS = (MANIFEST_SCHEMA, API_MANIFEST_SCHEMA)
EVENT_SCHEMA = "arke/event@v1"
SNAPSHOT_V0 = "arke/snapshot@v0"
SNAPSHOT_V1 = "arke/snapshot@v1"
# Upstream's name: inline entries plus merkle fields. Our own chunked
# snapshots were written under it before upstream took it; they are told
# apart by having `chunks` and are still read.
SNAPSHOT_V2 = "arke/snapshot@v2"
SNAPSHOT_CHUNKED = "arke-dr/snapshot-chunked@v1"
SNAPSHOT_SCHEMAS = (SNAPSHOT_V0, SNAPSHOT_V1, SNAPSHOT_V2, SNAPSHOT_CHUNKED)
CHUNK_SCHEMA = "arke/snapshot-chunk@v1"
# upstream's proof list in its one-block snapshot: every CID of the archive as text
PROOF_LIST = "all_cids"
POINTER_SCHEMA = "arke/index-pointer@v2"

# whole strings (fullmatch): `$` would also match before a final newline, and a PI becomes
# a tip file's name and a dump's line
_ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
_SEED_PI = re.compile(r"[A-Z0-9_]{8,64}")


class ArkeDecodeError(ArkeDrError, ValueError):
    """An archive object that does not have the shape it claims."""

    def __init__(self, obj: str, fld: str, problem: str):
        self.obj, self.field = obj, fld
        super().__init__(f"{obj}: field {fld!r} {problem}")


def valid_pi(pi: object) -> bool:
    return isinstance(pi, str) and bool(_ULID.fullmatch(pi) or _SEED_PI.fullmatch(pi))


def tip_path(pi: str, root: str = "/arke/index") -> str:
    """`/arke/index/{pi[0:2]}/{pi[2:4]}/{pi}.tip`: two levels keep MFS directories small."""
    if not valid_pi(pi):
        raise BadInput(f"not a PI: {pi!r}")
    return f"{root}/{pi[0:2]}/{pi[2:4]}/{pi}.tip"


def tip_relpath(pi: str) -> str:
    return tip_path(pi, "")[1:]


def _get(obj: dict, name: str, key: str, types, *, nullable=False):
    if key not in obj:
        raise ArkeDecodeError(name, key, "is missing")
    v = obj[key]
    if v is None and nullable:
        return None
    if isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise ArkeDecodeError(name, key, f"has type bool, expected {_tn(types)}")
    if not isinstance(v, types):
        if isinstance(v, dict) and "/" in v and types is cbrrr.CID:
            raise ArkeDecodeError(name, key, f"is a link-shaped map whose value is not a CID: {v['/']!r:.60}")
        raise ArkeDecodeError(name, key, f"has type {type(v).__name__}, expected {_tn(types)}")
    return v


def _tn(types) -> str:
    if isinstance(types, tuple):
        return " or ".join(t.__name__ for t in types)
    return "link" if types is cbrrr.CID else types.__name__


def _link(obj: dict, name: str, key: str, *, nullable=False) -> bytes | None:
    v = _get(obj, name, key, cbrrr.CID, nullable=nullable)
    return None if v is None else v.cid_bytes


def _cid_text(obj: dict, name: str, key: str) -> str:
    v = _get(obj, name, key, str)
    try:
        parse_cid(v)
    except CIDError:
        raise ArkeDecodeError(name, key, f"is not a CID: {v!r:.60}") from None
    return v


def _schema(obj: object, name: str, *expected: str) -> str:
    if not isinstance(obj, dict):
        raise ArkeDecodeError(name, "schema", f"cannot be read: object is a {type(obj).__name__}")
    s = _get(obj, name, "schema", str)
    if s not in expected:
        raise ArkeDecodeError(name, "schema", f"is {s!r}, expected {' or '.join(expected)}")
    return s


def _pi(obj: dict, name: str) -> str:
    pi = _get(obj, name, "pi", str)
    if not valid_pi(pi):
        raise ArkeDecodeError(name, "pi", f"is not a PI: {pi!r:.40}")
    return pi


def _ver(obj: dict, name: str) -> int:
    ver = _get(obj, name, "ver", int)
    if ver < 1:
        raise ArkeDecodeError(name, "ver", f"must be 1 or more, got {ver}")
    return ver


def link_value(cid: bytes | None, plain: bool):
    """A link as the seed writes it (tag 42) or as the Arke API does (`{"/": text}`)."""
    if cid is None:
        return None
    return {"/": cid_str(cid)} if plain else cbrrr.CID(cid)


@dataclass(frozen=True)
class Manifest:
    pi: str
    ver: int
    ts: str
    prev: bytes | None
    components: dict[str, bytes]
    children_pi: list[str]
    note: str
    schema: str = MANIFEST_SCHEMA

    @classmethod
    def decode(cls, obj: object, name: str = "manifest") -> Manifest:
        schema = _schema(obj, name, *MANIFEST_SCHEMAS)
        comps = _get(obj, name, "components", dict)
        links = {}
        for k, v in comps.items():
            if not isinstance(v, cbrrr.CID):
                what = ("a link-shaped map whose value is not a CID" if isinstance(v, dict) and "/" in v
                        else "not a link")
                raise ArkeDecodeError(name, f"components.{k}", f"is {what}")
            links[k] = v.cid_bytes
        children = obj.get("children_pi", [])
        if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
            raise ArkeDecodeError(name, "children_pi", "is not a list of PIs")
        return cls(
            pi=_pi(obj, name), ver=_ver(obj, name), ts=_get(obj, name, "ts", str),
            prev=_link(obj, name, "prev", nullable=True), components=links,
            children_pi=children, note=obj.get("note") or "", schema=schema,
        )

    def to_ipld(self, *, plain: bool = False) -> dict:
        return {
            "schema": self.schema, "pi": self.pi, "ver": self.ver, "ts": self.ts,
            "prev": link_value(self.prev, plain),
            "components": {k: link_value(v, plain) for k, v in self.components.items()},
            "children_pi": list(self.children_pi), "note": self.note,
        }


@dataclass(frozen=True)
class Event:
    type: str
    pi: str
    ver: int
    tip_cid: bytes
    ts: str
    prev: bytes | None

    @classmethod
    def decode(cls, obj: object, name: str = "event") -> Event:
        _schema(obj, name, EVENT_SCHEMA)
        typ = _get(obj, name, "type", str)
        if typ not in ("create", "update"):
            raise ArkeDecodeError(name, "type", f"is {typ!r}, expected create or update")
        return cls(
            type=typ, pi=_pi(obj, name), ver=_ver(obj, name),
            tip_cid=_link(obj, name, "tip_cid"), ts=_get(obj, name, "ts", str),
            prev=_link(obj, name, "prev", nullable=True),
        )

    def to_ipld(self, *, plain: bool = False) -> dict:
        return {
            "schema": EVENT_SCHEMA, "type": self.type, "pi": self.pi, "ver": self.ver,
            "tip_cid": link_value(self.tip_cid, plain), "ts": self.ts,
            "prev": link_value(self.prev, plain),
        }


@dataclass(frozen=True, slots=True)
class SnapshotEntry:
    pi: str
    ver: int
    tip_cid: bytes
    ts: str
    chain_cid: bytes
    # (tip, chain) CID texts as read, kept so an unchanged entry is re-encoded
    # without formatting its CIDs again: most of an incremental build's work
    texts: tuple[str, str] | None = field(default=None, compare=False, repr=False)
    # the tip file's exact text when it is not the CID's text alone (the API's
    # walkthrough writes it with `echo`, newline and all): a restore writes these bytes
    tip_file: str | None = None

    @classmethod
    def decode(cls, obj: object, name: str = "snapshot entry") -> SnapshotEntry:
        if not isinstance(obj, dict):
            raise ArkeDecodeError(name, "entries", f"holds a {type(obj).__name__}, not a map")
        tip = _link(obj, name, "tip_cid")
        tip_file = obj.get("tip_file")
        if tip_file is not None and not tip_text_of(tip, tip_file):
            raise ArkeDecodeError(name, "tip_file", f"is not its tip's CID with white space: {tip_file!r:.80}")
        return cls(
            pi=_pi(obj, name), ver=_ver(obj, name), tip_cid=tip,
            ts=_get(obj, name, "ts", str), chain_cid=_link(obj, name, "chain_cid"), tip_file=tip_file,
        )

    def to_ipld(self) -> dict:
        out = {"pi": self.pi, "ver": self.ver, "tip_cid": cbrrr.CID(self.tip_cid),
               "ts": self.ts, "chain_cid": cbrrr.CID(self.chain_cid)}
        if self.tip_file is not None:
            out["tip_file"] = self.tip_file
        return out

    @property
    def tip_text(self) -> str:
        """What the tip file holds, byte for byte."""
        return self.tip_file if self.tip_file is not None else cid_str(self.tip_cid)


_TIP_SPACE = " \t\r\n"


def tip_text_of(tip_cid: bytes, text: object) -> bool:
    """`text` is a tip file naming `tip_cid`: its CID in any spelling, with
    nothing around it but spaces, tabs and line ends."""
    if not isinstance(text, str):
        return False
    core = text.strip(_TIP_SPACE)
    if not core or any(c in _TIP_SPACE for c in core):
        return False
    try:
        return parse_cid(core) == tip_cid
    except CIDError:
        return False


@dataclass(frozen=True)
class SnapshotHeader:
    """The keys every snapshot format shares; entries live inline (`@v0`, `@v1`,
    upstream's `@v2`) or in chunks (ours). `extra` keeps upstream's proof
    summary (`merkle_root`, `cid_count`) for reports; `all_cids` is not kept."""

    schema: str
    seq: int
    ts: str
    event_cid: str
    total_count: int
    prev_snapshot: bytes | None
    entries: list[SnapshotEntry] | None = None
    chunks: list[bytes] | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def decode(cls, obj: object, name: str = "snapshot") -> SnapshotHeader:
        schema = _schema(obj, name, *SNAPSHOT_SCHEMAS)
        seq = _get(obj, name, "seq", int)
        total = _get(obj, name, "total_count", int)
        entries = chunks = None
        if schema != SNAPSHOT_CHUNKED and (schema != SNAPSHOT_V2 or "chunks" not in obj):
            raw = _get(obj, name, "entries", list)
            entries = [SnapshotEntry.decode(e, f"{name} entry {i}") for i, e in enumerate(raw)]
        else:
            raw = _get(obj, name, "chunks", list)
            chunks = []
            for i, c in enumerate(raw):
                if not isinstance(c, cbrrr.CID):
                    raise ArkeDecodeError(name, f"chunks[{i}]", "is not a link")
                chunks.append(c.cid_bytes)
        event_cid = obj.get("event_cid")
        if isinstance(event_cid, cbrrr.CID):
            event_cid = cid_str(event_cid.cid_bytes)
        elif event_cid is not None:
            event_cid = _cid_text(obj, name, "event_cid")
        return cls(
            schema=schema, seq=seq, ts=_get(obj, name, "ts", str), event_cid=event_cid or "",
            total_count=total, prev_snapshot=_link(obj, name, "prev_snapshot", nullable=True)
            if "prev_snapshot" in obj else None,
            entries=entries, chunks=chunks,
            extra={k: obj[k] for k in ("merkle_root", "cid_count") if obj.get(k) is not None},
        )


def decode_chunk(obj: object, name: str = "snapshot chunk") -> list[SnapshotEntry]:
    _schema(obj, name, CHUNK_SCHEMA)
    raw = _get(obj, name, "entries", list)
    return [SnapshotEntry.decode(e, f"{name} entry {i}") for i, e in enumerate(raw)]


POINTER_SNAPSHOT_FIELDS = (
    "latest_snapshot_cid", "snapshot_event_cid", "snapshot_seq", "snapshot_count",
    "snapshot_ts", "snapshot_event_count", "last_snapshot_trigger",
)


@dataclass
class IndexPointer:
    """`/arke/index-pointer`: a JSON file that the Arke API rewrites at any moment.

    `raw` keeps every field, known or not, so that rewriting the snapshot
    fields never drops something another writer added.
    """

    raw: dict

    @classmethod
    def decode(cls, data: bytes | dict, name: str = "index pointer") -> IndexPointer:
        import json

        if isinstance(data, bytes | str):
            try:
                data = json.loads(data)
            except ValueError:
                raise ArkeDecodeError(name, "(file)", "is not JSON") from None
        if not isinstance(data, dict):
            raise ArkeDecodeError(name, "(file)", "is not a JSON object")
        _schema(data, name, POINTER_SCHEMA)
        head = data.get("event_head")
        if head is not None:
            _cid_text(data, name, "event_head")
        for k in ("event_count", "total_count"):
            if k in data and not isinstance(data[k], int):
                raise ArkeDecodeError(name, k, "is not an integer")
        return cls(dict(data))

    @classmethod
    def empty(cls) -> IndexPointer:
        return cls({"schema": POINTER_SCHEMA, "event_head": None, "event_count": 0,
                    "total_count": 0})

    @property
    def event_head(self) -> str | None:
        return self.raw.get("event_head")

    @property
    def event_count(self) -> int:
        return int(self.raw.get("event_count") or 0)

    @property
    def total_count(self) -> int:
        return int(self.raw.get("total_count") or 0)

    @property
    def latest_snapshot_cid(self) -> str | None:
        return self.raw.get("latest_snapshot_cid")

    @property
    def snapshot_event_count(self) -> int:
        return int(self.raw.get("snapshot_event_count") or 0)

    @property
    def snapshot_seq(self) -> int:
        return int(self.raw.get("snapshot_seq") or 0)

    def encode(self) -> bytes:
        import json

        return json.dumps(self.raw, indent=2, sort_keys=False).encode() + b"\n"
