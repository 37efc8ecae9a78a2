"""NATS subject syntax and wildcard matching (`*` one part, `>` the rest), as pure functions."""

from __future__ import annotations

from functools import lru_cache


def is_valid_subject(subject: str, *, wildcards: bool = True) -> bool:
    """Whether `subject` is a well-formed NATS subject (or pattern, when wildcards are allowed)."""
    if not subject or any(ch.isspace() for ch in subject):
        return False
    tokens = subject.split(".")
    for index, part in enumerate(tokens):
        if not part:
            return False
        if part in ("*", ">"):
            if not wildcards or (part == ">" and index != len(tokens) - 1):
                return False
        elif "*" in part or ">" in part:
            return False
    return True


@lru_cache(maxsize=4096)
def _tokens(text: str) -> tuple[str, ...]:
    return tuple(text.split("."))


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS semantics: `*` matches exactly one part, a final `>` one or more tokens."""
    if pattern == subject:
        return True
    pattern_tokens = _tokens(pattern)
    subject_tokens = _tokens(subject)
    for index, part in enumerate(pattern_tokens):
        if part == ">":
            return len(subject_tokens) > index
        if index >= len(subject_tokens):
            return False
        if part != "*" and part != subject_tokens[index]:
            return False
    return len(pattern_tokens) == len(subject_tokens)


def matches_any(patterns: tuple[str, ...], subject: str) -> bool:
    return any(subject_matches(pattern, subject) for pattern in patterns)
