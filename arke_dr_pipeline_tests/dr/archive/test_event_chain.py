"""The event chain, read in windows of `dag/export` where Kubo sees its links
and one block at a time where it does not, is the chain, whatever the window
and whatever shape wrote it."""

import pytest

from arke_dr_pipeline.dr.archive.event_chain import ChainError, decode_event, event_blocks, walk_events
from arke_dr_pipeline.ipld.cid import cid_str, parse_cid
from arke_dr_pipeline.kubo.client import KuboClient
from arke_dr_pipeline.simulate.testdata import GenSpec, generate
from arke_dr_pipeline_tests.conftest import make_settings


@pytest.fixture(scope="module", params=["seed", "mixed", "api"])
def archive(request, kubo, tmp_path_factory):
    shape = request.param
    settings = make_settings(kubo.api_url, tmp_path_factory.mktemp("chain"), f"/arke-chain-{shape}")
    with KuboClient(kubo.api_url, timeout=30) as c:
        gen = generate(c, settings, GenSpec(entities=10, events=40, seed=9, image_fraction=0.0, shape=shape))
    return gen.head


def _followed(client, head: str) -> list[str]:
    """The seed's way: one `block/get` per event, following `prev`."""
    out, cid = [], head
    while cid:
        out.append(cid)
        event, _ = decode_event(parse_cid(cid), client.block_get(cid))
        cid = cid_str(event.prev) if event.prev else None
    return out


def unpin_all(client) -> None:
    for cid in client.pin_ls():
        client.request("pin/rm", cid)


@pytest.mark.parametrize("window", [1, 3, 13, 39, 40, 256])
def test_windows_read_the_whole_chain_in_order(client, archive, window):
    expected = _followed(client, archive)
    assert len(expected) == 40
    assert [cid_str(cid) for cid, _, _ in event_blocks(client, archive, window=window)] == expected


def test_walk_stops_at_the_previous_snapshot_event(client, archive):
    chain = _followed(client, archive)
    walked = [cid_str(cid) for cid, _ in walk_events(client, archive, stop=chain[25])]
    assert walked == chain[:25]


@pytest.mark.parametrize("window", [5, 256])
@pytest.mark.parametrize("shape", ["seed", "api"])
def test_a_missing_event_breaks_the_walk_naming_it(client, settings, window, shape):
    gen = generate(client, settings, GenSpec(entities=4, events=30, seed=11, image_fraction=0.0, shape=shape))
    chain = _followed(client, gen.head)
    unpin_all(client)
    client.request("block/rm", chain[17])
    with pytest.raises(ChainError, match=chain[17]):
        list(event_blocks(client, gen.head, window=window))
