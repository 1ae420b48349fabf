"""A real S3 server for the tests: the Versity S3 Gateway on a posix folder,
built by scripts/install-versitygw and started here (never a mock of S3)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
BINARY = ROOT / ".tools" / "bin" / "versitygw"
ACCESS, SECRET = "arke-test-access", "arke-test-secret-never-shown"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    def __init__(self, root: Path, *, versioning: bool = False):
        """`versioning`: buckets may be versioned, which S3 Object Lock needs (versitygw's posix backend
        keeps the versions in a folder of their own)."""
        self.root = root
        self.versioning = versioning
        self.data = root / "data"
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET}

    def start(self, timeout: float = 30.0) -> S3Server:
        if not BINARY.exists():
            subprocess.run([str(ROOT / "scripts" / "install-versitygw")], check=True, timeout=1800)
        self.data.mkdir(parents=True, exist_ok=True)
        if self.versioning:
            (self.root / "versions").mkdir(parents=True, exist_ok=True)
        log = open(self.root / "versitygw.log", "ab")
        backend = ["posix", *(["--versioning-dir", str(self.root / "versions")] if self.versioning else []),
                   str(self.data)]
        self.proc = subprocess.Popen([str(BINARY), "--port", f"127.0.0.1:{self.port}", "--access", ACCESS,
                                      "--secret", SECRET, *backend],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                assert self.proc.poll() is None, (self.root / "versitygw.log").read_text()[-2000:]
                time.sleep(0.1)
        raise AssertionError("versitygw never listened")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(30)

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS,
                            aws_secret_access_key=SECRET, config=Config(s3={"addressing_style": "path"}))

    def object_path(self, bucket: str, key: str) -> Path:
        """Where the posix backend keeps an object: the test can damage it behind the server's back."""
        return self.data / bucket / key
