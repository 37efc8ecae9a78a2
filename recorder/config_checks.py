"""Per-field checks of the settings: each returns why a converted value is bad, or None."""

from __future__ import annotations

import json
import re
from typing import Final
from urllib.parse import urlsplit

from recorder.config_load import Check
from recorder.subjects import is_valid_subject
from recorder.units import mask_url

# Joining Meshery's or MeshSync's own queue groups would take messages away from them.
RESERVED_QUEUE_GROUPS: Final = frozenset({"meshery", "meshsync-request-stream"})
_SUBJECT_RULES: Final = (
    'tokens separated by "." must be non-empty and without spaces, '
    'with "*" or ">" only as whole tokens and ">" only as the last one'
)
_CONCRETE_SUBJECT_RULES: Final = (
    'tokens separated by "." must be non-empty and without spaces or wildcards ("*", ">")'
)


def quoted(value: str) -> str:
    """A value in double quotes with control characters escaped, so an error stays one line."""
    return json.dumps(value, ensure_ascii=False)


def check_subject(subject: str, *, wildcards: bool = True) -> str | None:
    """Return why `subject` is not a valid NATS subject (or filter), or None when it is."""
    if is_valid_subject(subject, wildcards=wildcards):
        return None
    if not subject:
        return "must not be empty"
    if wildcards:
        return f"{quoted(subject)} is not a valid NATS subject: {_SUBJECT_RULES}"
    return f"{quoted(subject)} is not a concrete NATS subject: {_CONCRETE_SUBJECT_RULES}"


# -- per-field checks: each returns why a converted value is bad, or None ------------------------


def at_least(minimum: int, shown: str | None = None) -> Check:
    return lambda v: None if v >= minimum else f"must be at least {shown or minimum}"


def positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def check_urls(urls: tuple[str, ...]) -> str | None:
    if not urls:
        return "must list at least one server URL"
    for url in urls:
        try:  # urlsplit itself rejects a malformed [IPv6] host, .port a bad port
            parts = urlsplit(url if "://" in url else f"nats://{url}")
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            parts, port_ok = None, False
        if (
            parts is None
            or parts.scheme not in ("nats", "tls", "ws", "wss")
            or not parts.hostname
            or not port_ok
        ):
            return f"{quoted(mask_url(url))} is not a server URL like nats://host:4222"
    return None


def check_subjects(subjects: tuple[str, ...]) -> str | None:
    if not subjects:
        return "must list at least one subject"
    for subject in subjects:
        if reason := check_subject(subject):
            return reason
    duplicates = sorted({s for s in subjects if subjects.count(s) > 1})
    return f"{quoted(duplicates[0])} is listed twice" if duplicates else None


def check_reply_subject(subject: str) -> str | None:
    return check_subject(subject, wildcards=False)


def check_name(name: str) -> str | None:
    # JetStream stream and consumer names become file names on the server.
    if not name or re.search(r"[\s.*>/\\]", name) or not name.isprintable():
        return f'{quoted(name)} must be non-empty without spaces, ".", "*", ">", "/" or "\\"'
    return None


def check_queue_group(group: str) -> str | None:
    if group in RESERVED_QUEUE_GROUPS:
        return f"{quoted(group)} belongs to Meshery/MeshSync; joining it would steal their messages"
    if group and re.search(r"[\s*>]", group):
        return f"{quoted(group)} must not contain spaces or wildcards"
    return None


def split_listen(listen: str) -> tuple[str, int] | None:
    host, sep, port = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if (
        not sep
        or not host
        or not (port.isascii() and port.isdigit())  # "²".isdigit(), but int("²") fails
        or int(port) > 65535
        or re.search(r"[\s\[\]]", host)
    ):
        return None
    return host, int(port)


def check_listen(listen: str) -> str | None:
    if listen in ("", "off") or split_listen(listen):
        return None
    return f'{quoted(listen)} must be HOST:PORT (like 127.0.0.1:9464), or "off"'


def check_archive_url(url: str) -> str | None:
    scheme, sep, rest = url.partition("://")
    if not url or (sep and scheme in ("s3", "gs", "az", "file") and rest.strip("/")):
        return None
    return f"{quoted(mask_url(url))} must be s3://BUCKET/prefix, gs://, az:// or file:///dir"


def check_endpoint(endpoint: str) -> str | None:
    if not endpoint or re.match(r"^https?://[^/\s]+/?$", endpoint):
        return None
    return f"{quoted(mask_url(endpoint))} must be http(s)://HOST[:PORT]"


def check_archive_name(name: str) -> str | None:
    # One path component of every key: no separators, nothing hidden.
    if not name or re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", name):
        return None
    return f'{quoted(name)} must be letters, digits, ".", "_" or "-" (at most 128)'
