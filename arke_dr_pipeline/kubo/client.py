"""Kubo's RPC API over httpx.

Every call is a POST. Errors before streaming are HTTP 500 with a JSON body
`{"Message", "Code", "Type"}`; we surface `Message` with the call's name.
Errors after streaming started are invisible here (trailers), which is why
callers verify streamed CARs themselves.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import BinaryIO
from urllib.parse import urlparse

import httpx

from ..errors import BadInput
from ..ipld.cid import CidLike, cid_str
from .blocks import BlockSession, PipelinedBlockReader
from .errors import KuboError, KuboUnreachable

DEFAULT_API = "http://localhost:5001/api/v0"

IDEMPOTENT = frozenset(
    {
        "id", "version", "dag/get", "block/get", "block/stat", "pin/ls", "refs",
        "files/read", "files/stat", "files/ls", "files/flush", "pin/add", "dag/stat",
        "repo/stat", "refs/local", "cat",
    }
)


def normalize_api(url: str) -> str:
    url = url.rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise BadInput(f"not an RPC URL: {url!r} (expected http://HOST:PORT/api/v0)")
    if not parsed.path.endswith("/api/v0"):
        url = url + "/api/v0"
    return url


class KuboClient:
    """A Kubo RPC client with timeouts, bounded retries and named errors.

    `calls` counts RPC requests by name, so tests can prove that an operation
    makes a constant number of calls.
    """

    def __init__(
        self,
        api_url: str,
        *,
        timeout: float = 30.0,
        long_timeout: float = 3600.0,
        retries: int = 3,
        backoff: float = 0.2,
    ):
        self.api_url = normalize_api(api_url)
        self.timeout = timeout
        self.long_timeout = long_timeout
        self.retries = retries
        self.backoff = backoff
        self.calls: dict[str, int] = {}
        self._http = httpx.Client(
            base_url=self.api_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
            verify=self.api_url.startswith("https:"),  # building the TLS context costs 60 ms a start
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KuboClient:
        return self

    def __exit__(self, *_):
        self.close()

    def _count(self, call: str) -> None:
        self.calls[call] = self.calls.get(call, 0) + 1

    def _raise_for(self, call: str, arg: str | None, resp: httpx.Response) -> None:
        if resp.status_code == 200:
            return
        try:
            body = resp.read()
            err = json.loads(body)
            msg = err.get("Message") if isinstance(err, dict) and "Type" in err else None
        except Exception:
            msg = None
        if msg is None:
            msg = f"the server at {self.api_url} is not Kubo (HTTP {resp.status_code} without Kubo's error body)"
        raise KuboError(call, arg, msg.strip(), code=resp.status_code)

    def _unreachable(self, call: str, arg: str | None, exc: Exception) -> KuboUnreachable:
        kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "unreachable"
        return KuboUnreachable(call, arg, f"node at {self.api_url} {kind} ({type(exc).__name__})")

    def _params(self, arg, params) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        args = arg if isinstance(arg, list | tuple) else ([arg] if arg is not None else [])
        out.extend(("arg", _text(a)) for a in args)
        for k, v in (params or {}).items():
            if v is None:
                continue
            out.append((k, ("true" if v else "false") if isinstance(v, bool) else str(v)))
        return out

    def _arg_label(self, arg) -> str | None:
        if arg is None:
            return None
        return " ".join(map(_text, arg)) if isinstance(arg, list | tuple) else _text(arg)

    def request(
        self,
        call: str,
        arg=None,
        params: dict | None = None,
        *,
        files=None,
        content=None,
        headers=None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One call, fully read; retried with backoff when it is safe to repeat."""
        label = self._arg_label(arg)
        attempts = self.retries + 1 if call in IDEMPOTENT else 1
        for attempt in range(attempts):
            self._count(call)
            try:
                resp = self._http.post(
                    f"/{call}",
                    params=self._params(arg, params),
                    files=files,
                    content=content,
                    headers=headers,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.TransportError as exc:
                if attempt + 1 < attempts:
                    time.sleep(self.backoff * 2**attempt)
                    continue
                raise self._unreachable(call, label, exc) from None
            self._raise_for(call, label, resp)
            return resp
        raise AssertionError("unreachable")

    @contextmanager
    def stream(self, call: str, arg=None, params=None, *, content=None, headers=None,
               timeout: float | None = None) -> Iterator[httpx.Response]:
        """A streamed call; the caller reads the body and must verify it.

        `timeout` bounds the silence between two reads or writes, never the
        whole transfer: a 500 MB export may take minutes, a paused node must
        fail within the RPC timeout. Calls that answer only when their work
        is done (an import, a pin, a garbage collection) pass the long one."""
        label = self._arg_label(arg)
        self._count(call)
        t = timeout if timeout is not None else self.timeout
        try:
            with self._http.stream(
                "POST", f"/{call}", params=self._params(arg, params), content=content,
                headers=headers, timeout=httpx.Timeout(self.timeout, read=t, write=t),
            ) as resp:
                self._raise_for(call, label, resp)
                yield resp
        except httpx.TransportError as exc:
            raise self._unreachable(call, label, exc) from None

    def json(self, call: str, arg=None, params=None, **kw) -> dict:
        resp = self.request(call, arg, params, **kw)
        try:
            return resp.json()
        except ValueError:
            raise KuboError(call, self._arg_label(arg), "answer is not JSON (is this Kubo?)") from None

    def json_lines(self, call: str, arg=None, params=None, **kw) -> Iterator[dict]:
        """Stream newline-delimited JSON objects, raising on any error object."""
        with self.stream(call, arg, params, **kw) as resp:
            for line in resp.iter_lines():
                if not line.strip():
                    continue
                obj = json.loads(line)
                if obj.get("Err") or obj.get("Type") == "error":
                    raise KuboError(call, self._arg_label(arg), obj.get("Err") or obj.get("Message") or "failed")
                yield obj

    def id(self) -> dict:
        return self.json("id")

    def version(self) -> dict:
        return self.json("version")

    def wait_until_ready(self, timeout: float = 60.0, interval: float = 0.25) -> dict:
        """Poll `id` until the node answers: fresh containers refuse for a while."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                self._count("id")
                resp = self._http.post("/id", timeout=min(5.0, self.timeout))
                if resp.status_code == 200:
                    return resp.json()
                last = KuboError("id", None, f"HTTP {resp.status_code}")
            except (httpx.TransportError, ValueError) as exc:
                last = exc
            time.sleep(interval)
        raise KuboUnreachable(
            "id", None, f"node at {self.api_url} not ready after {timeout:.0f}s ({last})"
        )

    def dag_put(self, data: bytes, *, store_codec="dag-cbor", input_codec="dag-json",
                pin=False, allow_big_block=False) -> str:
        out = self.json(
            "dag/put", None,
            {"store-codec": store_codec, "input-codec": input_codec, "pin": pin,
             "allow-big-block": allow_big_block or None},
            files={"file": ("data", data, "application/octet-stream")},
        )
        return out["Cid"]["/"]

    def dag_get(self, cid: CidLike, *, output_codec: str = "dag-json") -> bytes:
        return self.request("dag/get", cid, {"output-codec": output_codec}).content

    def block_get(self, cid: CidLike) -> bytes:
        return self.request("block/get", cid).content

    def get_blocks(self, cids: Iterable[CidLike]) -> Iterator[tuple[CidLike, bytes]]:
        """Blocks in the order asked, pipelined; the caller hashes them against their CIDs."""
        reader = PipelinedBlockReader(self.api_url, timeout=self.timeout)
        try:
            yield from reader.get_many(cids)
        finally:
            self.calls["block/get"] = self.calls.get("block/get", 0) + reader.requests

    @contextmanager
    def block_session(self) -> Iterator[BlockSession]:
        """`block/get` one at a time on one kept-open connection (see kubo/blocks.py)."""
        reader = PipelinedBlockReader(self.api_url, timeout=self.timeout)
        session = reader.session()
        try:
            yield session
        finally:
            session.close()
            self.calls["block/get"] = self.calls.get("block/get", 0) + reader.requests

    def block_put(self, data: bytes, *, cid_codec: str, pin: bool = False,
                  allow_big_block: bool = False) -> str:
        out = self.json(
            "block/put", None,
            {"cid-codec": cid_codec, "mhtype": "sha2-256", "pin": pin,
             "allow-big-block": allow_big_block or None},
            files={"file": ("data", data, "application/octet-stream")},
        )
        return out["Key"]

    def block_put_many(self, blocks: list[bytes], *, cid_codec: str, allow_big_block: bool = False) -> list[str]:
        """Many blocks in one call (a snapshot's 78 chunks at 10x: one round trip
        instead of 78); Kubo answers a line per block, in order."""
        resp = self.request(
            "block/put", None, {"cid-codec": cid_codec, "mhtype": "sha2-256",
                                "allow-big-block": allow_big_block or None},
            files=[("file", ("data", data, "application/octet-stream")) for data in blocks],
        )
        return [json.loads(line)["Key"] for line in resp.text.splitlines() if line.strip()]

    def block_stat(self, cid: CidLike, *, offline: bool = True) -> dict:
        return self.json("block/stat", cid, {"offline": offline or None})

    @contextmanager
    def dag_export(self, cid: CidLike, *, timeout: float | None = None,
                   chunk_size: int | None = 1 << 20) -> Iterator[Iterator[bytes]]:
        """The CAR bytes of `cid`'s DAG as a stream. Status 200 proves nothing.

        `chunk_size=None` hands over bytes as they arrive, for a reader that
        stops early and should not have made Kubo traverse a megabyte ahead."""
        with self.stream("dag/export", cid, {"progress": False, "offline": True},
                         timeout=timeout) as resp:
            yield resp.iter_raw(chunk_size)

    def dag_import(self, car: BinaryIO | Iterable[bytes], *, pin_roots: bool = True,
                   allow_big_block: bool = False, timeout: float | None = None) -> list[dict]:
        """Upload a CAR as a streamed multipart body; fail on any `PinErrorMsg`."""
        boundary = "arke-dr-" + os.urandom(12).hex()
        roots: list[dict] = []
        for obj in self.json_lines(
            "dag/import", None,
            {"pin-roots": pin_roots, "allow-big-block": allow_big_block or None, "stats": True},
            content=_multipart_stream(boundary, "file", "backup.car", car),
            headers=_multipart_headers(boundary), timeout=timeout or self.long_timeout,
        ):
            root = obj.get("Root")
            if root is not None:
                if root.get("PinErrorMsg"):
                    raise KuboError("dag/import", root["Cid"]["/"], f"pinning the root failed: {root['PinErrorMsg']}")
                roots.append(root)
        return roots

    def pin_add(self, cid: CidLike, *, recursive: bool = True, name: str | None = None,
                timeout: float | None = None) -> None:
        self.request("pin/add", cid, {"recursive": recursive, "progress": False, "offline": True,
                                      "name": name}, timeout=timeout or self.long_timeout)

    def pin_ls(self, cid: CidLike | None = None, *, type: str = "recursive") -> dict[str, str]:
        try:
            out = self.json("pin/ls", cid, {"type": type})
        except KuboError as exc:
            if cid and "not pinned" in exc.kubo_message:
                return {}
            raise
        return {k: v["Type"] for k, v in out.get("Keys", {}).items()}

    def pin_names(self) -> dict[str, str]:
        """{cid: name} of every named recursive pin."""
        out = self.json("pin/ls", None, {"type": "recursive", "names": True})
        return {k: v.get("Name", "") for k, v in out.get("Keys", {}).items() if v.get("Name")}

    def pin_rm(self, cid: CidLike) -> None:
        self.request("pin/rm", cid, {"recursive": True}, timeout=self.long_timeout)

    def files_read(self, path: str) -> bytes:
        return self.request("files/read", path).content

    def files_write(self, path: str, data: bytes, *, create=True, truncate=True, parents=True,
                    flush=True, raw_leaves=True, cid_version=1) -> None:
        self.request(
            "files/write", path,
            {"create": create, "truncate": truncate, "parents": parents, "flush": flush,
             "raw-leaves": raw_leaves, "cid-version": cid_version},
            files={"file": ("data", data, "application/octet-stream")},
        )

    def files_mkdir(self, path: str, *, parents=True, flush=True, cid_version=1) -> None:
        self.request("files/mkdir", path,
                     {"parents": parents, "flush": flush, "cid-version": cid_version})

    def files_cp(self, src: str, dst: str, *, parents=True, flush=True) -> None:
        self.request("files/cp", [src, dst], {"parents": parents, "flush": flush})

    def files_mv(self, src: str, dst: str, *, flush=True) -> None:
        self.request("files/mv", [src, dst], {"flush": flush})

    def files_stat(self, path: str, *, timeout: float | None = None) -> dict | None:
        """None when the path does not exist."""
        try:
            return self.json("files/stat", path, timeout=timeout)
        except KuboError as exc:
            if "does not exist" in exc.kubo_message or "not exist" in exc.kubo_message:
                return None
            raise

    def files_rm(self, path: str, *, recursive=True, force=True) -> None:
        self.request("files/rm", path, {"recursive": recursive, "force": force}, timeout=self.long_timeout)

    def files_flush(self, path: str = "/") -> str:
        return self.json("files/flush", path).get("Cid", "")

    def add_tree(self, files: Iterable[tuple[str, bytes]], *, wrap_dir: str,
                 timeout: float | None = None) -> str:
        """Add many small files as one directory tree in one request; its root CID.

        `files` yields (relative path, content) in sorted order; parent
        directories are announced before their children, as Kubo's multipart
        reader expects. Nothing is pinned: the tree is meant for `files/cp`.
        `silent`: without it Kubo answers a line per file while the body is
        still being sent, and past ~100k files both sides block on full socket
        buffers (the request is sent whole before the answer is read); the
        directories are still announced, once the body is in.
        """
        boundary = "arke-dr-" + os.urandom(12).hex()
        root = None
        for obj in self.json_lines(
            "add", None,
            {"cid-version": 1, "raw-leaves": True, "pin": False, "progress": False, "silent": True},
            content=_multipart_tree(boundary, wrap_dir, files), headers=_multipart_headers(boundary),
            timeout=timeout or self.long_timeout,
        ):
            if obj.get("Name") == wrap_dir:
                root = obj["Hash"]
        if root is None:
            raise KuboError("add", wrap_dir, "no root directory in the answer")
        return root

    def add_bytes(self, data: bytes, *, cid_version=1, raw_leaves=True, pin=False) -> str:
        out = self.json("add", None, {"cid-version": cid_version, "raw-leaves": raw_leaves,
                                      "pin": pin, "progress": False},
                        files={"file": ("file", data, "application/octet-stream")})
        return out["Hash"]

    def cat(self, cid: CidLike) -> bytes:
        return self.request("cat", cid, {"offline": True}, timeout=self.long_timeout).content

    def repo_gc(self) -> int:
        removed = 0
        for _ in self.json_lines("repo/gc", None, {"quiet": True}):
            removed += 1
        return removed


def _multipart_headers(boundary: str) -> dict[str, str]:
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _multipart_stream(boundary: str, field: str, filename: str,
                      source: BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
    yield (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
        f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode()
    if hasattr(source, "read"):
        read: Callable[[int], bytes] = source.read
        while chunk := read(1 << 20):
            yield chunk
    else:
        yield from source
    yield f"\r\n--{boundary}--\r\n".encode()


def _multipart_tree(boundary: str, root: str, files: Iterable[tuple[str, bytes]]) -> Iterator[bytes]:
    from urllib.parse import quote

    announced: set[str] = set()

    def part(path: str, ctype: str, data: bytes = b"") -> bytes:
        head = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{quote(path, safe='')}\"\r\nContent-Type: {ctype}\r\n\r\n"
        ).encode()
        return head + data + b"\r\n"

    def dirs_of(path: str) -> Iterator[str]:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            yield "/".join(parts[:i])

    yield part(root, "application/x-directory")
    announced.add(root)
    for rel, data in files:
        full = f"{root}/{rel}"
        for d in dirs_of(full):
            if d not in announced:
                announced.add(d)
                yield part(d, "application/x-directory")
        yield part(full, "application/octet-stream", data)
    yield f"--{boundary}--\r\n".encode()


def _text(arg) -> str:
    """A binary CID (the core's one CID type) goes on the wire as Kubo spells it."""
    return cid_str(arg) if isinstance(arg, bytes) else str(arg)
