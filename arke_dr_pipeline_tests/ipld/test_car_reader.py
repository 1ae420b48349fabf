"""The CAR reader's file hash keeps up or holds the reader back: memory never grows with the CAR."""

import hashlib
import io
import os
import time

import pytest

from arke_dr_pipeline.ipld.car import HASH_BACKLOG, READ_AHEAD, CarError, CarReader, car_header, car_section
from arke_dr_pipeline.ipld.cid import RAW, make_cid


class SlowHash:
    """The file's sha256 on a machine whose other core is busy: each chunk takes a while."""

    def __init__(self, real):
        self.real = real

    def update(self, data):
        time.sleep(0.01)
        self.real.update(data)

    def hexdigest(self):
        return self.real.hexdigest()


def test_a_slow_file_hash_holds_the_reader_back_and_still_hashes_every_byte():
    blocks = [os.urandom(256 * 1024) for _ in range(160)]  # 40 MB, read much faster than it hashes here
    cids = [make_cid(RAW, b) for b in blocks]
    data = car_header([cids[0]]) + b"".join(car_section(c, b) for c, b in zip(cids, blocks, strict=True))
    reader = CarReader(io.BytesIO(data), hash_bytes=True)
    reader._sha = SlowHash(reader._sha)
    most, read = 0, []
    for block in reader:
        read.append(block.cid)
        most = max(most, reader._backlog_bytes)
    assert read == cids
    assert reader.sha256 == hashlib.sha256(data).hexdigest()
    assert most <= HASH_BACKLOG + READ_AHEAD


def _big_car(tmp_path, n=3):
    blocks = [os.urandom(3 << 20) for _ in range(n)] + [b"small"]
    cids = [make_cid(RAW, b) for b in blocks]
    data = car_header([cids[0]]) + b"".join(car_section(c, b) for c, b in zip(cids, blocks, strict=True))
    path = tmp_path / "big.car"
    path.write_bytes(data)
    return path, data, list(zip(cids, blocks, strict=True))


def test_big_blocks_from_a_file_read_whole_and_the_file_hash_counts_every_byte(tmp_path):
    path, data, blocks = _big_car(tmp_path)
    for stream in (open(path, "rb"), open(path, "rb", buffering=0), io.BytesIO(data), _Unseekable(data)):
        with stream:
            reader = CarReader(stream, hash_bytes=True)
            assert [(b.cid, b.data) for b in reader] == blocks
            assert reader.sha256 == hashlib.sha256(data).hexdigest()


def test_a_big_block_cut_short_is_refused_the_same_from_a_file_or_a_stream(tmp_path):
    path, data, _ = _big_car(tmp_path, n=2)
    for cut in (len(data) - 10, (3 << 20) + 100, 5000):
        errors = []
        for stream in (io.BytesIO(data[:cut]), _Unseekable(data[:cut])):
            with pytest.raises(CarError) as exc:
                list(CarReader(stream))
            errors.append(str(exc.value))
        assert errors[0] == errors[1] and "truncated CAR" in errors[0]


class _Unseekable(io.RawIOBase):
    """A stream read once, as Kubo's export is: the buffered path."""

    def __init__(self, data):
        self._inner = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, b):
        return self._inner.readinto(b)
