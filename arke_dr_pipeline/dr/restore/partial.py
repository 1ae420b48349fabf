"""Restoring chosen entities into a live node, without touching the rest.

`arke-dr restore CAR --pi PI`: the backup is verified whole first, as for a
full restore; then each chosen entity's history (its tip manifest through
`prev`) and every component below it that the node lacks are imported and
pinned by a cover named `arke-dr partial`. The index pointer, the event
chain and every other entity stay as they are. With `tips`, the chosen
entities' tip files are written too, byte for byte as the snapshot kept
them; without, an operator can compare before pointing the archive at the
older version.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ...arke.models import tip_path
from ...errors import BadInput
from ...ipld.cid import cid_str, parse_cid
from ...kubo.client import KuboClient
from ..plumbing.config import Settings
from .repair import bring_back
from .whole import plan_restore

PARTIAL_PIN = "arke-dr partial"


@dataclass(kw_only=True)
class PartialResult:
    snapshot_cid: str
    entities: dict[str, dict] = field(default_factory=dict)  # PI -> {tip_cid, tip_written}
    blocks_imported: int = 0


def restore_entities(client: KuboClient, settings: Settings, car: str | os.PathLike, pis: list[str], *,
                     tips: bool = False, snapshot_cid: str | None = None, seq: int | None = None) -> PartialResult:
    plan = plan_restore(car, snapshot_cid=snapshot_cid, seq=seq)
    wanted = dict.fromkeys(pis)
    chosen = {pi: text for pi, text in plan.tips if pi in wanted}
    missing = [pi for pi in wanted if pi not in chosen]
    if missing:
        raise BadInput(f"{missing[0]} is not in the snapshot {plan.snapshot_cid} of {plan.car.name}"
                       + (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else ""))
    roots = {parse_cid(text.strip()) for text in chosen.values()}
    result = PartialResult(snapshot_cid=plan.snapshot_cid)
    result.blocks_imported = bring_back(client, plan.chain, roots, name=PARTIAL_PIN)
    for pi, text in sorted(chosen.items()):
        if tips:
            client.files_write(tip_path(pi, settings.index_root), text.encode())
        result.entities[pi] = {"tip_cid": cid_str(parse_cid(text.strip())), "tip_written": tips}
    return result
