"""A real S3 API on loopback for archive tests: moto's server mode, and a fault proxy before it."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
from moto.server import ThreadedMotoServer
from polling import wait_until

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}
_buckets = itertools.count(1)


@dataclass
class S3Server:
    """A moto server; every bucket a test makes is its own, as the server's state is shared."""

    host: str
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self, endpoint: str | None = None) -> object:
        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_REGION"],
        )

    def new_bucket_name(self) -> str:
        return f"archive-test-{next(_buckets)}"

    def new_bucket(self) -> str:
        name = self.new_bucket_name()
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return name

    def keys(self, bucket: str) -> list[str]:
        listing = self.client().list_objects_v2(Bucket=bucket)  # type: ignore[attr-defined]
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def get(self, bucket: str, key: str) -> bytes:
        body = self.client().get_object(Bucket=bucket, Key=key)["Body"]  # type: ignore[attr-defined]
        return bytes(body.read())


@contextlib.contextmanager
def moto_server() -> Iterator[S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(host, port)
    finally:
        server.stop()


class FaultProxy:
    """A TCP proxy before the store: `pass`, `down` (connections cut), `error` (HTTP 500s),
    with an optional delay before each connection is served. Changing the mode cuts the
    connections already open, so a pooled keep-alive connection sees the change too."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.mode = "pass"
        self.delay_s = 0.0
        self.errors_sent = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode: str, delay_s: float = 0.0) -> None:
        with self._lock:
            self.mode, self.delay_s = mode, delay_s
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def close(self) -> None:
        self._closed = True
        self.set_mode("down")
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            mode, delay = self.mode, self.delay_s
            self._open.add(client)
        if delay:
            threading.Event().wait(delay)  # the injected slowness itself, not a test's wait
        with contextlib.closing(client):
            if mode == "down":
                return
            if mode == "error":
                self._answer_500(client)
                return
            with contextlib.suppress(OSError):
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
                with self._lock:
                    self._open.add(upstream)
                with contextlib.closing(upstream):
                    back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
                    back.start()
                    _pipe(client, upstream)
                    back.join()

    def _answer_500(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            client.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = client.recv(65536)
                if not chunk:
                    return
                data += chunk
            client.sendall(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                b"Connection: close\r\n\r\n"
            )
            with self._lock:
                self.errors_sent += 1


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            target.sendall(chunk)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def moto_with_auth() -> Iterator[S3Server]:
    """A moto server in its own process that checks credentials (none of ours are valid)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _listening(port), 30, "moto with auth listening")
        yield S3Server("127.0.0.1", port)
    finally:
        proc.terminate()
        proc.wait(10)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True
