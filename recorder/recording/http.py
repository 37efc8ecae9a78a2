"""The health and metrics listener: GET /metrics, /healthz and /readyz over plain HTTP/1.1."""

from __future__ import annotations

import asyncio
import contextlib

from recorder.log import get_logger
from recorder.recording.metrics import Metrics

log = get_logger("http")

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class HealthServer:
    """A tiny asyncio HTTP server; one request per connection is all probes and scrapers need."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sockname = self._server.sockets[0].getsockname()
        self.port = sockname[1]
        log.info("http_listening", host=self.host, port=self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def respond(self, method: str, path: str) -> tuple[int, str, str]:
        """Status, content type and body for a request (pure, for tests)."""
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", "only GET\n"
        path = path.split("?", 1)[0]
        if path == "/metrics":
            return 200, "text/plain; version=0.0.4; charset=utf-8", self.metrics.render()
        if path == "/healthz":
            return 200, "text/plain", "ok\n"
        if path == "/readyz":
            reasons = self.metrics.not_ready_reasons()
            if reasons:
                return 503, "text/plain", "not ready: " + "; ".join(reasons) + "\n"
            return 200, "text/plain", "ready\n"
        return 404, "text/plain", "not found\n"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            method, path, *_ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            status, content_type, body = self.respond(method, path)
            payload = body.encode()
            head = (
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (b"" if method == "HEAD" else payload))
            await writer.drain()
        except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
