"""Archives to test on that look like production.

`seed_scenario` is the seed's: A v1->v2->v3 (components in v3), B v1->v2,
C v1; six events. `generate` makes a realistic archive of any size,
deterministic for a seed. Blocks are built here with the canonical encoders
and imported as one CAR; the tip tree goes in with one `add` and one
`files/cp`. Nothing is one RPC call per object.

Three shapes (DESIGN.md §1): `api`, what the Arke API writes (dag-cbor
events and `arke/manifest/v1` manifests whose links are plain `{"/": cid}`
maps, as `dag/put` with `input-codec=json` stores them); `seed`, what the
seed's generator writes (dag-json events, `arke/manifest@v1`, tag-42
links); `mixed`, an archive begun in the seed's shape and grown by the API,
so the chain switches codec midway and both schema spellings appear. Like
the API, which pins every object it writes, the generator leaves every
block pinned (one pin of a cover, dr/backup/pins.py).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from dataclasses import dataclass, field

import cbrrr

from ..arke.models import API_MANIFEST_SCHEMA, MANIFEST_SCHEMA, POINTER_SCHEMA, Event, Manifest
from ..arke.snapshot_codec import encode_dag_json
from ..dr.archive.pointer import ArchiveError, read_pointer
from ..dr.archive.tips import install_tips
from ..dr.backup.pins import pin_cover
from ..dr.plumbing.config import Settings
from ..dr.plumbing.progress import log, progress
from ..errors import BadInput
from ..ipld.car import CarWriter, replace_root
from ..ipld.cid import DAG_CBOR, DAG_JSON, cid_str, make_cid
from ..ipld.unixfs import file_blocks
from ..kubo.client import KuboClient

SEED_PIS = ("ENTITY_A00000000000000", "ENTITY_B00000000000000", "ENTITY_C00000000000000")
SHAPES = ("api", "seed", "mixed")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(ms: int, rng: random.Random) -> str:
    t = "".join(_CROCKFORD[(ms >> (5 * i)) & 31] for i in reversed(range(10)))
    return t + "".join(rng.choice(_CROCKFORD) for _ in range(16))


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


@dataclass
class GenSpec:
    entities: int = 0
    events: int | None = None
    seed: int = 42
    image_fraction: float = 0.05
    image_min: int = 300_000
    image_max: int = 700_000
    text_max: int = 4_000
    components: bool = True
    shape: str = "api"


@dataclass
class GenResult:
    head: str
    event_count: int
    entity_count: int
    blocks: int
    bytes: int
    seconds: float
    tips: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict:
        return {"event_head": self.head, "event_count": self.event_count,
                "entity_count": self.entity_count, "blocks": self.blocks, "bytes": self.bytes,
                "seconds": round(self.seconds, 2)}


def encode_event(event: Event, *, api: bool) -> tuple[bytes, bytes]:
    """(CID, block): the API's dag-cbor with plain-map links, or the seed's dag-json."""
    if api:
        data = cbrrr.encode_dag_cbor(event.to_ipld(plain=True))
        return make_cid(DAG_CBOR, data), data
    return encode_dag_json(event.to_ipld())


def _api_share(shape: str) -> float:
    """The share of events, counted from the oldest, written in the API's shape."""
    if shape not in SHAPES:
        raise BadInput(f"unknown shape {shape!r}: expected one of {', '.join(SHAPES)}")
    return {"api": 1.0, "seed": 0.0, "mixed": 0.5}[shape]


class _Builder:
    """Accumulates blocks into a CAR and the chain's state as events are made."""

    def __init__(self, car: CarWriter):
        self.car = car
        self.seen: set[bytes] = set()
        self.bytes = 0
        self.head: bytes | None = None
        self.events = 0
        self.tips: dict[str, tuple[int, bytes, str, bytes]] = {}

    def put(self, cid: bytes, data: bytes) -> bytes:
        if cid not in self.seen:
            self.seen.add(cid)
            self.car.add(cid, data)
            self.bytes += len(data)
        return cid

    def file(self, content: bytes) -> bytes:
        root, blocks = file_blocks(content)
        for cid, data in blocks:
            self.put(cid, data)
        return root

    def version(self, pi: str, ver: int, ts: str, prev_manifest: bytes | None,
                components: dict[str, bytes], children: list[str], note: str, *, api: bool) -> bytes:
        manifest = Manifest(pi, ver, ts, prev_manifest, components, children, note,
                            API_MANIFEST_SCHEMA if api else MANIFEST_SCHEMA)
        data = cbrrr.encode_dag_cbor(manifest.to_ipld(plain=api))
        mcid = self.put(make_cid(DAG_CBOR, data), data)
        event = Event("create" if ver == 1 else "update", pi, ver, mcid, ts, self.head)
        ecid, edata = encode_event(event, api=api)
        self.put(ecid, edata)
        self.head = ecid
        self.events += 1
        self.tips[pi] = (ver, mcid, ts, ecid)
        return mcid


def _install(client: KuboClient, settings: Settings, b: _Builder, car_path: str, started: float,
             entity_count: int) -> GenResult:
    assert b.head is not None
    with open(car_path, "rb") as fh:
        client.dag_import(fh, pin_roots=False)
    pin_cover(client, iter(b.seen), name="arke archive (test data)")
    install_tips(client, settings.index_root, sorted((pi, cid_str(m)) for pi, (_, m, _, _) in b.tips.items()))
    pointer = {
        "schema": POINTER_SCHEMA, "event_head": cid_str(b.head), "event_count": b.events,
        "latest_snapshot_cid": None, "snapshot_event_cid": None, "snapshot_seq": 0,
        "snapshot_count": 0, "snapshot_ts": None, "total_count": entity_count,
        "last_snapshot_trigger": None, "last_updated": iso(int(time.time() * 1000)),
    }
    client.files_write(settings.index_pointer_path, json.dumps(pointer, indent=2).encode() + b"\n")
    return GenResult(cid_str(b.head), b.events, entity_count, len(b.seen), b.bytes,
                     time.monotonic() - started,
                     {pi: cid_str(m) for pi, (_, m, _, _) in b.tips.items()})


def _refuse_existing(client: KuboClient, settings: Settings) -> None:
    if read_pointer(client, settings.index_pointer_path) is not None:
        raise ArchiveError(
            f"the node already holds an archive ({settings.index_pointer_path}); "
            "test data goes on an empty node"
        )


def seed_scenario(client: KuboClient, settings: Settings, shape: str = "seed") -> GenResult:
    """The seed's six events; `shape` says who wrote them (`mixed`: A by the seed, B and C by the API)."""
    share = _api_share(shape)
    _refuse_existing(client, settings)
    started = time.monotonic()
    a, b_, c = SEED_PIS
    fd, car_path = tempfile.mkstemp(suffix=".car")
    os.close(fd)
    try:
        with CarWriter(car_path, [_placeholder(share)]) as car:
            b = _Builder(car)
            t0 = 1_761_048_000_000
            ma1 = b.version(a, 1, iso(t0), None, {}, [], "Entity A created", api=share > 0.9)
            ma2 = b.version(a, 2, iso(t0 + 1000), ma1, {}, [], "Entity A updated", api=share > 0.9)
            meta = b.file(json.dumps({"title": "Entity A", "creator": "Arke Institute"}).encode())
            image = b.file(random.Random(7).randbytes(300_000))
            b.version(a, 3, iso(t0 + 2000), ma2, {"metadata": meta, "image": image}, [],
                      "Entity A with components", api=share > 0.9)
            mb1 = b.version(b_, 1, iso(t0 + 3000), None, {}, [], "Entity B created", api=share > 0)
            b.version(b_, 2, iso(t0 + 4000), mb1, {}, [], "Entity B updated", api=share > 0)
            b.version(c, 1, iso(t0 + 5000), None, {}, [a, b_], "Entity C created", api=share > 0)
        replace_root(car_path, _placeholder(share), b.head)
        return _install(client, settings, b, car_path, started, 3)
    finally:
        os.unlink(car_path)


def _placeholder(share: float) -> bytes:
    """A root of the same length as the head will have: the newest event is the API's when any is."""
    return make_cid(DAG_CBOR if share > 0 else DAG_JSON, b"")


def _plan(spec: GenSpec, rng: random.Random) -> list[int]:
    """Versions per entity: mostly 1-3, a long tail with many."""
    n = spec.entities
    if spec.events is None:
        return [rng.choices((1, 2, 3, 4, 8, 20), (50, 25, 15, 5, 4, 1))[0] for _ in range(n)]
    if spec.events < n:
        raise BadInput(f"--events {spec.events} is fewer than --entities {n}")
    versions = [1] * n
    weights = [rng.paretovariate(1.2) for _ in range(n)]
    for i in rng.choices(range(n), weights, k=spec.events - n):
        versions[i] += 1
    return versions


def generate(client: KuboClient, settings: Settings, spec: GenSpec) -> GenResult:
    share = _api_share(spec.shape)
    _refuse_existing(client, settings)
    started = time.monotonic()
    rng = random.Random(spec.seed)
    versions = _plan(spec, rng)
    t0 = 1_759_000_000_000
    pis = [ulid(t0 + i * 37, rng) for i in range(spec.entities)]
    slots = [(i, v) for i, count in enumerate(versions) for v in range(1, count + 1)]
    # Each entity's versions keep their order; entities interleave.
    stamps = {i: sorted(rng.random() for _ in range(c)) for i, c in enumerate(versions)}
    order = sorted(slots, key=lambda s: (stamps[s[0]][s[1] - 1] + s[0] * 1e-12))
    fd, car_path = tempfile.mkstemp(suffix=".car")
    os.close(fd)
    state: dict[int, tuple[bytes, dict[str, bytes]]] = {}
    created: list[str] = []
    bar = progress("generating archive", total=len(order), unit="events")
    try:
        with CarWriter(car_path, [_placeholder(share)]) as car:
            b = _Builder(car)
            for n, (i, ver) in enumerate(order):
                pi = pis[i]
                prev, comps = state.get(i, (None, {}))
                comps = dict(comps)
                if not spec.components:
                    comps = {}
                else:
                    comps["metadata"] = b.file(json.dumps(
                        {"pi": pi, "ver": ver, "title": f"Item {i}", "n": rng.random()},
                        sort_keys=True).encode())
                if spec.components and (ver == 1 or rng.random() < 0.3):
                    text = rng.randbytes(rng.randint(200, spec.text_max)).hex()[: spec.text_max]
                    comps["text"] = b.file(text.encode())
                if spec.components and rng.random() < spec.image_fraction:
                    comps["image"] = b.file(rng.randbytes(rng.randint(spec.image_min, spec.image_max)))
                children = rng.sample(created, min(len(created), rng.choice((0, 0, 0, 1, 2))))
                mcid = b.version(pi, ver, iso(t0 + n * 1000), prev, comps, children, f"version {ver}",
                                 api=n >= len(order) * (1 - share))
                state[i] = (mcid, comps)
                if ver == 1:
                    created.append(pi)
                bar.update()
        bar.close()
        replace_root(car_path, _placeholder(share), b.head)
        log(f"importing {len(b.seen)} blocks ({b.bytes / 1e6:.1f} MB)")
        return _install(client, settings, b, car_path, started, spec.entities)
    finally:
        bar.close()
        os.unlink(car_path)
