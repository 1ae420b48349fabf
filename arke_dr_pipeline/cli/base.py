"""What every verb shares: the global options, one error line and an exit code by class, `--json`."""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
from dataclasses import replace
from functools import wraps

import click

from .. import __version__
from ..dr.plumbing.config import Settings
from ..dr.plumbing.memory import release_big_buffers
from ..dr.verify.dagcheck import BackupInvalid
from ..errors import ArkeDrError
from ..kubo.client import KuboClient, normalize_api


def _json_mode() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and getattr(ctx.find_root().obj, "json", False))


def _fields(exc: BaseException | None) -> dict:
    """The facts an error names, as keys: scripts and Dagster read them without parsing the line."""
    out: dict = {}
    for attr, key in (("cid", "cid"), ("problem", "problem"), ("call", "call"), ("arg", "arg")):
        value = getattr(exc, attr, None)
        if isinstance(value, str | int):
            out[key] = value
    if isinstance(exc, OSError) and exc.filename:
        out["file"] = str(exc.filename)
    return out


def _fail(msg: str, code: int = 1, exc: BaseException | None = None):
    """The one error line on stderr; with --json, also the error as the one document on stdout
    (unless the command already wrote its result, as `export-car` does before exit 8)."""
    line = " ".join(str(msg).split())
    ctx = click.get_current_context(silent=True)
    if _json_mode() and not getattr(ctx.find_root().obj, "emitted", False):
        _out({"error": {"class": type(exc).__name__ if exc else "Error", "message": line, "exit": code,
                        **_fields(exc)}})
    click.echo(f"arke-dr: error: {line}", err=True)
    sys.exit(code)


def _emit(doc: dict, text: str | None = None) -> None:
    """A command's result: the JSON document with --json, else its text (the document when it has none)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.find_root().obj is not None:
        ctx.find_root().obj.emitted = True
    if _json_mode() or text is None:
        _out(doc)
    elif text:
        click.echo(text)


# Exit codes by class, for scripts (README: "Exit codes"): 1 any other failure, 2 bad input,
# 3 another operation holds the archive, 4 node unreachable, 5 backup invalid, 6 restore
# refused, 7 offsite error, 8 backup made without blocks the node lost, 130 interrupted,
# 143 terminated.
EXIT_CODES = (("BadInput", 2), ("PathRefused", 2), ("LockBusy", 3), ("KuboUnreachable", 4),
              ("BackupInvalid", 5), ("NewerFormat", 5), ("RestoreRefused", 6), ("OffsiteError", 7),
              ("LossRefused", 2))


class Terminated(KeyboardInterrupt):
    """SIGTERM (`docker stop`, systemd, `kill`), raised where the operation is, as Ctrl-C is:
    the default action ended the process on the spot, and a full backup stopped that way
    left its staged CAR (4 GB at 10x) until the next backup, and its temporary files."""


def _terminate(signum, frame):
    raise Terminated()


def exit_code(exc: BaseException) -> int:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return next((code for name, code in EXIT_CODES if name in names), 1)


def operation(fn):
    """One clear line and a non-zero exit, by class, for every failure we know of."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BackupInvalid as exc:
            _fail(f"backup invalid: {exc}", exit_code(exc), exc)
        except ArkeDrError as exc:
            _fail(str(exc), exit_code(exc), exc)
        except OSError as exc:  # a local file: disk full, permissions; the path is in the message
            _fail(f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}", 1, exc)
        except Terminated:
            _fail("terminated", 143)
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return wrapper


def seconds_ok(value: float) -> bool:
    """A timeout a socket takes: positive and finite (0 would make every call "unreachable")."""
    return 0 < value <= 7 * 86400 and math.isfinite(value)


def _out(obj) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True))


class Ctx:
    """The environment's settings (read once), overridden by the global options."""

    def __init__(self, api: str | None, timeout: float | None, transport: str | None, as_json: bool = False):
        self.json = as_json
        self.emitted = False
        env = Settings.from_env()
        self.settings = replace(env, api_url=api or env.api_url, timeout=env.timeout if timeout is None else timeout,
                                transport=transport or env.transport)
        normalize_api(self.settings.api_url)

    @property
    def transport(self) -> str:
        return self.settings.transport

    def client(self, **kw) -> KuboClient:
        kw.setdefault("timeout", self.settings.timeout)
        return KuboClient(self.settings.api_url, long_timeout=self.settings.export_timeout, **kw)


class SeedNames(click.Group):
    """The seed's script names still work where an operator types them (`restore_from_car`,
    `generate_test_data`, underscores for dashes), without crowding `--help`."""

    ALIASES = {"restore-from-car": "restore", "generate-test-data": "gen-test-data"}

    def get_command(self, ctx, name):
        found = super().get_command(ctx, name)
        if found is None:
            name = name.replace("_", "-")
            found = super().get_command(ctx, self.ALIASES.get(name, name))
        return found

    def resolve_command(self, ctx, args):
        _, command, rest = super().resolve_command(ctx, args)
        return command.name if command else None, command, rest


@click.group(cls=SeedNames, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="arke-dr")
@click.option("--api", default=None, show_default="IPFS_API_URL, IPFS_API, http://localhost:5001/api/v0",
              help="Kubo RPC URL.")
@click.option("--timeout", type=float, default=None,
              show_default="ARKE_RPC_TIMEOUT, 30", help="Seconds per RPC call.")
@click.option("--transport", type=click.Choice(["http", "docker"]), default=None, show_default="ARKE_TRANSPORT, http",
              help="How CARs reach the node: HTTP, or `ipfs` inside CONTAINER_NAME via docker exec.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON document on stdout: the result, or {\"error\": {class, message, exit, ...}}.")
@click.pass_context
def main(ctx, api: str | None, timeout: float | None, transport: str | None, as_json: bool):
    """Disaster recovery for the Arke IPFS archive."""
    release_big_buffers()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    ctx.obj = type("Early", (), {"json": as_json, "emitted": False})()
    if timeout is not None and not seconds_ok(timeout):
        _fail("--timeout must be a positive number of seconds", 2)
    try:
        ctx.obj = Ctx(api, timeout, transport, as_json)
    except ArkeDrError as exc:
        _fail(str(exc), 2, exc)
