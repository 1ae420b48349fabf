"""Many `block/get` calls pipelined on one HTTP/1.1 connection.

Kubo has no RPC that returns many blocks except `dag/export`, and its
selector traversal keeps per-level state: on a 8,000-event chain it peaks
at 2.2 GB, on 100k it exhausts the machine. So deep DAGs are read block by
block. One request per block through httpx runs at ~1,000 blocks/s, bound
by client overhead; pipelining requests on a raw connection (Go's server
answers them in order) reaches ~6,000 blocks/s with a bounded window.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
from collections.abc import Iterable, Iterator
from urllib.parse import quote, urlparse

from ..ipld.cid import CidLike, cid_str
from .errors import KuboError, KuboUnreachable

_DONE = object()


class PipelinedBlockReader:
    def __init__(self, api_url: str, *, timeout: float = 30.0, window: int = 256, batch: int = 32):
        u = urlparse(api_url)
        self.host, self.port = u.hostname or "localhost", u.port or 80
        self.path = u.path.rstrip("/")
        self.netloc = u.netloc
        self.api_url = api_url
        self.timeout = timeout
        self.window = window
        self.batch = batch
        self.requests = 0

    def _request(self, cid: CidLike) -> bytes:
        return (
            f"POST {self.path}/block/get?arg={quote(cid_str(cid))}&offline=true HTTP/1.1\r\n"
            f"Host: {self.netloc}\r\nContent-Length: 0\r\n\r\n"
        ).encode()

    def get_many(self, cids: Iterable[CidLike]) -> Iterator[tuple[CidLike, bytes]]:
        """(cid, bytes) in the order given; stops early without leaking when closed."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise KuboUnreachable("block/get", None, f"node at {self.api_url} unreachable ({exc})") from None
        sock.settimeout(self.timeout)
        pending: queue.Queue = queue.Queue(self.window)
        stop = threading.Event()
        failure: list[BaseException] = []

        def writer() -> None:
            buf: list[bytes] = []
            try:
                for cid in cids:
                    if stop.is_set():
                        return
                    pending.put(cid)
                    buf.append(self._request(cid))
                    if len(buf) >= self.batch or pending.qsize() < self.batch:
                        sock.sendall(b"".join(buf))
                        buf.clear()
                if buf:
                    sock.sendall(b"".join(buf))
            except BaseException as exc:  # surfaced to the reader
                if not stop.is_set():
                    failure.append(exc)
            finally:
                pending.put(_DONE)

        thread = threading.Thread(target=writer, name="block-get-writer", daemon=True)
        thread.start()
        stream = sock.makefile("rb", buffering=1 << 20)
        try:
            while True:
                cid = pending.get()
                if cid is _DONE:
                    if failure:
                        raise failure[0]
                    return
                self.requests += 1
                try:
                    data = self._read_response(stream, cid)
                except (ValueError, IndexError):
                    raise KuboUnreachable(
                        "block/get", cid, f"node at {self.api_url} broke off its answer") from None
                yield cid, data
        except (TimeoutError, OSError) as exc:
            raise KuboUnreachable(
                "block/get", None, f"node at {self.api_url} stopped answering ({exc})") from None
        finally:
            stop.set()
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
            while thread.is_alive():
                try:
                    pending.get_nowait()
                except queue.Empty:
                    thread.join(0.05)

    def session(self) -> BlockSession:
        return BlockSession(self)

    def _read_response(self, stream, cid: CidLike) -> bytes:
        status = stream.readline()
        if not status:
            raise KuboUnreachable("block/get", cid, f"node at {self.api_url} closed the connection")
        code = int(status.split(b" ", 2)[1])
        headers = _read_fields(stream)
        body, trailers = self._read_body(stream, headers)
        if code != 200:
            try:
                msg = json.loads(body).get("Message", "")
            except ValueError:
                msg = body.decode(errors="replace")
            raise KuboError("block/get", cid, msg.strip() or f"HTTP {code}", code=code)
        if trailers.get(b"x-stream-error"):
            raise KuboError("block/get", cid, trailers[b"x-stream-error"].decode(errors="replace"))
        return body

    @staticmethod
    def _read_body(stream, headers: dict[bytes, bytes]) -> tuple[bytes, dict[bytes, bytes]]:
        if b"content-length" in headers:
            return stream.read(int(headers[b"content-length"])), {}
        if headers.get(b"transfer-encoding", b"").lower() != b"chunked":
            raise KuboError("block/get", None, "unexpected HTTP framing from the node")
        parts = []
        while True:
            size = int(stream.readline().split(b";", 1)[0], 16)
            if size == 0:
                break
            parts.append(stream.read(size))
            stream.readline()
        return b"".join(parts), _read_fields(stream)


def _read_fields(stream) -> dict[bytes, bytes]:
    """Header or trailer lines up to the blank line, names lowercased."""
    fields: dict[bytes, bytes] = {}
    while True:
        line = stream.readline()
        if line in (b"\r\n", b"\n", b""):
            return fields
        k, _, v = line.partition(b":")
        fields[k.strip().lower()] = v.strip()


class BlockSession:
    """`block/get` one at a time on one kept-open connection.

    For walks where the next CID is known only once the last block is
    decoded (a chain linked by plain maps): no pipelining is possible, but a
    loopback round trip costs far less than a new request through httpx.
    """

    def __init__(self, reader: PipelinedBlockReader):
        self.reader = reader
        try:
            self.sock = socket.create_connection((reader.host, reader.port), timeout=reader.timeout)
        except OSError as exc:
            raise KuboUnreachable("block/get", None, f"node at {reader.api_url} unreachable ({exc})") from None
        self.stream = self.sock.makefile("rb", buffering=1 << 16)

    def get(self, cid: CidLike) -> bytes:
        self.reader.requests += 1
        try:
            self.sock.sendall(self.reader._request(cid))
            return self.reader._read_response(self.stream, cid)
        except (ValueError, IndexError):
            raise KuboUnreachable(
                "block/get", cid, f"node at {self.reader.api_url} broke off its answer") from None
        except (TimeoutError, OSError) as exc:
            raise KuboUnreachable(
                "block/get", cid, f"node at {self.reader.api_url} stopped answering ({exc})") from None

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


def export_stream(api_url: str, cid: CidLike, *, timeout: float = 30.0) -> Iterator[bytes]:
    """The body of `dag/export cid` (offline) as its HTTP chunks, read off a raw connection.

    Kubo writes a CAR in writes of a few bytes each (a length, a CID, a
    block); through httpx every one is an event of the HTTP parser, and that
    parsing took more time than Kubo's export itself. A failure Kubo reports
    in its trailer, after the status said 200, is raised at the end.
    """
    u = urlparse(api_url)
    path = u.path.rstrip("/")
    try:
        sock = socket.create_connection((u.hostname or "localhost", u.port or 80), timeout=timeout)
    except OSError as exc:
        raise KuboUnreachable("dag/export", cid, f"node at {api_url} unreachable ({exc})") from None
    try:
        sock.sendall((f"POST {path}/dag/export?arg={quote(cid_str(cid))}&offline=true&progress=false HTTP/1.1\r\n"
                      f"Host: {u.netloc}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").encode())
        stream = sock.makefile("rb", buffering=1 << 20)
        status = stream.readline()
        if not status:
            raise KuboUnreachable("dag/export", cid, f"node at {api_url} closed the connection")
        code = int(status.split(b" ", 2)[1])
        headers = _read_fields(stream)
        if code != 200 or headers.get(b"transfer-encoding", b"").lower() != b"chunked":
            body, _ = PipelinedBlockReader._read_body(stream, headers)
            try:
                msg = json.loads(body).get("Message", "")
            except (ValueError, AttributeError):
                msg = body.decode(errors="replace")
            raise KuboError("dag/export", cid, msg.strip() or f"HTTP {code}", code=code)
        while True:
            size = int(stream.readline().split(b";", 1)[0], 16)
            if size == 0:
                break
            yield stream.read(size)
            stream.readline()
        error = _read_fields(stream).get(b"x-stream-error")
        if error:
            raise KuboError("dag/export", cid, error.decode(errors="replace"))
    except (ValueError, IndexError):
        raise KuboUnreachable("dag/export", cid, f"node at {api_url} broke off its answer") from None
    except (TimeoutError, OSError) as exc:
        raise KuboUnreachable("dag/export", cid, f"node at {api_url} stopped answering ({exc})") from None
    finally:
        sock.close()
