"""CAR v1 framing, streamed: varint length, CID, block bytes.

No maintained Python library streams CARs with verification, so this is
ours. The reader never holds more than one section; a section larger than
`MAX_SECTION` is refused before it is read, so a corrupt length cannot make
us allocate gigabytes. CARv2 files are read through their inner CARv1.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import cbrrr

from ..errors import ArkeDrError
from .cid import CIDError, check_block, cid_str, split_cid, uvarint

MAX_SECTION = 256 << 20  # upstream writes its snapshot as one block: ~0.8 KB an entity (32 MB at 40,000)
MAX_HEADER = 1 << 20
READ_AHEAD = 1 << 20
# bytes read but not hashed yet: past this the reader waits for the hashing thread, which a
# loaded machine slows (a full backup's offline verification reached 460 MB without a bound)
HASH_BACKLOG = 8 << 20
CARV2_PRAGMA = bytes.fromhex("0aa16776657273696f6e02")


class CarError(ArkeDrError, ValueError):
    """A CAR that is malformed; the message says where."""


@dataclass(frozen=True)
class Block:
    cid: bytes
    data: bytes
    offset: int


class CarReader:
    """Iterate blocks of a CAR from a binary stream, checking framing.

    `verify=True` hashes every block against its CID. `sha256` accumulates
    the hash of every byte read, so a sidecar's checksum costs no second pass;
    it is computed on a thread of its own, beside the reader (hashlib lets go
    of the GIL for a megabyte). The stream is read a megabyte at a time and
    framed in memory.
    """

    def __init__(self, stream: BinaryIO, *, verify: bool = True, hash_bytes: bool = False):
        self._stream = stream
        self._verify = verify
        self._sha = hashlib.sha256() if hash_bytes else None
        self._hasher = ThreadPoolExecutor(1, thread_name_prefix="car-sha256") if hash_bytes else None
        self._hashed: Future | None = None
        self._backlog: deque[tuple[Future, int]] = deque()
        self._backlog_bytes = 0
        self._buf = b""
        self._pos = 0
        self._base = 0  # the offset of _buf[0] in the stream
        self._eof = False
        self._limit: int | None = None
        self._origin = stream.tell() if _seekable(stream) else None
        self._ahead = 0  # none while the header is read: a CARv2's limit is not known yet
        self.version = 1
        self.data_offset, self.data_size = 0, None
        self.roots = self._read_header()
        self._ahead = READ_AHEAD

    @property
    def sha256(self) -> str | None:
        if self._sha is None:
            return None
        if self._hashed is not None:
            self._hashed.result()
        return self._sha.hexdigest()

    @property
    def offset(self) -> int:
        """Bytes of the stream consumed so far."""
        return self._base + self._pos

    def _fill(self, need: int) -> bool:
        """At least `need` bytes buffered past the position; False if the stream ends first."""
        have = len(self._buf) - self._pos
        if have >= need:
            return True
        parts = [self._buf[self._pos :]]
        self._base += self._pos
        self._pos = 0
        while have < need and not self._eof:
            want = max(self._ahead, need - have)
            if self._limit is not None:
                want = min(want, self._limit - self._base - have)
            data = self._stream.read(want) if want > 0 else b""
            if not data:
                self._eof = True
                break
            if self._hasher is not None:
                self._hash(data)
            parts.append(data)
            have += len(data)
        self._buf = b"".join(parts)
        return have >= need

    def _hash(self, data: bytes) -> None:
        """One thread: the chunks are hashed in the order read, and at most HASH_BACKLOG wait."""
        self._hashed = self._hasher.submit(self._sha.update, data)
        self._backlog.append((self._hashed, len(data)))
        self._backlog_bytes += len(data)
        while len(self._backlog) > 1 and (self._backlog_bytes > HASH_BACKLOG or self._backlog[0][0].done()):
            oldest, size = self._backlog.popleft()
            oldest.result()
            self._backlog_bytes -= size

    def _read_exact(self, n: int, what: str) -> bytes:
        if not self._fill(n):
            self._pos = len(self._buf)
            raise CarError(f"truncated CAR: {what} ends at byte {self.offset}")
        data = self._buf[self._pos : self._pos + n]
        self._pos += n
        return data

    def _read_varint(self, what: str) -> int | None:
        """None at a clean end of file."""
        self._fill(9)
        buf, pos, start = self._buf, self._pos, self.offset
        if pos >= len(buf):
            return None
        value, shift = 0, 0
        for _ in range(9):
            if pos >= len(buf):
                self._pos = pos
                raise CarError(f"truncated CAR: {what} length ends at byte {self.offset}")
            b = buf[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                self._pos = pos
                return value
            shift += 7
        raise CarError(f"malformed CAR: {what} length at byte {start} is not a varint")

    def _read_header(self) -> list[bytes]:
        length = self._read_varint("header")
        if length is None:
            raise CarError("empty file: not a CAR")
        if length == 0 or length > MAX_HEADER:
            raise CarError(f"not a CAR: header length {length}")
        raw = self._read_exact(length, "header")
        if uvarint(length) + raw == CARV2_PRAGMA:
            return self._enter_v2()
        return self._parse_v1_header(raw)

    def _parse_v1_header(self, raw: bytes) -> list[bytes]:
        try:
            header = cbrrr.decode_dag_cbor(raw, cid_ctor=bytes)
        except Exception:
            raise CarError("not a CAR: header is not dag-cbor") from None
        if not isinstance(header, dict) or header.get("version") != 1:
            raise CarError(f"not a CAR v1: header {header!r:.80}")
        unknown = [k for k in header if k not in ("roots", "version")]
        if unknown:  # Kubo's reader refuses a key it does not know
            raise CarError(f"malformed CAR header: unknown key {unknown[0]!r:.40}")
        roots = header.get("roots")
        if not isinstance(roots, list) or not all(isinstance(r, bytes) for r in roots):
            raise CarError("malformed CAR header: roots is not a list of CIDs")
        if not roots:
            raise CarError("CAR header has no roots")
        for i, root in enumerate(roots):
            try:
                whole = split_cid(root)[0] == len(root)
            except CIDError as exc:
                raise CarError(f"malformed CAR header: root {i} is not a CID ({exc})") from None
            if not whole:  # Kubo's reader (go-cid's Cast) refuses it too
                raise CarError(f"malformed CAR header: root {i} is not a CID (trailing bytes)")
        return roots

    def _enter_v2(self) -> list[bytes]:
        self.version = 2
        fixed = self._read_exact(40, "CARv2 header")
        data_offset = int.from_bytes(fixed[16:24], "little")
        data_size = int.from_bytes(fixed[24:32], "little")
        if data_offset < self.offset:
            raise CarError("malformed CARv2: data offset inside the header")
        if data_offset - self.offset > MAX_HEADER:
            raise CarError(f"malformed CARv2: data offset {data_offset} leaves more than {MAX_HEADER} bytes of padding")
        if data_size == 0:
            raise CarError("malformed CARv2: data size 0")
        self._read_exact(data_offset - self.offset, "CARv2 padding")
        self.data_offset, self.data_size = data_offset, data_size
        self._limit = data_offset + data_size
        length = self._read_varint("inner header")
        if length is None or length == 0 or length > MAX_HEADER:
            raise CarError("malformed CARv2: inner CARv1 header missing")
        return self._parse_v1_header(self._read_exact(length, "inner header"))

    def __iter__(self) -> Iterator[Block]:
        while True:
            start = self.offset
            length = self._read_varint("section")
            if length is None:
                if self._limit is not None and self.offset < self._limit:
                    raise CarError(f"truncated CARv2: data ends at byte {self.offset}, its header says {self._limit}")
                if self._hasher is not None:
                    self._hasher.shutdown(wait=False)  # what was read is still hashed; the thread then ends
                return
            if length == 0:
                raise CarError(f"malformed CAR: the section at byte {start} is empty (length 0)")
            if length > MAX_SECTION:
                raise CarError(f"section at byte {start} claims {length} bytes, over the limit")
            big = self._big_section(start, length) if length > READ_AHEAD and self._origin is not None else None
            if big is not None:
                yield self._checked(*big, start)
                continue
            if not self._fill(length):
                self._pos = len(self._buf)
                raise CarError(f"truncated CAR: section at byte {start} ends at byte {self.offset}")
            buf, pos = self._buf, self._pos
            self._pos = pos + length
            try:
                end = split_cid(buf, pos)[0]
                if end > pos + length:  # read past the section: say why on the section alone
                    end = pos + split_cid(buf[pos : pos + length])[0]
            except CIDError:
                try:
                    split_cid(buf[pos : pos + length])
                except CIDError as exc:
                    raise CarError(f"bad CID in section at byte {start}: {exc}") from None
                raise
            cid = buf[pos:end]
            data = buf[end : pos + length]
            if length > READ_AHEAD:  # a big block: the buffer it came in goes now, not with the next one
                self._buf, self._base, self._pos = buf[pos + length :], self._base + pos + length, 0
            del buf
            yield self._checked(cid, data, start)

    def _checked(self, cid: bytes, data: bytes, start: int) -> Block:
        if self._verify:
            try:
                check_block(cid, data)
            except CIDError as exc:
                raise CarError(f"block {cid_str(cid)} at byte {start}: {exc}") from None
        return Block(cid, data, start)

    def _big_section(self, start: int, length: int) -> tuple[bytes, bytes] | None:
        """(CID, data) of a section past READ_AHEAD, its data read from the file in one piece.

        Framed in memory, a 32 MB snapshot block was there three times at once (the chunk
        read, the buffer joined, the slice), seven of them one after another in a full
        backup's CAR. None leaves the section to the buffered path (which also names
        what is wrong with it)."""
        self._fill(min(length, 4096))
        buf, pos = self._buf, self._pos
        if len(buf) - pos >= length:
            return None
        head = buf[pos : pos + length]
        try:
            cid_len = split_cid(head)[0]
        except CIDError:
            return None
        data_at = self._base + pos + cid_len
        end = self._base + pos + length
        if self._limit is not None and end > self._limit:
            return None
        read_to = self._base + len(buf)
        self._stream.seek(self._origin + data_at)
        data = self._stream.read(end - data_at)
        self._buf, self._base, self._pos = b"", data_at + len(data), 0
        if len(data) < end - data_at:
            self._eof = True
            raise CarError(f"truncated CAR: section at byte {start} ends at byte {self.offset}")
        if self._hasher is not None:
            self._hash(memoryview(data)[read_to - data_at :])
        return head[:cid_len], data


def _seekable(stream: BinaryIO) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def car_header(roots: list[bytes]) -> bytes:
    raw = cbrrr.encode_dag_cbor({"roots": [cbrrr.CID(r) for r in roots], "version": 1})
    return uvarint(len(raw)) + raw


def car_section(cid: bytes, data: bytes) -> bytes:
    return uvarint(len(cid) + len(data)) + cid + data


def replace_root(path: str | os.PathLike, placeholder: bytes, root: bytes) -> None:
    """Put `root` where `placeholder` was, in the header of a CAR written
    before its root was known; both CIDs must have the same length."""
    old, new = car_header([placeholder]), car_header([root])
    if len(old) != len(new):
        raise ValueError(f"root {cid_str(root)} does not fit the placeholder's header")
    with open(path, "r+b") as fh:
        if fh.read(len(old)) != old:
            raise ValueError(f"{path} does not start with the placeholder header")
        fh.seek(0)
        fh.write(new)


class CarWriter:
    """Write a CAR to `path` through a temporary file renamed on close,
    hashing what it writes (`sha`, `size`) so no second read is needed."""

    def __init__(self, path: str | os.PathLike, roots: list[bytes]):
        self.path = os.fspath(path)
        self._tmp = f"{self.path}.partial"
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self._fh = open(self._tmp, "wb", buffering=1 << 20)
        self.sha = hashlib.sha256()
        self.size = 0
        self.blocks = 0
        self._write(car_header(roots))

    def _write(self, data: bytes) -> None:
        try:
            self._fh.write(data)
        except OSError as exc:
            raise self._named(exc) from None
        self.sha.update(data)
        self.size += len(data)

    def _named(self, exc: OSError) -> OSError:
        """A full disk said with the file it filled: `<path>: No space left on device`."""
        return OSError(exc.errno, exc.strerror or str(exc), self._tmp)

    def add(self, cid: bytes, data: bytes) -> None:
        self._write(car_section(cid, data))
        self.blocks += 1

    def close(self) -> None:
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
        except OSError as exc:
            raise self._named(exc) from None
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Safe after `close` (nothing left to remove) and on a full disk,
        where closing fails the buffered write again."""
        try:
            self._fh.close()
        except OSError:
            pass
        finally:
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)

    def __enter__(self) -> CarWriter:
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.close()
        else:
            self.abort()
