"""The object store behind an archive URL: put, get, list, with failures classified by kind.

obstore is imported here only, when a store is opened: the CLI and the daemon without an
archive never load it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from recorder.archive.location import ArchiveLocation
from recorder.errors import ArchiveError

# The store's own retries stay short: the uploader retries with its own backoff and jitter, so
# one failure class is logged once, and a stop never waits on a three-minute retry budget.
_RETRY = {"max_retries": 2, "backoff": {"init_backoff": timedelta(milliseconds=100)}}
_TIMEOUTS = {"connect_timeout": "5s", "timeout": "60s"}
# One PUT up to S3's limit for it, rather than obstore's multipart above 5 MiB: a single put's
# entity tag is the object's MD5, so the uploader checks it without reading the object back
# (a multipart tag is not, and cost a whole GET per segment), and a killed upload leaves no
# hidden parts behind.
_SINGLE_PUT_MAX = 5 << 30


class ArchiveStore:
    """Synchronous operations on one archive location; safe to call from several threads."""

    def __init__(self, location: ArchiveLocation, endpoint: str | None = None) -> None:
        self.location = location
        self._store = _open(location, endpoint)

    def put(self, key: str, data: bytes) -> str | None:
        """Store `data` under `key`; returns the store's entity tag."""
        import obstore

        try:
            result = obstore.put(self._store, key, data, use_multipart=len(data) > _SINGLE_PUT_MAX)
        except Exception as exc:  # noqa: BLE001 - obstore raises builtins and its own types
            raise classify(self.where(key), exc) from None
        tag = result.get("e_tag")
        return str(tag) if tag is not None else None

    def get(self, key: str) -> bytes:
        import obstore

        try:
            return bytes(obstore.get(self._store, key).bytes())
        except Exception as exc:  # noqa: BLE001
            raise classify(self.where(key), exc) from None

    def keys(self, prefix: str) -> Iterator[str]:
        """The keys of every object under `prefix`."""
        import obstore

        try:
            for batch in obstore.list(self._store, prefix=prefix):
                for meta in batch:
                    yield str(meta["path"])
        except Exception as exc:  # noqa: BLE001
            raise classify(self.where(prefix), exc) from None

    def where(self, key: str) -> str:
        """The object's full address, as errors name it."""
        return f"{self.location.url.rstrip('/')}/{key}"


def _open(location: ArchiveLocation, endpoint: str | None) -> Any:
    try:
        from obstore.store import AzureStore, GCSStore, LocalStore, S3Store
    except ImportError:
        raise ArchiveError(
            location.url,
            "bad_config",
            "archiving needs obstore: pip install 'meshsync-recorder[archive]'",
        ) from None

    options: dict[str, Any] = {"retry_config": _RETRY, "client_options": dict(_TIMEOUTS)}
    prefix = location.prefix or None
    try:
        if location.scheme == "file":
            Path(location.prefix).mkdir(parents=True, exist_ok=True, mode=0o700)
            return LocalStore(location.prefix)
        if location.scheme == "s3":
            if endpoint:
                options["endpoint"] = endpoint
                options["client_options"]["allow_http"] = endpoint.startswith("http://")
            return S3Store(location.bucket, prefix=prefix, **options)
        if location.scheme == "gs":
            return GCSStore(location.bucket, prefix=prefix, **options)
        return AzureStore(location.bucket, prefix=prefix, **options)
    except Exception as exc:  # noqa: BLE001 - a bad endpoint or missing credential config
        # obstore's text goes on with a multi-line debug dump of its source; one line is enough.
        reason = _first_line(exc)
        raise ArchiveError(location.url, "bad_config", f"cannot open the store: {reason}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def classify(where: str, exc: Exception) -> ArchiveError:
    """An obstore failure as an ArchiveError whose kind says what an operator should fix."""
    text = str(exc)
    first = _first_line(exc)
    if "NoSuchBucket" in text or "bucket does not exist" in text.lower():
        return ArchiveError(where, "no_bucket", "the bucket does not exist")
    if isinstance(exc, PermissionError) or any(
        code in text
        for code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403 Forbidden")
    ):
        return ArchiveError(where, "denied", "access denied: check the store's credentials")
    if isinstance(exc, FileNotFoundError):
        return ArchiveError(where, "not_found", "no such object")
    if isinstance(exc, ConnectionError | TimeoutError) or any(
        word in text for word in ("error sending request", "Connection refused", "timed out")
    ):
        return ArchiveError(where, "unavailable", f"store unreachable: {first}")
    if " 5" in text and "Server returned non-2xx status code: 5" in text:
        return ArchiveError(where, "server_error", f"store failed: {first}")
    return ArchiveError(where, "other", first)
