"""The CAR reader's file hash keeps up or holds the reader back: memory never grows with the CAR."""

import hashlib
import io
import os
import time

from arke_dr_pipeline.ipld.car import HASH_BACKLOG, READ_AHEAD, CarReader, car_header, car_section
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
