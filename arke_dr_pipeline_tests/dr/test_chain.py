"""The event chain listed in windows is the chain, whatever the window."""

import pytest

from arke_dr_pipeline.arke.models import Event
from arke_dr_pipeline.dr.chain import chain_cids, walk_events
from arke_dr_pipeline.dr.testdata import GenSpec, generate
from arke_dr_pipeline.ipld.cid import DAG_JSON, cid_str
from arke_dr_pipeline.ipld.links import decode_block


@pytest.fixture(scope="module")
def archive(kubo, tmp_path_factory):
    from arke_dr_pipeline.kubo.client import KuboClient

    from ..conftest import make_settings

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


@pytest.mark.parametrize("window", [1, 3, 13, 39, 40, 4096])
def test_windows_list_the_whole_chain_in_order(client, archive, window):
    expected = _followed(client, archive)
    assert len(expected) == 40
    assert list(chain_cids(client, archive, window=window)) == expected


def test_walk_stops_at_the_previous_snapshot_event(client, archive):
    chain = _followed(client, archive)
    walked = [cid_str(cid) for cid, _ in walk_events(client, archive, stop=chain[25])]
    assert walked == chain[:25]
