"""Big buffers go back to the system when they are freed.

glibc raises its mmap threshold each time a mapped buffer is freed, up to 32 MiB. After the
first 32 MB snapshot block has come and gone, the next ones are carved from the heap, and the
heap keeps the room they leave: a full backup of the 470k-block archive held ~90 MB it no
longer used (measured: `malloc_trim` gave it back). A fixed threshold keeps every buffer past
4 MiB mapped, so freeing one unmaps it; smaller ones (the CAR reader's 1 MiB reads) still
reuse the heap.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
THRESHOLD = 4 << 20


def release_big_buffers() -> bool:
    """Set once at start; False where the C library is not glibc (nothing to tune there)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD))
    except (OSError, AttributeError):
        return False
