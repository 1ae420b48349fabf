"""Moving CARs and blocks in and out of the node: over HTTP, or through `docker exec`.

The docker transport is the seed's way (the `ipfs` CLI inside CONTAINER_NAME,
files copied in and out of the container); it needs the Docker socket, so it
is opt-in. Both answer the same calls with the same results and errors.
The Docker hop itself sits behind `ExecBackend`, the only seam the tests
replace: they run the very argv a container would run against a local node.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from ..errors import BadInput
from .client import KuboClient
from .errors import KuboError, KuboUnreachable

CHUNK = 1 << 20


class ExecBackend(Protocol):
    def run(self, argv: list[str]) -> Iterator[bytes]:
        """Stream stdout; raise KuboError naming argv on a non-zero exit."""

    def put_file(self, local: Path, remote: str) -> None: ...

    def remove(self, remote: str) -> None: ...


def _cli_error(argv: list[str], stderr: bytes, code: int) -> KuboError:
    lines = [ln.strip() for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    msg = next((ln[len("Error: "):] for ln in lines if ln.startswith("Error: ")), lines[-1] if lines else "")
    call = "/".join(argv[1:3]) if len(argv) > 2 else " ".join(argv)
    return KuboError(call, argv[-1] if len(argv) > 3 else None, msg or f"exit status {code}", code=code)


class DockerExecBackend:
    """The real hop: Docker SDK `exec_run`, `put_archive`."""

    def __init__(self, container_name: str):
        import docker

        try:
            self._container = docker.from_env().containers.get(container_name)
        except Exception as exc:
            raise KuboUnreachable("docker exec", container_name, f"container not reachable: {exc}") from None

    def run(self, argv: list[str]) -> Iterator[bytes]:
        exec_id = self._container.client.api.exec_create(self._container.id, argv, stdout=True, stderr=True)
        out = self._container.client.api.exec_start(exec_id, stream=True, demux=True)
        err = bytearray()
        for stdout, stderr in out:
            if stdout:
                yield stdout
            if stderr:
                err += stderr
        code = self._container.client.api.exec_inspect(exec_id)["ExitCode"]
        if code:
            raise _cli_error(argv, bytes(err), code)

    def put_file(self, local: Path, remote: str) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(local, arcname=os.path.basename(remote))
        self._container.put_archive(os.path.dirname(remote), buf.getvalue())

    def remove(self, remote: str) -> None:
        self._container.exec_run(["rm", "-f", remote])


class LocalExecBackend:
    """The same argv, run by the local `ipfs` against a local repo: the tests' stand-in
    for the container, with `/tmp` of the "container" mapped to a local folder."""

    def __init__(self, ipfs: str, ipfs_path: str | os.PathLike, root: str | os.PathLike | None = None):
        self.ipfs = ipfs
        self.env = {**os.environ, "IPFS_PATH": str(ipfs_path)}
        self.root = Path(root or tempfile.mkdtemp(prefix="arke-container-"))
        self.argvs: list[list[str]] = []

    def _local(self, remote: str) -> Path:
        return self.root / remote.lstrip("/")

    def run(self, argv: list[str]) -> Iterator[bytes]:
        self.argvs.append(list(argv))
        real = [self.ipfs if argv[0] == "ipfs" else argv[0]]
        real += [str(self._local(a)) if a.startswith("/tmp/") else a for a in argv[1:]]
        proc = subprocess.Popen(real, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        while chunk := proc.stdout.read(CHUNK):
            yield chunk
        stderr = proc.stderr.read()
        if proc.wait():
            raise _cli_error(argv, stderr, proc.returncode)

    def put_file(self, local: Path, remote: str) -> None:
        target = self._local(remote)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Path(local).read_bytes())

    def remove(self, remote: str) -> None:
        self._local(remote).unlink(missing_ok=True)


class HttpTransport:
    def __init__(self, client: KuboClient):
        self.client = client

    def dag_export(self, cid: str, dest: Path) -> int:
        size = 0
        with self.client.dag_export(cid) as chunks, open(dest, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                size += len(chunk)
        return size

    def dag_import(self, car: Path, *, allow_big_block: bool = False) -> list[str]:
        with open(car, "rb") as fh:
            return [r["Cid"]["/"] for r in self.client.dag_import(fh, pin_roots=False,
                                                                    allow_big_block=allow_big_block)]

    def dag_put(self, data: bytes, *, store_codec="dag-cbor", input_codec="dag-json", pin=False) -> str:
        return self.client.dag_put(data, store_codec=store_codec, input_codec=input_codec, pin=pin)


class DockerTransport:
    """`ipfs` inside the container: CARs out through the exec stream, in through `put_archive`."""

    def __init__(self, backend: ExecBackend):
        self.backend = backend

    def _scratch(self, suffix: str) -> str:
        return f"/tmp/arke-dr-{uuid.uuid4().hex}{suffix}"

    def dag_export(self, cid: str, dest: Path) -> int:
        size = 0
        with open(dest, "wb") as out:
            for chunk in self.backend.run(["ipfs", "dag", "export", "--progress=false", cid]):
                out.write(chunk)
                size += len(chunk)
        return size

    def dag_import(self, car: Path, *, allow_big_block: bool = False) -> list[str]:
        remote = self._scratch(".car")
        self.backend.put_file(car, remote)
        big = ["--allow-big-block"] if allow_big_block else []
        try:
            out = b"".join(self.backend.run(["ipfs", "dag", "import", "--pin-roots=false", *big, remote]))
        finally:
            self.backend.remove(remote)
        roots = []
        for line in out.decode().splitlines():
            words = line.split()
            if "FAILED" in line:
                raise KuboError("dag/import", str(car), f"pinning the root failed: {line.strip()}")
            if line.startswith("Pinned root") and len(words) >= 3:
                roots.append(words[2])
        return roots

    def dag_put(self, data: bytes, *, store_codec="dag-cbor", input_codec="dag-json", pin=False) -> str:
        remote = self._scratch(".json")
        with tempfile.NamedTemporaryFile() as tmp:
            tmp.write(data)
            tmp.flush()
            self.backend.put_file(Path(tmp.name), remote)
        try:
            argv = ["ipfs", "dag", "put", f"--store-codec={store_codec}", f"--input-codec={input_codec}",
                    f"--pin={'true' if pin else 'false'}", remote]
            return b"".join(self.backend.run(argv)).decode().strip()
        finally:
            self.backend.remove(remote)


def make_transport(kind: str, client: KuboClient, container_name: str):
    if kind == "http":
        return HttpTransport(client)
    if kind == "docker":
        return DockerTransport(DockerExecBackend(container_name))
    raise BadInput(f"unknown transport {kind!r} (http or docker)")
