"""gs:// and az:// archives: the store each URL opens, and a missing credential as one error line.

Nothing here reaches a network: a store is only built, and each failure happens while building.
"""

from __future__ import annotations

import subprocess

import pytest
from run_helpers import RECORDER, clean_env

from recorder.archive.location import parse_archive_url
from recorder.archive.store import ArchiveStore


@pytest.mark.parametrize(
    ("url", "kind", "config", "prefix"),
    [
        ("gs://bkt/fleet/a", "GCSStore", {"bucket": "bkt"}, "fleet/a"),
        ("az://logs/fleet", "AzureStore", {"container_name": "logs"}, "fleet"),
        ("az://logs", "AzureStore", {"container_name": "logs"}, None),
    ],
)
def test_gs_and_az_urls_open_their_store_on_the_bucket_and_prefix(
    url: str,
    kind: str,
    config: dict[str, str],
    prefix: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A gs:// URL opens a GCS store, an az:// one an Azure store, on its bucket and prefix."""
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "fleetaccount")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", "c2VjcmV0")
    store = ArchiveStore(parse_archive_url(url))._store
    assert type(store).__name__ == kind
    assert config.items() <= store.config.items()
    assert store.prefix == prefix


@pytest.mark.parametrize(
    ("url", "env", "says"),
    [
        (
            "gs://bkt/fleet",
            {"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json"},
            "Unable to open service account file from /nonexistent/key.json",
        ),
        ("az://logs/fleet", {}, "Account must be specified"),
    ],
)
@pytest.mark.parametrize("command", ["dump", "inspect"])
def test_a_missing_credential_is_one_error_line_naming_the_url(
    url: str, env: dict[str, str], says: str, command: str
) -> None:
    """A credential the provider's chain cannot find: exit 1, one `Error:` line, no traceback."""
    clean = {
        key: value
        for key, value in clean_env(env).items()
        if not key.startswith(("AZURE_", "GOOGLE_", "AWS_")) or key in env
    }
    result = subprocess.run(
        [*RECORDER, command, url], capture_output=True, env=clean, timeout=60, check=False
    )
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"Error: {url}: cannot open the store: ")
    assert says in lines[0]
