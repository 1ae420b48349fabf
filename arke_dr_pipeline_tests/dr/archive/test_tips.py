"""Reading tip files: the whole tree, or only some PIs through plain and HAMT directories."""

from arke_dr_pipeline.arke.models import tip_path
from arke_dr_pipeline.dr.archive.tips import iter_tips, read_tips, read_tips_of
from arke_dr_pipeline.ipld.cid import RAW, make_cid, parse_cid
from arke_dr_pipeline.ipld.unixfs_dir import Directory
from arke_dr_pipeline.simulate.testdata import GenSpec, generate


def test_some_tips_read_through_a_hamt_directory_equal_the_whole_tree(client, settings):
    gen = generate(client, settings, GenSpec(entities=5000, seed=4, image_fraction=0.0))
    every = read_tips(client, settings.index_root)
    assert every == gen.tips
    biggest = max({tip_path(pi, settings.index_root).rsplit("/", 1)[0] for pi in every},
                  key=lambda d: sum(tip_path(pi, settings.index_root).startswith(d) for pi in every))
    shard = Directory(client.block_get(client.files_stat(biggest)["Hash"]))
    assert shard.hamt, "the test needs a HAMT-sharded directory on the way"

    pis = sorted(every)[::37]
    rewritten = pis[0]
    # the way the Arke API writes a tip: a dag-pb file node over a raw leaf
    client.files_write(tip_path(rewritten, settings.index_root), (every[pis[1]] + "\n").encode())
    absent = ["01ZZZZZZZZZZZZZZZZZZZZZZZZ", pis[2][:-1] + ("0" if pis[2][-1] != "0" else "1")]
    some = read_tips_of(client, settings.index_root, pis + absent)
    assert some == {**{pi: every[pi] for pi in pis}, rewritten: every[pis[1]]}
    assert parse_cid(some[rewritten])


def test_no_tree_reads_as_none(client, settings):
    assert read_tips_of(client, settings.index_root, ["01ZZZZZZZZZZZZZZZZZZZZZZZZ"]) is None
    assert read_tips(client, settings.index_root) is None


def test_an_undecodable_tip_tree_is_an_anomaly_not_a_failed_snapshot(client, settings):
    from arke_dr_pipeline.dr.archive.snapshot import build_snapshot
    from arke_dr_pipeline.simulate.writer import ArchiveWriter

    gen = generate(client, settings, GenSpec(entities=20, events=40, seed=6, image_fraction=0.0))
    first = build_snapshot(client, settings)
    ArchiveWriter(client, settings, seed=2).run(5)
    # every first-level directory of the tip tree replaced by a file: no tip path resolves
    for top in {pi[:2] for pi in gen.tips}:
        client.files_rm(f"{settings.index_root}/{top}")
        client.files_write(f"{settings.index_root}/{top}", b"not a directory\n")
    second = build_snapshot(client, settings)
    assert second.incremental and second.new_events == 5 and second.seq == first.seq + 1
    assert len(second.anomalies) == 1 and second.anomalies[0].startswith("tip files not compared:")


def test_the_whole_tree_streams_through_file_nodes_and_blocks_linked_twice(client, settings, monkeypatch):
    gen = generate(client, settings, GenSpec(entities=40, seed=8, image_fraction=0.0))
    first, second, third = sorted(gen.tips)[:3]
    # the Arke API's form, a dag-pb node over raw leaves; its leaf is the very block of
    # `second`'s tip file
    client.files_write(tip_path(first, settings.index_root), gen.tips[second].encode())
    # in a directory the export reaches after it sent that block: Kubo sends a block
    # once, so this one is asked for by CID
    stray = "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"
    client.files_write(tip_path(stray, settings.index_root), gen.tips[third].encode())
    asked = []
    get_blocks = type(client).get_blocks
    monkeypatch.setattr(type(client), "get_blocks", lambda self, cids: asked.extend(cids) or get_blocks(self, cids))
    expected = {**gen.tips, first: gen.tips[second], stray: gen.tips[third]}
    assert read_tips(client, settings.index_root) == expected
    assert asked == [make_cid(RAW, gen.tips[third].encode())]
    assert sorted(iter_tips(client, settings.index_root, exact=True)) == sorted(expected.items())
