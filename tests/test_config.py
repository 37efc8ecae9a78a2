"""Config loading: defaults, YAML, RECORDER_* environment, flags, validation and secret masking."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from recorder.config import (
    ENV_VARS,
    LEAVES,
    SECTIONS,
    Config,
    HttpConfig,
    NatsConfig,
    check_files,
    config_to_dict,
    config_to_yaml,
    load_config,
    nats_password,
    nats_token,
)
from recorder.config_checks import check_subject
from recorder.errors import ConfigError
from recorder.subjects import is_valid_subject
from recorder.units import MiB

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "recorder.yaml"


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Turn {"journal.fsync": x} into {"journal": {"fsync": x}} for writing YAML."""
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        *sections, key = dotted.split(".")
        node = out
        for section in sections:
            node = node.setdefault(section, {})
        node[key] = value
    return out


def _file(tmp_path: Path, content: dict[str, Any] | str) -> Path:
    path = tmp_path / "recorder.yaml"
    text = content if isinstance(content, str) else yaml.safe_dump(_nest(content))
    path.write_text(text)
    return path


def _error(**kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(**kwargs)
    return caught.value


def _leaf_paths(cls: type, prefix: str = "") -> set[str]:
    paths = set()
    for f in dataclasses.fields(cls):
        if prefix + f.name in SECTIONS:
            paths |= _leaf_paths(SECTIONS[prefix + f.name], f"{prefix}{f.name}.")
        else:
            paths.add(prefix + f.name)
    return paths


# -- subjects and re-exports -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject", ["meshery.meshsync.core", "meshery.*.core", "meshery.>", ">", "", "a..b", "a.",
                "a b", "a.>.b", "a.b*", "a.>x", "a.*", "_INBOX.x"],
)  # fmt: skip
@pytest.mark.parametrize("wildcards", [True, False])
def test_subject_checks_follow_the_nats_syntax(subject: str, wildcards: bool) -> None:
    """A subject is rejected exactly when recorder.subjects says it is not valid NATS syntax."""
    reason = check_subject(subject, wildcards=wildcards)
    assert (reason is None) == is_valid_subject(subject, wildcards=wildcards)


@pytest.mark.parametrize(
    ("subject", "wildcards", "reason"),
    [("", True, "must not be empty"),
     ("a.>.b", True, '"a.>.b" is not a valid NATS subject: tokens separated by "."'),
     ("a.*", False, '"a.*" is not a concrete NATS subject'),
     ("a.*", False, "without spaces or wildcards")],
)  # fmt: skip
def test_subject_reasons_quote_the_subject_and_the_rules(
    subject: str, wildcards: bool, reason: str
) -> None:
    """A rejected subject's reason quotes it and states the rules it must follow."""
    assert reason in str(check_subject(subject, wildcards=wildcards))


# -- sources and precedence ----------------------------------------------------------------------


def test_no_sources_give_the_defaults() -> None:
    """With no file, environment or flags every setting has its documented default."""
    cfg = load_config()
    assert cfg == Config()
    assert cfg.journal.segment_max_bytes == 64 * MiB
    assert cfg.journal.segment_max_age == 3600
    assert cfg.nats.urls == ("nats://127.0.0.1:4222",)
    assert cfg.subjects == ("meshery.meshsync.request", "meshery.meshsync.core")
    assert cfg.http.address == ("127.0.0.1", 9464)


def test_example_file_holds_exactly_the_defaults() -> None:
    """config/recorder.yaml loads to the defaults."""
    assert load_config(EXAMPLE) == Config()


def test_example_file_shows_every_setting() -> None:
    """Every dataclass field appears as a key in config/recorder.yaml."""
    raw = yaml.safe_load(EXAMPLE.read_text())

    def keys(node: dict[str, Any], prefix: str = "") -> set[str]:
        found = set()
        for key, value in node.items():
            found.add(prefix + key)
            if isinstance(value, dict):
                found |= keys(value, f"{prefix}{key}.")
        return found

    assert _leaf_paths(Config) | set(SECTIONS) <= keys(raw)


def test_yaml_file_values_are_converted(tmp_path: Path) -> None:
    """A file's sizes, durations, lists and nested sections land in the right fields."""
    path = _file(tmp_path, """
journal:
  dir: /var/lib/recorder
  segment_max_bytes: 8MiB
  fsync: always
  retention: {max_age: 7d, max_segments: 10}
nats:
  urls: [nats://a:4222, tls://b:4443]
  tls: {ca_file: /etc/ca.pem}
subjects: ["meshery.>"]
http: {listen: off}
""")  # fmt: skip
    cfg = load_config(path)
    assert cfg.journal.dir == Path("/var/lib/recorder")
    assert cfg.journal.segment_max_bytes == 8 * MiB
    assert cfg.journal.fsync == "always"
    assert cfg.journal.retention.max_age == 7 * 86400
    assert cfg.journal.retention.max_segments == 10
    assert cfg.nats.urls == ("nats://a:4222", "tls://b:4443")
    assert cfg.nats.tls.ca_file == Path("/etc/ca.pem")
    assert cfg.subjects == ("meshery.>",)
    assert cfg.http.listen == "off"  # YAML reads a bare `off` as false
    assert cfg.http.address is None


def test_empty_file_and_empty_sections_mean_defaults(tmp_path: Path) -> None:
    """An empty file, or a section with no keys, leaves the defaults in place."""
    assert load_config(_file(tmp_path, "")) == Config()
    assert load_config(_file(tmp_path, "journal:\nnats: {}\n")) == Config()


def test_every_setting_has_an_environment_variable() -> None:
    """Each dotted key maps from RECORDER_ + its path upper-cased, with `_` for `.`."""
    for path in LEAVES:
        assert ENV_VARS["RECORDER_" + path.upper().replace(".", "_")] == path
    assert set(ENV_VARS.values()) == _leaf_paths(Config)


def test_environment_values_are_parsed_from_text() -> None:
    """Environment values, including the short aliases, are parsed from strings."""
    cfg = load_config(env={
        "RECORDER_NATS_URL": "nats://a:4222, nats://b:4222",
        "RECORDER_SUBJECT": "meshery.meshsync.core",
        "RECORDER_FSYNC": "never",
        "RECORDER_EMBEDDED_BROKER": "true",
        "RECORDER_JOURNAL_RETENTION_MAX_AGE": "7d",
        "RECORDER_JOURNAL_SEGMENT_MAX_BYTES": "1MiB",
        "RECORDER_QUEUE_MAX_MESSAGES": "1_000",
        "RECORDER_NATS_TLS_CA_FILE": "/ca.pem",
        "RECORDER_NATS_USER": "",
        "RECORDER_CONFIG": "/ignored.yaml",
        "PATH": "/usr/bin",
    })  # fmt: skip
    assert cfg.nats.urls == ("nats://a:4222", "nats://b:4222")
    assert cfg.subjects == ("meshery.meshsync.core",)
    assert cfg.journal.fsync == "never"
    assert cfg.embedded_broker is True
    assert cfg.journal.retention.max_age == 7 * 86400
    assert cfg.journal.segment_max_bytes == MiB
    assert cfg.queue_max_messages == 1000
    assert cfg.nats.tls.ca_file == Path("/ca.pem")
    assert cfg.nats.user is None


def test_flags_beat_environment_which_beats_the_file(tmp_path: Path) -> None:
    """For each key the command line wins over the environment, which wins over the file."""
    path = _file(tmp_path, {"mode": "jetstream", "journal.dir": "/file", "log.level": "debug"})
    env = {"RECORDER_JOURNAL_DIR": "/env", "RECORDER_LOG_LEVEL": "warning"}
    cfg = load_config(path, env, {"log.level": "error", "nats.urls": None})
    assert (cfg.mode, cfg.journal.dir, cfg.log.level) == ("jetstream", Path("/env"), "error")
    assert cfg.nats.urls == NatsConfig().urls  # a flag passed as None was not given


def test_overrides_take_lists_and_typed_values() -> None:
    """Command-line overrides accept the typed values typer produces."""
    cfg = load_config(overrides={"nats.urls": ["nats://x:1"], "embedded_broker": True,
                                 "journal.fsync_interval": 0.2})  # fmt: skip
    assert (cfg.nats.urls, cfg.embedded_broker) == (("nats://x:1",), True)
    assert cfg.journal.fsync_interval == 0.2


# -- rejections ----------------------------------------------------------------------------------

BAD_VALUES: list[tuple[str, object, str]] = [
    ("journal.dir", 5, "must be a path"),
    ("journal.segment_max_bytes", "lots", 'must be a size like 64MiB, 512KiB or 1GB, got "lots"'),
    ("journal.segment_max_bytes", 100, "at least 1KiB"),
    ("journal.segment_max_age", 0, "greater than 0"),
    ("journal.fsync", "sometimes", "must be one of interval, always, never"),
    ("journal.fsync_interval", "soon", "must be a duration"),
    ("journal.compression", "gzip", "must be one of none, zstd"),
    ("journal.retention.max_bytes", -1, "must be a size"),
    ("journal.retention.max_age", "forever", "must be a duration"),
    ("journal.retention.max_segments", -3, "not negative"),
    ("journal.min_free_bytes", "1 lot", "must be a size"),
    ("nats.urls", "nats://x:4222", "must be a list of strings"),
    ("nats.urls", ["http://x:1"], "not a server URL"),
    ("nats.urls", [], "at least one"),
    ("nats.name", " ", "must not be empty"),
    ("nats.user", 7, "must be a string"),
    ("nats.password", 1234, "must be a string, got a value of type int"),
    ("nats.password_file", "", "must be a path"),
    ("nats.token", ["t"], "must be a string"),
    ("nats.token_file", 3, "must be a path"),
    ("nats.nkey_seed_file", True, "must be a path"),
    ("nats.creds_file", {"a": 1}, "must be a path"),
    ("nats.tls.ca_file", 1, "must be a path"),
    ("nats.tls.cert_file", 1, "must be a path"),
    ("nats.tls.key_file", 1, "must be a path"),
    ("nats.connect_timeout", -1, "not negative"),
    ("nats.retry_on_start", "yes", "must be true or false"),
    ("nats.reconnect_wait", 0, "greater than 0"),
    ("nats.max_reconnect_wait", "later", "must be a duration"),
    ("subjects", ["a..b"], '"a..b" is not a valid NATS subject'),
    ("subjects", ["a.>.b"], '"a.>.b" is not a valid NATS subject'),
    ("subjects", ["x", "x"], "listed twice"),
    ("subjects", [], "at least one"),
    ("queue_group", "meshery", "steal"),
    ("queue_group", "meshsync-request-stream", "steal"),
    ("queue_group", "my group", "spaces"),
    ("mode", "both", "must be one of core, jetstream"),
    ("jetstream.stream", "A.B", "must be non-empty without"),
    ("jetstream.consumer", "a b", "must be non-empty without"),
    ("jetstream.batch", 0, "at least 1"),
    ("jetstream.create_stream", "no", "must be true or false"),
    ("jetstream.ack_wait", "x", "must be a duration"),
    ("queue_max_messages", 0, "at least 1"),
    ("queue_max_bytes", "512KiB", "at least 1MiB"),
    ("queue_max_bytes", "lots", "size"),
    ("baseline", "full", "must be one of none, informer-store, resync"),
    ("baseline_reply_subject", "a.*", '"a.*" is not a concrete NATS subject'),
    ("http.listen", "localhost", "HOST:PORT"),
    ("http.listen", "host:99999", "HOST:PORT"),
    ("http.listen", 9464, "must be a string"),
    ("log.level", "loud", "must be one of debug"),
    ("log.format", "xml", "must be one of auto, json, console"),
    ("embedded_broker", 1, "must be true or false"),
    ("archive.url", "ftp://host/x", "must be s3://BUCKET/prefix"),
    ("archive.endpoint", "minio:9000", "must be http(s)://HOST[:PORT]"),
    ("archive.name", "a/b", "must be letters, digits"),
    ("archive.concurrency", 0, "at least 1"),
]


@pytest.mark.parametrize(("key", "value", "reason"), BAD_VALUES)
def test_bad_file_values_name_the_field_and_the_file(
    tmp_path: Path, key: str, value: object, reason: str
) -> None:
    """A malformed value in the file is rejected with its dotted field, the reason and the file."""
    path = _file(tmp_path, {key: value})
    error = _error(path=path)
    assert (error.field, error.source) == (key, str(path))
    assert reason in error.reason


def test_every_setting_has_a_rejection_case() -> None:
    """The table of malformed values above covers every setting."""
    assert {key for key, _, _ in BAD_VALUES} == set(LEAVES)


def test_bad_environment_value_names_the_variable() -> None:
    """A malformed environment value names the field and the variable it came from."""
    error = _error(env={"RECORDER_JOURNAL_SEGMENT_MAX_BYTES": "lots"})
    assert str(error) == (
        'journal.segment_max_bytes: must be a size like 64MiB, 512KiB or 1GB, got "lots" '
        "(in environment variable RECORDER_JOURNAL_SEGMENT_MAX_BYTES)"
    )


def test_bad_flag_value_names_the_command_line() -> None:
    """A malformed flag value names the field and the command line."""
    error = _error(overrides={"nats.retry_on_start": "maybe"})
    assert (error.field, error.source) == ("nats.retry_on_start", "command line")


@pytest.mark.parametrize(
    ("source", "field", "suggestion"),
    [({"env": {"RECORDER_JOURNAL_DIRR": "/x"}}, "RECORDER_JOURNAL_DIRR", "RECORDER_JOURNAL_DIR"),
     ({"overrides": {"journal.fsyncs": "always"}}, "journal.fsyncs", "journal.fsync")],
)  # fmt: skip
def test_unknown_names_are_rejected_with_a_suggestion(
    source: dict[str, Any], field: str, suggestion: str
) -> None:
    """An unknown variable or key is an error naming it and the closest known name."""
    error = _error(**source)
    assert error.field == field
    assert f'did you mean "{suggestion}"' in error.reason


@pytest.mark.parametrize(
    ("text", "field"),
    [("journal:\n  sgment_max_bytes: 1MiB\n", "journal.sgment_max_bytes"),
     ("journal: fast\n", "journal"), ("colour: blue\n", "colour")],
)  # fmt: skip
def test_unknown_or_misplaced_file_keys_are_rejected(tmp_path: Path, text: str, field: str) -> None:
    """A key the schema does not have, or a scalar where a section belongs, names the key."""
    assert _error(path=_file(tmp_path, text)).field == field


@pytest.mark.parametrize(
    ("text", "reason"),
    [("journal:\n  dir: [unclosed\n", "invalid YAML at line 3"),
     ("journal:\n  dir: a\n  dir: b\n", "duplicate key 'dir'"),
     ("- a\n- b\n", "mapping of settings at the top level")],
)  # fmt: skip
def test_unparsable_files_name_the_file_and_line(tmp_path: Path, text: str, reason: str) -> None:
    """YAML syntax errors, duplicate keys and a non-mapping document name the file."""
    path = _file(tmp_path, text)
    error = _error(path=path)
    assert error.field == str(path)
    assert reason in error.reason


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A config file that does not exist is reported with its path."""
    error = _error(path=tmp_path / "absent.yaml")
    assert "cannot read config file" in str(error)


def test_alias_and_generic_variable_together_are_rejected() -> None:
    """Setting a short alias and its generic variable at once is ambiguous, so it fails."""
    error = _error(env={"RECORDER_SUBJECT": "a", "RECORDER_SUBJECTS": "b"})
    assert error.field == "subjects"
    assert "RECORDER_SUBJECT and RECORDER_SUBJECTS" in error.reason


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"nats.password": "p"}, "nats.password"),
     ({"nats.user": "u"}, "nats.user"),
     ({"nats.user": "u", "nats.password": "p", "nats.password_file": "/p"}, "nats.password_file"),
     ({"nats.token": "t", "nats.token_file": "/t"}, "nats.token_file"),
     ({"nats.user": "u", "nats.password": "p", "nats.token": "t"}, "nats.token"),
     ({"nats.creds_file": "/c", "nats.nkey_seed_file": "/n"}, "nats.creds_file"),
     ({"nats.tls.cert_file": "/c"}, "nats.tls.cert_file"),
     ({"nats.reconnect_wait": "1m", "nats.max_reconnect_wait": "30s"}, "nats.max_reconnect_wait"),
     ({"mode": "jetstream", "jetstream.batch": 10, "queue_max_messages": 5}, "jetstream.batch")],
)  # fmt: skip
def test_conflicting_settings_are_rejected(overrides: dict[str, object], field: str) -> None:
    """Settings that cannot work together are rejected, naming one of them."""
    assert _error(overrides=overrides).field == field


def test_jetstream_batch_is_not_held_against_core_mode() -> None:
    """A JetStream batch above queue_max_messages is only refused where it is used."""
    cfg = load_config(overrides={"jetstream.batch": 10, "queue_max_messages": 5})
    assert (cfg.mode, cfg.jetstream.batch) == ("core", 10)


# -- secrets and rendering -----------------------------------------------------------------------


def test_show_masks_secrets_and_url_passwords() -> None:
    """config show prints *** for set secrets and URL passwords, and leaves unset ones null."""
    cfg = load_config(overrides={"nats.user": "u", "nats.password": "hunter2",
                                 "nats.urls": ["nats://u:hunter2@a:4222", "nats://tok@b:4222"]})  # fmt: skip
    shown = config_to_dict(cfg)["nats"]
    assert shown["password"] == "***"
    assert shown["token"] is None
    assert shown["urls"] == ["nats://u:***@a:4222", "nats://***@b:4222"]
    assert "hunter2" not in config_to_yaml(cfg)


def test_errors_never_echo_secrets() -> None:
    """A rejected secret or URL is described without its value."""
    for overrides in ({"nats.password": ["hunter2"]}, {"nats.urls": ["nats://u:hunter2@"]}):
        assert "hunter2" not in str(_error(overrides=overrides))


def test_unmasked_yaml_reads_back_to_the_same_config(tmp_path: Path) -> None:
    """The YAML rendering of a config, secrets included, loads back to an equal config."""
    cfg = load_config(overrides={
        "nats.user": "u", "nats.password": "p", "journal.segment_max_bytes": 1_000_001,
        "journal.fsync_interval": "250ms", "journal.retention.max_age": "36h",
        "http.listen": "[::1]:0", "nats.tls.ca_file": "/ca.pem",
    })  # fmt: skip
    assert load_config(_file(tmp_path, config_to_yaml(cfg, mask_secrets=False))) == cfg


def test_secrets_are_read_from_their_files(tmp_path: Path) -> None:
    """password_file and token_file supply the secret without the trailing newline."""
    (tmp_path / "pw").write_text("hunter2\n")
    (tmp_path / "tok").write_text("t0ken")
    with_pw = NatsConfig(user="u", password_file=tmp_path / "pw")
    assert nats_password(with_pw) == "hunter2"
    assert nats_token(NatsConfig(token_file=tmp_path / "tok")) == "t0ken"
    assert nats_password(NatsConfig(user="u", password="inline")) == "inline"
    assert nats_token(NatsConfig()) is None


@pytest.mark.parametrize(("content", "reason"), [(None, "cannot read"), ("\n", "is empty")])
def test_unusable_secret_files_name_the_field(
    tmp_path: Path, content: str | None, reason: str
) -> None:
    """A missing or empty secret file is a ConfigError naming the *_file field."""
    path = tmp_path / "pw"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=reason) as caught:
        nats_password(NatsConfig(user="u", password_file=path))
    assert caught.value.field == "nats.password_file"


def test_check_files_names_an_unreadable_file(tmp_path: Path) -> None:
    """config check reports the first configured file that cannot be opened."""
    cfg = load_config(overrides={"nats.creds_file": str(tmp_path / "absent.creds")})
    with pytest.raises(ConfigError) as caught:
        check_files(cfg)
    assert caught.value.field == "nats.creds_file"
    check_files(Config())


@pytest.mark.parametrize(
    ("listen", "address"),
    [("off", None), ("", None), ("0.0.0.0:0", ("0.0.0.0", 0)), ("[::1]:9464", ("::1", 9464))],
)
def test_http_listen_address(listen: str, address: tuple[str, int] | None) -> None:
    """http.listen yields a bindable (host, port), or None when the listener is off."""
    assert HttpConfig(listen=listen).address == address


@pytest.mark.parametrize("name", ["pending_msgs_limit", "pending_bytes_limit"])
def test_nats_pending_limits_are_refused_since_direct_delivery_never_applies_them(
    tmp_path: Path, name: str
) -> None:
    """nats-py's pending limits never act on the recorder's direct delivery, so setting one is refused, naming the intake setting that replaces it, rather than accepted and ignored."""
    error = _error(path=_file(tmp_path, {f"nats.{name}": 10}))
    assert error.field == f"nats.{name}" and error.reason.startswith("was removed")
    assert "queue_max_" in error.reason
    env_name = f"RECORDER_NATS_{name.upper()}"
    env_error = _error(env={env_name: "10"})
    assert env_error.field == env_name and env_error.reason.startswith("was removed")


def test_queue_max_bytes_defaults_to_a_quarter_of_a_256_mib_container() -> None:
    """The intake's byte bound leaves room for the interpreter under a 256 MiB memory limit."""
    assert load_config().queue_max_bytes == 64 * 2**20
    assert load_config(env={"RECORDER_QUEUE_MAX_BYTES": "8MiB"}).queue_max_bytes == 8 * 2**20
