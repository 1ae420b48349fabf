"""One `add` of a whole tip tree, at the size of a 150,000-entity archive:
restore installs every tip this way, and it must finish, not hang."""

from arke_dr_pipeline.dr.archive.tips import tip_relpath

ENTITIES = 150_000


def _pi(i: int) -> str:
    return f"01K{i:023d}"  # a ULID-shaped PI: 26 characters


def test_a_tip_tree_of_150k_entities_is_added_in_one_call(client):
    files = sorted((tip_relpath(_pi(i)), f"tip-{i}".encode()) for i in range(ENTITIES))
    tree = client.add_tree(iter(files), wrap_dir="index")
    for i in (0, ENTITIES // 2, ENTITIES - 1):
        assert client.cat(f"{tree}/{tip_relpath(_pi(i))}") == f"tip-{i}".encode()
