"""Adapters between httpx's byte iterators and file-like readers."""

from __future__ import annotations

from collections.abc import Iterator


class IterReader:
    """A `read(n)` over an iterator of byte chunks, for `CarReader`."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = iter(chunks)
        self._buf = b""
        self._pos = 0

    def read(self, n: int) -> bytes:
        avail = len(self._buf) - self._pos
        if avail >= n:
            out = self._buf[self._pos : self._pos + n]
            self._pos += n
            return out
        parts = [self._buf[self._pos :]]
        have = avail
        while have < n:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._buf, self._pos = b"", 0
                return b"".join(parts)
            parts.append(chunk)
            have += len(chunk)
        joined = b"".join(parts)
        self._buf, self._pos = joined, n
        return joined[:n]
