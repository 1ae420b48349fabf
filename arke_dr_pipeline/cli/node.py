"""The node and the archive on it: doctor, status, and the generators that fill a test node."""

from __future__ import annotations

import click

from ..kubo.errors import KuboError
from .base import Ctx, _emit, main, operation


@main.command()
@click.pass_obj
@operation
def doctor(obj: Ctx):
    """Check the node: print its ID and Kubo version."""
    with obj.client(retries=0, timeout=min(obj.settings.timeout, 8.0)) as client:
        ident = client.id()
        version = client.version()
        if "Version" not in version or "ID" not in ident:
            raise KuboError("version", None, f"the server at {obj.settings.api_url} is not Kubo")
    _emit({"node": ident["ID"], "kubo": version["Version"], "system": version.get("System"),
           "golang": version.get("Golang"), "api": obj.settings.api_url},
          f"node {ident['ID']}\nkubo {version['Version']} ({version.get('System', '?')}, {version.get('Golang', '?')})"
          f"\napi  {obj.settings.api_url}")


@main.command()
@click.pass_obj
@operation
def status(obj: Ctx):
    """The archive on the node: pointer fields and the number of tip files, as JSON."""
    from ..dr.archive.pointer import read_pointer
    from ..dr.archive.tips import iter_tips

    with obj.client() as client:
        pointer = read_pointer(client, obj.settings.index_pointer_path)
        tips = iter_tips(client, obj.settings.index_root) if pointer else None
        tip_files = sum(1 for _ in tips or ())
    if pointer is None:
        _emit({"archive": False})
        return
    fields = ("event_head", "event_count", "total_count", "latest_snapshot_cid", "snapshot_seq")
    _emit({"archive": True, **{k: pointer.raw.get(k) for k in fields}, "tip_files": tip_files})


@main.command("gen-test-data")
@click.option("--entities", type=int, default=0, help="0: the seed's scenario (A, B, C; six events).")
@click.option("--events", type=int, default=None, help="Total events (default: 1-3 versions, long tail).")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--image-fraction", type=float, default=0.05, show_default=True,
              help="Share of versions that add a multi-block image.")
@click.option("--image-size", type=(int, int), default=(300_000, 700_000), show_default=True)
@click.option("--shape", type=click.Choice(["api", "seed", "mixed"]), default="api", show_default=True,
              help="api: as the Arke API writes (dag-cbor, plain-map links); seed: as the seed's generator; "
                   "mixed: begun by the seed, grown by the API.")
@click.pass_obj
@operation
def gen_test_data(obj: Ctx, entities, events, seed, image_fraction, image_size, shape):
    """Fill an empty node with an archive to test on."""
    from ..simulate.testdata import GenSpec, generate, seed_scenario

    with obj.client() as client:
        if entities == 0:
            result = seed_scenario(client, obj.settings, shape)
        else:
            spec = GenSpec(entities=entities, events=events, seed=seed, image_fraction=image_fraction,
                           image_min=image_size[0], image_max=image_size[1], shape=shape)
            result = generate(client, obj.settings, spec)
    _emit({**result.summary(), "shape": shape})


@main.command("simulate-writes")
@click.option("--events", type=click.IntRange(min=1), required=True, help="Events to append.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Events per second (default: as fast as the node takes them, in batches of 50).")
@click.option("--update-share", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of events that update an entity written in this run rather than create one.")
@click.option("--shape", type=click.Choice(["api", "seed"]), default="api", show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.pass_obj
@operation
def simulate_writes(obj: Ctx, events, rate, update_share, shape, seed):
    """Append events to an existing archive exactly as the Arke API does."""
    from ..simulate.writer import ArchiveWriter

    with obj.client() as client:
        writer = ArchiveWriter(client, obj.settings, seed=seed, shape=shape)
        appended = writer.run(events, rate=rate, update_share=update_share, show_progress=True)
    _emit({"appended": len(appended), "event_head": writer.head, "shape": shape})
