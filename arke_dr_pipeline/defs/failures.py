"""Our errors as Dagster failures: the one line first, its facts as metadata.

An exception that escapes a step reaches the UI as
`DagsterExecutionStepExecutionError`, with the useful line second, under
framework frames, and the run's failure shows only the wrapper. A
`dg.Failure` is shown as it is: its description is the line the CLI prints,
and the node, CID, file or call it names are metadata a sensor or a search
can use without parsing text.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import dagster as dg

from ..dr.plumbing.config import Settings
from ..dr.verify.dagcheck import BackupInvalid
from ..errors import ArkeDrError
from ..kubo.errors import KuboError


def as_failure(exc: BaseException, node: str | None = None) -> dg.Failure:
    meta: dict = {"error": dg.MetadataValue.text(type(exc).__name__)}
    if node:
        meta["node"] = dg.MetadataValue.text(node)
    if isinstance(exc, KuboError):
        meta["call"] = dg.MetadataValue.text(exc.call)
        if exc.arg:
            meta["arg"] = dg.MetadataValue.text(str(exc.arg))
    if isinstance(exc, BackupInvalid) and exc.cid:
        meta["cid"] = dg.MetadataValue.text(exc.cid)
    if isinstance(exc, OSError) and exc.filename:
        meta["file"] = dg.MetadataValue.path(str(exc.filename))
    text = str(exc) if not isinstance(exc, OSError) or isinstance(exc, ArkeDrError) else \
        f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}"
    prefix = "backup invalid: " if isinstance(exc, BackupInvalid) else ""
    return dg.Failure(description=" ".join(f"{prefix}{text}".split())[:2000], metadata=meta)


def speaks_dagster(fn):
    """Raise our errors (and a local file's) as `dg.Failure`; anything else is a bug and keeps its traceback."""

    @functools.wraps(fn)
    def step(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except dg.Failure:
            raise
        except (ArkeDrError, OSError) as exc:
            raise as_failure(exc, _node(kwargs)) from None

    return step


def _node(kwargs: dict) -> str | None:
    kubo = kwargs.get("kubo")
    try:
        return replace(Settings.from_env(), **kubo.overrides()).api_url if kubo is not None else None
    except Exception:
        return None
