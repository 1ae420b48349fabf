"""CID text: the same in every thread, from the first call on."""

import subprocess
import sys

FIRST_CALLS_IN_THREADS = """
import hashlib, sys, threading
from multiformats import CID
from arke_dr_pipeline.ipld.cid import DAG_CBOR, cid_str, make_cid

sys.setswitchinterval(1e-6)
cids = [make_cid(DAG_CBOR, str(i).encode()) for i in range(200)]
failed = []
def format_all():
    try:
        for c in cids:
            assert cid_str(c) == str(CID.decode(c).encode("base32")), c
    except Exception as exc:
        failed.append(repr(exc))
threads = [threading.Thread(target=format_all) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(failed))
"""


def test_cids_formatted_first_in_several_threads_at_once_are_all_right():
    # a fresh interpreter each time: the first call is the one that raced
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", FIRST_CALLS_IN_THREADS], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "0", out.stderr
