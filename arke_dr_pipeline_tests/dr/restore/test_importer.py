"""A CAR with a block `dag import` refuses (over 8 MiB) goes into a real Kubo whole."""

import os

from arke_dr_pipeline.dr.restore.importer import KUBO_SECTION_LIMIT, import_file, oversized_sections
from arke_dr_pipeline.ipld.car import CarWriter
from arke_dr_pipeline.ipld.cid import RAW, cid_str, make_cid


def test_an_oversized_block_is_put_on_its_own_and_the_rest_streams(client, tmp_path):
    small = [os.urandom(1000) for _ in range(5)]
    big = os.urandom(KUBO_SECTION_LIMIT + 1)
    blocks = [(make_cid(RAW, d), d) for d in small[:2] + [big] + small[2:]]
    car = tmp_path / "big.car"
    with CarWriter(car, [blocks[0][0]]) as out:
        for cid, data in blocks:
            out.add(cid, data)
    assert [s.cid for s in oversized_sections(car)] == [blocks[2][0]]
    import_file(client, car, big=True)
    for cid, data in blocks:
        assert client.block_get(cid_str(cid)) == data
