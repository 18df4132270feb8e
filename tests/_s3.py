"""A real S3 API server for tests: moto's standalone server in its own process on a free local port.

Not a mock of the client: pyarrow's (and pyiceberg's) S3 code talks HTTP to it like to any
S3-compatible store. :func:`start_s3_server` is wrapped by the ``s3_server`` session fixture in
``conftest.py``; :meth:`S3Server.new_bucket` makes a fresh bucket per test.
"""

from __future__ import annotations

import atexit
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass

import pyarrow.fs as pafs

ACCESS_KEY = "exporthub-test"
SECRET_KEY = "exporthub-test-secret"
REGION = "us-east-1"


@dataclass
class S3Server:
    """A running moto server: its endpoint and the environment that points pyarrow at it."""

    endpoint: str
    process: subprocess.Popen[bytes]

    @property
    def env(self) -> dict[str, str]:
        """``AWS_*`` credentials and the ``EXPORTHUB_S3_*`` settings for this server."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "EXPORTHUB_S3_ENDPOINT_URL": self.endpoint,
            "EXPORTHUB_S3_REGION": REGION,
        }

    def filesystem(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(endpoint_override=self.endpoint, region=REGION, access_key=ACCESS_KEY,
                                 secret_key=SECRET_KEY, allow_bucket_creation=True)

    def new_bucket(self, prefix: str = "b") -> str:
        """Create an empty bucket with a unique name and return the name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.filesystem().create_dir(name)
        return name

    def keys(self, bucket: str) -> list[str]:
        """Every object key in the bucket."""
        infos = self.filesystem().get_file_info(pafs.FileSelector(bucket, recursive=True))
        return sorted(i.path[len(bucket) + 1:] for i in infos if i.type == pafs.FileType.File)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_s3_server(timeout: float = 60) -> S3Server:
    """Start ``moto.server`` on a free port and wait (up to ``timeout`` s) until it answers."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = S3Server(endpoint=f"http://127.0.0.1:{port}", process=proc)
    atexit.register(server.stop)  # even when the test session is interrupted
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{server.endpoint}/moto-api/", timeout=1).close()
            return server
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError("the moto S3 server did not start") from None
            time.sleep(0.1)
