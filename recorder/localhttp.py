"""One GET to the recorder's own HTTP endpoints (`/healthz`, `/readyz`, `/metrics`): used by
`recorder health`, the demo and the tests, so connection handling lives in one place."""

from __future__ import annotations

import http.client


def http_get(host: str, port: int, path: str, timeout: float, limit: int = -1) -> tuple[int, str]:
    """(status, body) of GET http://host:port/path, reading at most `limit` bytes of the body
    (all with -1). Raises OSError or http.client.HTTPException when nothing answers properly."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read(limit if limit >= 0 else None).decode(
            "utf-8", "replace"
        )
    finally:
        connection.close()
