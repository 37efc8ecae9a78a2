"""NATS subject validity, wildcard matching (`*` one token, `>` one or more at the end), and maps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder.errors import UsageError
from recorder.subjects import (
    SubjectMap,
    is_valid_subject,
    map_subject,
    matches_any,
    subject_matches,
)

TOKEN = st.sampled_from(["a", "b", "c", "k8s", "pod-1", "_INBOX", "x_y", "ü"])
SUBJECT = st.lists(TOKEN, min_size=1, max_size=5)
PATTERN_TOKEN = st.sampled_from(["a", "b", "*"])
PATTERN = st.tuples(st.lists(PATTERN_TOKEN, max_size=4), st.booleans()).filter(
    lambda parts: bool(parts[0]) or parts[1]
)


def _pattern(parts: tuple[list[str], bool]) -> str:
    tokens, tail = parts
    return ".".join([*tokens, ">"] if tail else tokens)


def _reference(pattern: list[str], subject: list[str]) -> bool:
    """NATS matching written token by token, straight from the server's documentation."""
    if not pattern:
        return not subject
    if pattern[0] == ">":
        return len(subject) >= 1
    if not subject:
        return False
    if pattern[0] in ("*", subject[0]):
        return _reference(pattern[1:], subject[1:])
    return False


# -- validity -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "a",
        "a.b.c",
        "meshsync.k8s.pod",
        "_INBOX.abc123",
        "a-b.c_d",
        "ünï.cödé",
        "*",
        ">",
        "a.*.c",
        "a.>",
        "*.*.>",
    ],
)
def test_valid_subjects_and_patterns(subject: str) -> None:
    """Dot-separated non-empty tokens, with `*` anywhere and `>` last, are valid patterns."""
    assert is_valid_subject(subject)


@pytest.mark.parametrize(
    "subject",
    [
        "",
        ".",
        "a.",
        ".a",
        "a..b",
        "a b",
        "a\tb",
        "a\nb",
        " a",
        "a.>.b",
        ">.a",
        "a*",
        "a.b*",
        "*b",
        "a.>b",
        "a>",
    ],
)
def test_invalid_subjects(subject: str) -> None:
    """Empty tokens, whitespace, `>` before the end and wildcards inside a token are invalid."""
    assert not is_valid_subject(subject)


@pytest.mark.parametrize("pattern", ["*", ">", "a.*", "a.>", "*.b"])
def test_wildcards_can_be_refused(pattern: str) -> None:
    """With wildcards=False only literal subjects (what a message is published to) are valid."""
    assert is_valid_subject(pattern)
    assert not is_valid_subject(pattern, wildcards=False)
    assert is_valid_subject("a.b.c", wildcards=False)


@settings(max_examples=200, deadline=None)
@given(SUBJECT, st.data())
def test_structure_decides_validity(tokens: list[str], data: st.DataObject) -> None:
    """Joined tokens are valid; an empty token, whitespace or a non-final `>` makes them invalid."""
    subject = ".".join(tokens)
    assert is_valid_subject(subject, wildcards=False)
    index = data.draw(st.integers(0, len(tokens)))
    assert not is_valid_subject(".".join([*tokens[:index], "", *tokens[index:]]))
    assert not is_valid_subject(".".join([*tokens[:index], ">", *tokens[index:]])) or index == len(
        tokens
    )
    space = data.draw(st.sampled_from([" ", "\t", "\r", "\n", "\u00a0"]))
    assert not is_valid_subject(subject[:1] + space + subject[1:])


# -- matching -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("a.b", "a.b", True),
        ("a.b", "a.c", False),
        ("a.b", "a.b.c", False),
        ("a.b.c", "a.b", False),
        ("a.*", "a.b", True),
        ("a.*", "a", False),
        ("a.*", "a.b.c", False),
        ("*", "a", True),
        ("*", "a.b", False),
        ("*.b.*", "a.b.c", True),
        ("*.b.*", "a.c.c", False),
        ("a.>", "a.b", True),
        ("a.>", "a.b.c.d", True),
        ("a.>", "a", False),
        ("a.>", "b.c", False),
        (">", "a", True),
        (">", "a.b.c", True),
        ("*.>", "a", False),
        ("*.>", "a.b", True),
        ("meshsync.k8s.*", "meshsync.k8s.pod", True),
        ("meshsync.k8s.*", "meshsync.k8s", False),
        ("a.b", "a.*", False),  # a literal pattern does not match a wildcard subject
    ],
)
def test_subject_matches_examples(pattern: str, subject: str, expected: bool) -> None:
    """Exact match, `*` for exactly one token and a final `>` for one or more tokens."""
    assert subject_matches(pattern, subject) is expected


@settings(max_examples=300, deadline=None)
@given(PATTERN, SUBJECT)
def test_subject_matches_agrees_with_the_reference(
    parts: tuple[list[str], bool], tokens: list[str]
) -> None:
    """For any valid pattern and subject, matching agrees with the token-by-token definition."""
    pattern = _pattern(parts)
    assert is_valid_subject(pattern)
    expected = _reference(pattern.split("."), tokens)
    assert subject_matches(pattern, ".".join(tokens)) is expected


@settings(max_examples=200, deadline=None)
@given(SUBJECT, st.data())
def test_wildcards_generalise_a_subject(tokens: list[str], data: st.DataObject) -> None:
    """A subject matches itself, itself with any token as `*`, and any proper prefix plus `>`."""
    subject = ".".join(tokens)
    assert subject_matches(subject, subject)
    assert subject_matches(">", subject)
    starred = [data.draw(st.sampled_from([token, "*"])) for token in tokens]
    assert subject_matches(".".join(starred), subject)
    cut = data.draw(st.integers(0, len(tokens)))
    tail = ".".join([*tokens[:cut], ">"])
    assert subject_matches(tail, subject) is (cut < len(tokens))
    assert not subject_matches(".".join([*tokens, "*"]), subject)


def test_matches_any_is_true_when_one_pattern_matches() -> None:
    """matches_any is an OR over patterns, and false for no patterns."""
    assert matches_any(("x.>", "a.*"), "a.b")
    assert not matches_any(("x.>", "a.*"), "a.b.c")
    assert not matches_any((), "a")


# -- subject maps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "subject", "expected"),
    [
        ("meshery.meshsync.*=replay.*", "meshery.meshsync.core", "replay.core"),
        ("meshery.meshsync.*=replay.*", "meshery.meshsync.request", "replay.request"),
        ("a.*.b.*=x.*.y.*", "a.1.b.2", "x.1.y.2"),
        ("a.*.*=x.*", "a.1.2", "x.1"),  # unused wildcards of FROM are dropped
        ("a.*=x.y", "a.1", "x.y"),
        ("meshery.>=replay.>", "meshery.meshsync.core", "replay.meshsync.core"),
        ("a.*.>=b.*.c.>", "a.1.2.3", "b.1.c.2.3"),
        ("a.b=c.d", "a.b", "c.d"),
    ],
)
def test_subject_map_fills_target_wildcards_in_order(
    spec: str, subject: str, expected: str
) -> None:
    """`*` tokens of FROM fill those of TO in order and a final `>` carries the whole tail."""
    assert SubjectMap.parse(spec).apply(subject) == expected


@pytest.mark.parametrize(
    ("spec", "subject"),
    [
        ("meshery.meshsync.*=replay.*", "meshery.other.core"),
        ("meshery.meshsync.*=replay.*", "meshery.meshsync"),
        ("meshery.meshsync.*=replay.*", "meshery.meshsync.core.extra"),
        ("a.>=b.>", "a"),  # `>` needs at least one token
        ("a.b=c.d", "a.b.c"),
    ],
)
def test_subject_map_leaves_non_matching_subjects_alone(spec: str, subject: str) -> None:
    """A subject FROM does not match maps to None, so the caller keeps it unchanged."""
    assert SubjectMap.parse(spec).apply(subject) is None


@pytest.mark.parametrize(
    "spec",
    [
        "replay.core",  # no `=`
        "=replay.*",
        "meshery.*=",
        "a b=c",
        "a..b=c",
        "a.>.b=c",
        "a.*=b.*.*",  # more `*` in TO than in FROM
        "a.*=b.>",  # `>` in TO without one in FROM
    ],
)
def test_invalid_subject_map_is_a_one_line_usage_error(spec: str) -> None:
    """A malformed FROM=TO is a UsageError that names the map and fits on one line."""
    with pytest.raises(UsageError) as info:
        SubjectMap.parse(spec)
    message = str(info.value)
    assert message.startswith(f"subject map {spec!r}: ")
    assert "\n" not in message


_token = st.text(alphabet="abcxyz019-_", min_size=1, max_size=5)
_subject = st.lists(_token, min_size=1, max_size=6).map(".".join)
_pattern_token = st.one_of(_token, st.just("*"))


@st.composite
def _source_pattern(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(_pattern_token, min_size=1, max_size=4))
    if draw(st.booleans()):
        tokens.append(">")
    return ".".join(tokens)


@settings(max_examples=300, deadline=None)
@given(source=_source_pattern(), subject=_subject)
def test_subject_map_matches_exactly_what_nats_wildcards_match(source: str, subject: str) -> None:
    """A map applies iff NATS matching says FROM matches, and its result is a literal subject."""
    stars = source.count("*")
    target = ".".join(["out", *["*"] * stars, *([">"] if source.endswith(">") else [])])
    mapped = SubjectMap.parse(f"{source}={target}").apply(subject)
    assert (mapped is not None) == subject_matches(source, subject)
    if mapped is not None:
        assert is_valid_subject(mapped, wildcards=False)
        if source.endswith(">"):
            # `*` tokens and the tail cover the subject's unmatched tokens, so nothing is lost.
            assert len(mapped.split(".")) == 1 + stars + len(subject.split(".")) - (
                len(source.split(".")) - 1
            )


@given(subject=_subject.filter(lambda s: "." in s))
def test_identity_map_returns_the_subject(subject: str) -> None:
    """`*.>=*.>` maps every subject of two or more tokens to itself."""
    assert SubjectMap.parse("*.>=*.>").apply(subject) == subject


def test_map_subject_first_match_wins_then_prefix() -> None:
    """The first matching map is applied, the rest are ignored, and the prefix goes in front."""
    maps = (
        SubjectMap.parse("meshery.meshsync.core=first.core"),
        SubjectMap.parse("meshery.meshsync.*=second.*"),
    )
    assert map_subject("meshery.meshsync.core", maps) == "first.core"
    assert map_subject("meshery.meshsync.request", maps) == "second.request"
    assert map_subject("other.subject", maps) == "other.subject"
    assert map_subject("meshery.meshsync.core", maps, "replay") == "replay.first.core"
    assert map_subject("other.subject", (), "replay.") == "replay.other.subject"
    assert map_subject("other.subject", ()) == "other.subject"
