"""The event chain read in windows of `dag/export` is the chain, whatever the window."""

import pytest

from arke_dr_pipeline.arke.models import Event
from arke_dr_pipeline.dr.chain import ChainError, event_blocks, walk_events
from arke_dr_pipeline.dr.testdata import GenSpec, generate
from arke_dr_pipeline.ipld.cid import DAG_JSON, cid_str
from arke_dr_pipeline.ipld.links import decode_block
from arke_dr_pipeline.kubo.client import KuboClient

from ..conftest import make_settings


@pytest.fixture(scope="module")
def archive(kubo, tmp_path_factory):
    settings = make_settings(kubo.api_url, tmp_path_factory.mktemp("chain"), "/arke-chain")
    with KuboClient(kubo.api_url, timeout=30) as c:
        gen = generate(c, settings, GenSpec(entities=10, events=40, seed=9, image_fraction=0.0))
    return gen.head


def _followed(client, head: str) -> list[str]:
    """The seed's way: one `block/get` per event, following `prev`."""
    out, cid = [], head
    while cid:
        out.append(cid)
        event = Event.decode(decode_block(DAG_JSON, client.block_get(cid)), cid)
        cid = cid_str(event.prev) if event.prev else None
    return out


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
def test_a_missing_event_breaks_the_walk_naming_it(client, settings, window):
    gen = generate(client, settings, GenSpec(entities=4, events=30, seed=11, image_fraction=0.0))
    chain = _followed(client, gen.head)
    client.request("pin/rm", gen.head)
    client.request("block/rm", chain[17])
    with pytest.raises(ChainError, match=chain[17]):
        list(event_blocks(client, gen.head, window=window))
