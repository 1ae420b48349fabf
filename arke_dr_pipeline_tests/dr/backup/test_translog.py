"""The append-only log's proofs, against RFC 6962's recursive definitions."""

import hashlib
import json

import pytest
from click.testing import CliRunner

from arke_dr_pipeline.cli import main
from arke_dr_pipeline.dr.backup.translog import (
    Log,
    ProofError,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from arke_dr_pipeline.ipld.cid import DAG_CBOR, RAW, cid_str, make_cid


def mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def rfc_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return rfc_path(m, leaves[:k]) + [mth(leaves[k:])]
    return rfc_path(m - k, leaves[k:]) + [mth(leaves[:k])]


def rfc_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return rfc_subproof(m, leaves[:k], whole) + [mth(leaves[k:])]
    return rfc_subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def cids(n: int, salt: bytes = b"") -> list[bytes]:
    return [make_cid(RAW if i % 3 else DAG_CBOR, salt + str(i).encode()) for i in range(n)]


def write_inventory(path, texts):
    path.write_text("".join(f"{t}\tmanifest\tdag-cbor\t10\n" for t in sorted(texts)))


def logged(tmp_path, leaves: list[bytes]) -> Log:
    """A log holding `leaves` in this order (one inventory each, so the order is ours)."""
    log = Log(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    for i in range(len(leaves)):
        inv = tmp_path / f"inv-{i}.tsv"
        write_inventory(inv, [cid_str(x) for x in leaves[: i + 1]])
        log.append(inv)
    return log


def test_roots_and_proofs_equal_the_rfc_definitions(tmp_path):
    leaves = cids(21)
    log = logged(tmp_path, leaves)
    for n in range(1, 22):
        assert log.subtree(0, n) == mth(leaves[:n])
        for m in range(n):
            path = log.inclusion(m, n)
            assert path == rfc_path(m, leaves[:n])
            verify_inclusion(leaves[m], m, n, path, mth(leaves[:n]))
        for m in range(1, n + 1):
            proof = log.consistency(m, n)
            assert proof == rfc_subproof(m, leaves[:n], True)
            verify_consistency(m, n, mth(leaves[:m]), mth(leaves[:n]), proof)


def test_a_tampered_proof_or_a_rewritten_history_is_caught(tmp_path):
    leaves = cids(13)
    log = logged(tmp_path / "a", leaves)
    good = log.consistency(5, 13)
    old_root, new_root = mth(leaves[:5]), mth(leaves[:13])
    for i in range(len(good)):
        bad = list(good)
        bad[i] = bytes(32)
        with pytest.raises(ProofError):
            verify_consistency(5, 13, old_root, new_root, bad)
    with pytest.raises(ProofError):
        verify_consistency(5, 13, old_root, new_root, good[:-1])
    with pytest.raises(ProofError):
        verify_inclusion(leaves[4], 3, 13, log.inclusion(3, 13), new_root)
    # a history with leaf 2 taken out and the rest appended again: no proof links the two roots
    rewritten = leaves[:2] + leaves[3:] + cids(1, b"x")
    other = logged(tmp_path / "b", rewritten)
    with pytest.raises(ProofError, match="not a prefix"):
        verify_consistency(5, 13, old_root, mth(rewritten), other.consistency(5, 13))


def test_append_takes_only_new_cids_and_survives_a_crash_between_leaves_and_state(tmp_path):
    texts = [cid_str(c) for c in cids(30)]
    write_inventory(tmp_path / "one.tsv", texts[:10])
    write_inventory(tmp_path / "two.tsv", texts[:25])
    log = Log(tmp_path)
    first = log.append(tmp_path / "one.tsv")
    with open(tmp_path / "cid-log.hashes", "ab") as fh:  # leaves written, state never updated
        fh.write(b"\x01" * 64)
    second = log.append(tmp_path / "two.tsv")
    assert (first["size"], second["size"]) == (10, 25)
    assert second["root"] == mth([c for c in map(bytes, log.cids())]).hex()
    assert sorted(cid_str(c) for c in log.cids()) == sorted(texts[:25])
    (tmp_path / "one.tsv").unlink()
    (tmp_path / "two.tsv").unlink()
    write_inventory(tmp_path / "three.tsv", texts)  # the last inventory gone: the log itself says what is new
    assert log.append(tmp_path / "three.tsv")["size"] == 30


def test_cli_prove_and_verify_proof(tmp_path):
    """The CLI over two backups' sidecars; a third party holding the roots checks offline."""
    texts = [cid_str(c) for c in cids(40)]
    log = Log(tmp_path)
    for name, upto in (("arke-1-a", 12), ("arke-2-b", 40)):
        write_inventory(tmp_path / f"{name}.tsv", texts[:upto])
        entry = log.append(tmp_path / f"{name}.tsv")
        (tmp_path / f"{name}.car").write_bytes(b"")
        (tmp_path / f"{name}.json").write_text(json.dumps({"log": entry, "seq": 1}))
    runner = CliRunner()
    out = runner.invoke(main, ["prove", str(tmp_path / "arke-2-b.car"), "--since", str(tmp_path / "arke-1-a.car")])
    assert out.exit_code == 0, out.output
    proof = json.loads(out.output)
    (tmp_path / "p.json").write_text(out.output)
    old_root, new_root = proof["old"]["root"], proof["new"]["root"]
    ok = runner.invoke(main, ["verify-proof", str(tmp_path / "p.json"), "--old-root", old_root,
                              "--new-root", new_root])
    assert ok.exit_code == 0 and json.loads(ok.output)["ok"]
    wrong = runner.invoke(main, ["verify-proof", str(tmp_path / "p.json"), "--old-root", "00" * 32])
    assert wrong.exit_code == 5 and "not the one you hold" in wrong.output
    proof["path"][0] = "ff" * 32
    (tmp_path / "bad.json").write_text(json.dumps(proof))
    bad = runner.invoke(main, ["verify-proof", str(tmp_path / "bad.json")])
    assert bad.exit_code == 5 and bad.output.count("\n") == 1
    inc = runner.invoke(main, ["prove", str(tmp_path / "arke-1-a.car"), "--cid", texts[3]])
    (tmp_path / "i.json").write_text(inc.output)
    assert runner.invoke(main, ["verify-proof", str(tmp_path / "i.json"), "--root", old_root]).exit_code == 0
    absent = runner.invoke(main, ["prove", str(tmp_path / "arke-1-a.car"), "--cid", texts[30]])
    assert absent.exit_code == 1 and "is not among the first 12" in absent.output


@pytest.mark.parametrize("state", ["as written", "from an older tool", "with wrong peaks"])
def test_appends_from_the_recorded_peaks_or_from_every_leaf_give_the_same_tree(tmp_path, state):
    """The state records where the leaves end and the tree's perfect subtrees, so an append costs
    its new leaves; without them (or when they do not fold to the root) every leaf is read again."""
    leaves = cids(23)
    log = logged(tmp_path, leaves[:13])
    saved = json.loads((tmp_path / "cid-log.state").read_text())
    assert saved["bytes"] == (tmp_path / "cid-log.bin").stat().st_size
    if state == "from an older tool":
        saved = {k: v for k, v in saved.items() if k not in ("bytes", "peaks")}
    elif state == "with wrong peaks":
        saved["peaks"] = [[13, "00" * 32]]
    (tmp_path / "cid-log.state").write_text(json.dumps(saved))
    with open(tmp_path / "cid-log.bin", "ab") as fh:
        fh.write(b"\x05junk!")  # a leaf a crash left past the state
    inv = tmp_path / "inv-last.tsv"
    write_inventory(inv, [cid_str(x) for x in leaves])
    grown = log.append(inv)
    assert bytes.fromhex(grown["root"]) == mth(leaves[:13] + sorted(leaves[13:], key=cid_str))
    assert list(log.cids()) == leaves[:13] + sorted(leaves[13:], key=cid_str)


def test_a_delta_names_its_new_cids_and_the_log_is_the_one_a_merge_makes(tmp_path):
    leaves = cids(30)
    base, grown = [cid_str(x) for x in leaves[:20]], [cid_str(x) for x in leaves]
    merged, told = Log(tmp_path / "merged"), Log(tmp_path / "told")
    for log in (merged, told):
        log.folder.mkdir()
        write_inventory(log.folder / "base.tsv", base)
        write_inventory(log.folder / "grown.tsv", grown)
        log.append(log.folder / "base.tsv")
    new = sorted(grown[20:])
    assert told.append(told.folder / "grown.tsv", since="base.tsv", new=new) == \
        merged.append(merged.folder / "grown.tsv")
    assert list(told.cids()) == list(merged.cids())
    other = Log(tmp_path / "other")  # told of an inventory the log did not log last: the merge is made
    other.folder.mkdir()
    write_inventory(other.folder / "grown.tsv", grown)
    assert other.append(other.folder / "grown.tsv", since="base.tsv", new=new[:1])["size"] == 30
