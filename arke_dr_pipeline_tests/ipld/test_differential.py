"""`verify-car` against Kubo itself: what verifies, Kubo imports and pins.

Each case is a small production-shaped backup whose one component is a
block crafted inside its codec (map keys, number forms, links, protobuf
fields and wire types, inline identity blocks) or whose CAR header is.
The same CAR goes through `verify_car` and through what a restore does on
a real node: `dag/import` and a recursive pin of a cover naming every
block. A CAR that verifies and that Kubo refuses is the failure this test
exists for (a restore would write blocks, then fail). The other way round
is allowed only for dag-cbor, where the verifier (cbrrr) holds blocks to
the canonical form Kubo writes and Kubo's reader is laxer.

ARKE_FUZZ_CASES sets the number of cases in the suite (300); the slow run adds
10,000 (`-m slow`, about 75 s).
"""

import io
import json
import os
import random
import struct

import cbrrr
import pytest

from arke_dr_pipeline.dr.backup.pins import pin_cover
from arke_dr_pipeline.dr.verify.car import verify_car
from arke_dr_pipeline.dr.verify.dagcheck import BackupInvalid
from arke_dr_pipeline.ipld.car import car_section
from arke_dr_pipeline.ipld.cid import DAG_CBOR, DAG_JSON, DAG_PB, RAW, cid_str, make_cid, uvarint
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.kubo.errors import KuboError
from arke_dr_pipeline_tests.ipld.test_hostile_cars import api_archive

CASES = int(os.environ.get("ARKE_FUZZ_CASES", "300"))


def _identity(codec: int, data: bytes) -> bytes:
    return b"\x01" + uvarint(codec) + b"\x00" + uvarint(len(data)) + data


def _absent(rng: random.Random) -> bytes:
    return make_cid(RAW, rng.randbytes(12))


def _present() -> bytes:
    """A link that resolves wherever it goes: an inline raw block (no CAR section needed)."""
    return _identity(RAW, b"present")


class Json:
    """dag-json text built by hand, so it can hold what a JSON library would not write."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def number(self) -> str:
        r = self.rng
        return r.choice([
            str(r.randint(-1000, 1000)), str((1 << 63) - 1), str(-(1 << 63)), str(1 << 63), str(-(1 << 63) - 1),
            str((1 << 64) - 1), "1" * r.randint(19, 40), "-0", "1.5", "1e2", "1e308", "1e400", "-1e400",
            "NaN", "Infinity", "-Infinity", "0.1e-400", "01", "1.", ".5", "+1"])

    def string(self) -> str:
        r = self.rng
        return r.choice(['"a"', '"\\ud800"', '"\xff"', '"\\u0000"', '"tab\\t"', '"bad\\q"', '"\n"', '""'])

    def link(self) -> str:
        r = self.rng
        here, gone = cid_str(_present()), cid_str(_absent(r))
        return r.choice([
            f'{{"/":"{here}"}}', f'{{"/":"{gone}"}}', '{"/":"notacid"}',
            '{"/":1}', f'{{"/":"{here}","x":1}}', '{"/":{"bytes":"aGVsbG8"}}',
            '{"/":{"bytes":"aGVsbG8="}}', '{"/":{"bytes":"!!"}}', '{"/":{"bytes":"a"}}', '{"/":{"bytes":1}}'])

    def value(self, depth: int = 0) -> str:
        r = self.rng
        kind = r.choice(["number", "string", "link", "map", "list", "const"] if depth < 3 else ["number", "string"])
        if kind == "map":
            keys = [r.choice(["a", "b", "c", "/", "bytes"]) for _ in range(r.randint(0, 3))]
            return "{" + ",".join(f'"{k}":{self.value(depth + 1)}' for k in keys) + "}"
        if kind == "list":
            return "[" + ",".join(self.value(depth + 1) for _ in range(r.randint(0, 3))) + "]"
        if kind == "const":
            return r.choice(["true", "false", "null", "nul", "True"])
        return getattr(self, kind)()

    def block(self) -> bytes:
        r = self.rng
        text = self.value().encode("utf-8", "surrogateescape")
        return text + r.choice([b"", b"", b"", b" ", b"\n", b"x", b"{}", b","])


class Cbor:
    """CBOR items built by hand: canonical or not, as the case may be."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def head(self, major: int, n: int) -> bytes:
        widths = [w for w in (0, 1, 2, 4, 8) if n < (24 if w == 0 else 1 << (8 * w))]
        w = widths[0] if self.rng.random() < 0.8 else self.rng.choice(widths)  # sometimes not minimal
        if w == 0:
            return bytes([major << 5 | n])
        return bytes([major << 5 | {1: 24, 2: 25, 4: 26, 8: 27}[w]]) + n.to_bytes(w, "big")

    def text(self, s: str) -> bytes:
        raw = s.encode()
        return self.head(3, len(raw)) + raw

    def item(self, depth: int = 0) -> bytes:
        r = self.rng
        kind = r.choice(["int", "neg", "bytes", "text", "float", "simple", "tag", "map", "list", "indef"]
                        if depth < 3 else ["int", "text", "float"])
        if kind == "int":
            return self.head(0, r.choice([0, 1, 23, 24, 255, 65535, (1 << 63) - 1, (1 << 64) - 1]))
        if kind == "neg":
            return self.head(1, r.choice([0, 100, (1 << 63) - 1, (1 << 63), (1 << 64) - 1]))
        if kind == "bytes":
            return self.head(2, 3) + b"abc"
        if kind == "text":
            return r.choice([self.text("a"), self.head(3, 1) + b"\xff", self.head(3, 5) + b"ab"])
        if kind == "float":
            return r.choice([b"\xfb" + struct.pack(">d", 1.5), b"\xfa" + struct.pack(">f", 1.5), b"\xf9\x3e\x00",
                             b"\xfb" + struct.pack(">d", float("nan")), b"\xfb" + struct.pack(">d", float("inf"))])
        if kind == "simple":
            return r.choice([b"\xf4", b"\xf5", b"\xf6", b"\xf7", b"\xf0", b"\xf8\x20"])
        if kind == "tag":
            cid = r.choice([_present(), _absent(r), b"\x01\x55\x12\x02ab", _identity(RAW, b"hi")])
            return r.choice([b"\xd8\x2a" + self.head(2, len(cid) + 1) + b"\x00" + cid,
                             b"\xd8\x2a" + self.head(2, len(cid)) + cid, b"\xc1\x01", b"\xd8\x2a\x01"])
        if kind == "map":
            keys = [r.choice(["a", "b", "aa", "/"]) for _ in range(r.randint(0, 3))]
            if r.random() < 0.8:
                keys = sorted(set(keys), key=lambda k: (len(k), k))
            body = b"".join((self.text(k) if r.random() < 0.95 else self.head(0, 1)) + self.item(depth + 1)
                            for k in keys)
            return self.head(5, len(keys)) + body
        if kind == "list":
            n = r.randint(0, 3)
            return self.head(4, n) + b"".join(self.item(depth + 1) for _ in range(n))
        return b"\x9f" + self.item(depth + 1) + b"\xff"

    def block(self) -> bytes:
        return self.item() + self.rng.choice([b"", b"", b"", b"\x00"])


class Pb:
    """dag-pb built field by field: numbers, wire types, order and repeats vary."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def varint(self, n: int) -> bytes:
        out = uvarint(n) if n else b"\x00"
        return out[:-1] + bytes([out[-1] | 0x80, 0x00]) if self.rng.random() < 0.1 else out

    def field(self, number: int, wire: int, payload: bytes) -> bytes:
        tag = self.varint(number << 3 | wire)
        return tag + (self.varint(len(payload)) + payload if wire == 2 else self.varint(len(payload)))

    def link(self) -> bytes:
        r = self.rng
        parts = []
        for number in r.sample([1, 2, 3, 9], r.randint(0, 4)) if r.random() < 0.3 else [1, 2, 3][: r.randint(1, 3)]:
            if number == 1:
                parts.append(self.field(1, 2, r.choice([_present(), _present(), _absent(r), b"\x01\x55"])))
            elif number == 3:
                parts.append(self.field(3, r.choice([0, 0, 0, 2]), b"\x05"))
            else:
                parts.append(self.field(number, r.choice([2, 2, 0]), b"name"))
            if r.random() < 0.05:
                parts.append(parts[-1])
        return b"".join(parts)

    def block(self) -> bytes:
        r = self.rng
        fields = [self.field(2, 2, self.link()) for _ in range(r.randint(0, 2))]
        if r.random() < 0.7:
            fields.append(self.field(1, 2, b"\x08\x02"))
        if r.random() < 0.1:
            fields.append(self.field(1, 2, b"more"))
        if r.random() < 0.1:
            fields.append(self.field(r.choice([0, 3, 9]), r.choice([0, 2]), b"x"))
        if r.random() < 0.2:
            r.shuffle(fields)
        return b"".join(fields)


def crafted(seed: int) -> tuple[str, bytes, bytes]:
    """(what, component CID, its bytes): a block in one codec, sometimes inline behind an identity CID."""
    rng = random.Random(seed)
    codec, maker = rng.choice([(DAG_JSON, Json), (DAG_CBOR, Cbor), (DAG_PB, Pb)])
    data = maker(rng).block()
    if rng.random() < 0.2:
        holder = cbrrr.encode_dag_cbor({"inline": cbrrr.CID(_identity(codec, data))})
        return f"identity {maker.__name__}", make_cid(DAG_CBOR, holder), holder
    return maker.__name__, make_cid(codec, data), data


def header(seed: int | None, roots: list[bytes]) -> bytes:
    """The CAR header; with a seed, sometimes with a key Kubo's reader does not know."""
    rng = random.Random(seed)
    fields = {"roots": [cbrrr.CID(r) for r in roots], "version": 1}
    if seed is not None and rng.random() < 0.5:
        fields[rng.choice(["zzz", "Roots", "characteristics"])] = rng.choice([1, "x", []])
    raw = cbrrr.encode_dag_cbor(fields)
    return uvarint(len(raw)) + raw


def _kubo_laxer(what: str, verdict: str) -> bool:
    """Where Kubo's readers take what the codecs' specs forbid: dag-cbor that is not canonical
    (unsorted keys, non-minimal heads, indefinite lengths, undefined), and dag-json numbers
    JSON's grammar refuses (`01`, `1.`). Both stay refused here; nothing Arke writes has them."""
    if what.endswith("Cbor") and "not dag-cbor" in verdict:
        return True
    return what.endswith("Json") and "not dag-json" in verdict and any(
        word in verdict for word in ("Expecting", "Extra data", "Invalid control", "Invalid \\escape"))


def kubo_restores(client: KuboClient, car: bytes, cids: list[bytes]) -> str | None:
    """What a restore does after verification: import without pinning, then pin a cover of every block."""
    try:
        client.dag_import(io.BytesIO(car), pin_roots=False)
        pin_cover(client, iter(cids), name="differential")
    except KuboError as exc:
        return exc.kubo_message or str(exc)
    return None


def test_verify_car_never_passes_what_kubo_refuses(kubo, tmp_path):
    differential(kubo, tmp_path, CASES)


@pytest.mark.slow
def test_ten_thousand_cases(kubo, tmp_path):
    differential(kubo, tmp_path, 10_000)


def differential(kubo, tmp_path, cases: int) -> None:
    disagreements, stricter, refused = [], 0, 0  # stricter: refused here for a reason Kubo does not have
    with KuboClient(kubo.api_url) as client:
        for seed in range(cases):
            what, cid, data = crafted(seed)
            root, blocks = api_archive((cid, [(cid, data)]))
            if random.Random(seed).random() < 0.1:
                what, head = "header", header(seed, [root])
            else:
                head = header(None, [root])
            car = head + b"".join(car_section(c, d) for c, d in blocks)
            path = tmp_path / f"case-{seed}.car"
            path.write_bytes(car)
            try:
                verify_car(path, use_sidecar=False)
                verdict = None
            except BackupInvalid as exc:
                verdict = str(exc)
            kubo_says = kubo_restores(client, car, [c for c, _ in blocks])
            path.unlink()
            if verdict is None and kubo_says is not None:
                disagreements.append((seed, what, f"verify passed, Kubo: {kubo_says[:120]}", data[:60].hex()))
            elif verdict is not None and kubo_says is None:
                if not _kubo_laxer(what, verdict):
                    disagreements.append((seed, what, f"Kubo took it, verify: {verdict[:120]}", data[:60].hex()))
                stricter += 1
            refused += verdict is not None
    assert disagreements == [], "\n".join(map(str, disagreements))
    assert 0.2 * cases < refused < 0.9 * cases, (refused, cases)  # the fuzz reaches both verdicts
    print(json.dumps({"cases": cases, "refused": refused, "stricter": stricter}))
