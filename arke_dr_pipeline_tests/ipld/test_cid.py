"""CID text: the same in every thread, from the first call on."""

import json
import subprocess
import sys

from multiformats import CID

from arke_dr_pipeline.ipld.cid import DAG_CBOR, make_cid

# The child formats and parses for the first time in eight threads at once;
# what it should get is worked out here, so the child's first use is in them.
FIRST_CALLS_IN_THREADS = """
import json, sys, threading
from arke_dr_pipeline.ipld.cid import cid_str, parse_cid

expected = json.load(sys.stdin)
sys.setswitchinterval(1e-6)
failed = []
def format_and_parse_all():
    try:
        for hex_cid, text in expected:
            assert cid_str(bytes.fromhex(hex_cid)) == text, text
            assert parse_cid(text).hex() == hex_cid, text
    except Exception as exc:
        failed.append(repr(exc))
threads = [threading.Thread(target=format_and_parse_all) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(failed), *sorted(set(failed)), sep="\\n")
"""


def test_cids_formatted_first_in_several_threads_at_once_are_all_right():
    v1 = [make_cid(DAG_CBOR, str(i).encode()) for i in range(200)]
    v0 = [c[2:] for c in v1[:50]]  # a CIDv0 is a bare sha2-256 multihash
    expected = json.dumps([(c.hex(), str(CID.decode(c).encode("base32"))) for c in v1]
                          + [(c.hex(), str(CID.decode(c))) for c in v0])
    assert all(text.startswith("Qm") for _, text in json.loads(expected)[200:])
    # a fresh interpreter each time: the first call is the one that raced
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", FIRST_CALLS_IN_THREADS], input=expected,
                             capture_output=True, text=True, check=True)
        assert out.stdout.splitlines()[0] == "0", out.stdout + out.stderr


def _spellings() -> list[str]:
    """Kubo's spelling of CIDs of every codec and hash length here, and each
    bent the ways a hand-edited or damaged text is: case, length, padding
    bits, alphabet, prefix, trailing bytes."""
    import hashlib

    from arke_dr_pipeline.ipld.cid import DAG_JSON, RAW, _b32encode, cid_str, uvarint

    cids = [make_cid(codec, str(i).encode()) for codec in (DAG_CBOR, RAW, DAG_JSON) for i in range(40)]
    cids.append(b"\x01\x71\x13\x40" + hashlib.sha512(b"x").digest())
    cids.append(b"\x01\x55\x00\x05hello")
    texts = [cid_str(c) for c in cids]
    bent = ["", "b", "B", "bafy", "b1", "b=", "bafy reih", "b\u00e9", "z", "Qm"]
    for t in texts:
        bent += [t[:-1], t[:-2], t[:-3], t + "a", t + "=", t.upper(), t[:5] + t[5].upper() + t[6:],
                 t[:-1] + ("a" if t[-1] != "a" else "b"), t[:-1] + chr(ord(t[-1]) + 1), t[:10] + "1" + t[11:],
                 t.replace("b", "f", 1), t[:20] + "\u00e9" + t[21:]]
    for c in cids[:10]:
        bent.append("b" + _b32encode(c + b"\x00"))
        bent.append("b" + _b32encode(c[:-1]))
        bent.append("b" + _b32encode(uvarint(2) + c[1:]))
    return texts + bent


def test_the_fast_cid_parser_agrees_with_the_reference_on_good_and_bent_text():
    from arke_dr_pipeline.ipld.cid import CIDError, parse_cid, parse_cid_python

    def outcome(parse, text):
        try:
            return parse(text).hex()
        except CIDError as exc:
            return f"refused: {exc}"

    spellings = _spellings()
    assert sum(1 for t in spellings if not outcome(parse_cid_python, t).startswith("refused")) >= 122
    assert [outcome(parse_cid, t) for t in spellings] == [outcome(parse_cid_python, t) for t in spellings]


def test_the_fast_cid_formatter_spells_every_cid_as_the_reference_does():
    import os
    import random

    from arke_dr_pipeline.ipld.cid import RAW, cid_str, cid_str_python, uvarint

    rng = random.Random(7)
    cids = [make_cid(codec, os.urandom(rng.randint(0, 64))) for codec in (DAG_CBOR, RAW) for _ in range(300)]
    # every length of an identity CID's digest (its text's padding bits vary with it), and CIDv0s
    cids += [b"\x01" + uvarint(RAW) + b"\x00" + uvarint(n) + os.urandom(n) for n in range(70)]
    cids += [c[2:] for c in cids[:20]]
    expected = [cid_str_python(c) for c in cids]
    assert len(set(expected)) == len(set(cids))
    assert [str(CID.decode(c).encode("base32")) if c[0] != 0x12 else str(CID.decode(c)) for c in cids] == expected
    assert [cid_str(c) for c in cids] == expected
    assert [cid_str(bytearray(c)) for c in cids[:20]] == expected[:20]
