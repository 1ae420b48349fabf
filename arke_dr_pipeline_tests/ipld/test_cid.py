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
