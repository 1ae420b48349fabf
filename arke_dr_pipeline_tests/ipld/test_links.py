"""Upstream's proof list left unbuilt: the same verdict, value and links as a whole decode."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arke_dr_pipeline.arke.snapshot_codec import snapshot_all_cids
from arke_dr_pipeline.ipld.cid import DAG_JSON, cid_str, make_cid
from arke_dr_pipeline.ipld.errors import BlockDecodeError
from arke_dr_pipeline.ipld.links import dag_json_links, decode_block, opening_strings

LINK = cid_str(make_cid(DAG_JSON, b'{"a":1}'))
TEXTS = st.text(alphabet=st.sampled_from(list('abz27AZ09",]\\[{} \x00\x1f\x7fé') + ["\u2028"]), max_size=12)
TAILS = st.sampled_from([
    ',"entries":[{"/":"' + LINK + '"}],"schema":"arke/snapshot@v2"}',
    ',"all_cids":["x"]}',  # the key twice: refused either way
    ',"n":NaN}',
    ',"x":{"/":"not a cid"}}',
    ',"x":1',
    '}',
    ' ,"x":2}',
])


def _verdict(data: bytes, skip: str | None):
    try:
        return dag_json_links(data, skip=skip)
    except BlockDecodeError:
        return "refused"


@settings(max_examples=400, deadline=None)
@given(items=st.lists(TEXTS, max_size=6), tail=TAILS, raw=st.booleans())
def test_skipping_the_proof_list_changes_nothing_but_the_list(items, tail, raw):
    body = ",".join('"' + t + '"' for t in items) if raw else json.dumps(items, separators=(",", ":"))[1:-1]
    data = ('{"all_cids":[' + body + "]" + tail).encode("utf-8", "surrogatepass")
    whole, skipped = _verdict(data, None), _verdict(data, "all_cids")
    if whole == "refused":
        assert skipped == "refused"
        return
    assert skipped != "refused"
    (value, links), (short, short_links) = whole, skipped
    assert short_links == links
    if opening_strings(data, "all_cids") is not None:
        assert short == {**value, "all_cids": []}
        assert snapshot_all_cids(data) == ({c for c in value["all_cids"] if c.isascii() and c.isalnum()})
    else:
        assert short == value


def test_the_api_s_proof_list_is_not_built_and_its_cids_are_read_from_the_bytes():
    cids = [cid_str(make_cid(DAG_JSON, str(i).encode())) for i in range(2000)]
    data = json.dumps({"all_cids": cids, "entries": [], "schema": "arke/snapshot@v2"},
                      separators=(",", ":")).encode()
    assert opening_strings(data, "all_cids") is not None
    assert dag_json_links(data, skip="all_cids")[0]["all_cids"] == []
    assert snapshot_all_cids(data) == set(cids) == set(decode_block(DAG_JSON, data)["all_cids"])


@pytest.mark.parametrize("data", [
    b'{"all_cids":["a"],"x":}',
    b'{"all_cids":["a"],"x":1,"x":2}',
    b'{"all_cids":["a"]',
])
def test_a_broken_block_is_refused_with_the_list_skipped(data):
    with pytest.raises(BlockDecodeError):
        dag_json_links(data, skip="all_cids")
    with pytest.raises(BlockDecodeError):
        snapshot_all_cids(data)
