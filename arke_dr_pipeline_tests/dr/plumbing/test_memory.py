"""The threshold is set where the C library is glibc (this machine's), and a freed big buffer leaves the process."""

import subprocess
import sys

PROGRAM = """
import sys
from arke_dr_pipeline.dr.plumbing.memory import release_big_buffers
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) >> 10
if sys.argv[1] == "set":
    assert release_big_buffers()
first = bytes(32 << 20); del first  # glibc raises its threshold past this one
kept = []
for _ in range(6):
    block = bytearray(24 << 20); block[::4096] = b"x" * len(block[::4096]); kept.append(bytes(16))
    del block
    small = [bytes(100) for _ in range(1000)]; kept.append(small)
print(rss())
"""


def _rss_after(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_freed_big_buffers_leave_the_process_with_the_threshold_set():
    assert _rss_after("set") + 16 < _rss_after("default")
