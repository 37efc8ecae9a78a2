"""Archive URLs and the object keys under them: pure parsing, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from recorder.errors import ArchiveError

SCHEMES: Final = ("s3", "gs", "az", "file")
# A journal name becomes one path component of every key: no separators, nothing hidden.
_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class ArchiveLocation:
    """Where an archive lives: `s3://bucket/prefix`, `gs://…`, `az://container/…`, `file:///dir`."""

    url: str
    scheme: str
    bucket: str  # the bucket or container; empty for file://
    prefix: str  # no leading or trailing "/"; the directory for file://


def is_archive_url(text: str) -> bool:
    """True when `text` names an archive rather than a local journal directory."""
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


def parse_archive_url(url: str) -> ArchiveLocation:
    """Split an archive URL into scheme, bucket and prefix; an unusable one is an ArchiveError."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ArchiveError(url, "bad_url", "scheme must be one of s3://, gs://, az://, file://")
    if parts.query or parts.fragment:
        raise ArchiveError(url, "bad_url", "must not have a query or a fragment")
    if parts.username or parts.password:
        # Credentials come from the provider's chain (environment, files, pod identity), never
        # from a URL that ends up in process listings and logs.
        raise ArchiveError(url, "bad_url", "must not carry credentials; use the provider's chain")
    path = parts.path.strip("/")
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ArchiveError(url, "bad_url", "file:// needs an absolute path, file:///dir")
        return ArchiveLocation(url, scheme, "", "/" + path)
    if not parts.netloc:
        raise ArchiveError(url, "bad_url", f"needs a bucket: {scheme}://BUCKET/prefix")
    if any(part in ("", ".", "..") for part in path.split("/")) and path:
        raise ArchiveError(url, "bad_url", "prefix must not have empty, . or .. components")
    return ArchiveLocation(url, scheme, parts.netloc, path)


def check_journal_name(name: str) -> str | None:
    """Why `name` cannot name a journal in an archive, or None."""
    if _NAME.match(name):
        return None
    return 'must be 1-128 letters, digits, ".", "_" or "-", starting with a letter or digit'
