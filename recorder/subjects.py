"""NATS subject syntax, wildcard matching (`*` one part, `>` the rest) and mapping, all pure."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from recorder.errors import UsageError


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


@dataclass(frozen=True, slots=True)
class SubjectMap:
    """`FROM=TO`: the wildcards of FROM (`*` tokens, a final `>`) fill those of TO in order."""

    source: str
    target: str

    @classmethod
    def parse(cls, text: str) -> SubjectMap:
        source, sep, target = text.partition("=")
        if not sep or not is_valid_subject(source) or not is_valid_subject(target):
            raise UsageError(f"subject map {text!r}: expected FROM=TO with NATS subjects")
        if target.count("*") > source.count("*") or (
            target.endswith(">") and not source.endswith(">")
        ):
            raise UsageError(
                f"subject map {text!r}: {target!r} uses wildcards that {source!r} lacks"
            )
        return cls(source, target)

    def apply(self, subject: str) -> str | None:
        """The mapped subject, or None when `subject` does not match FROM."""
        pattern = self.source.split(".")
        tokens = subject.split(".")
        captured: list[str] = []
        tail: list[str] = []
        for index, part in enumerate(pattern):
            if part == ">":
                if len(tokens) <= index:
                    return None
                tail = tokens[index:]
                break
            if index >= len(tokens):
                return None
            if part == "*":
                captured.append(tokens[index])
            elif part != tokens[index]:
                return None
        else:
            if len(tokens) != len(pattern):
                return None
        out = []
        stars = iter(captured)
        for part in self.target.split("."):
            if part == "*":
                out.append(next(stars))
            elif part == ">":
                out.extend(tail)
            else:
                out.append(part)
        return ".".join(out)


def map_subject(subject: str, maps: tuple[SubjectMap, ...], prefix: str = "") -> str:
    """The first matching map wins; then the prefix, if any, is put in front."""
    for mapping in maps:
        mapped = mapping.apply(subject)
        if mapped is not None:
            subject = mapped
            break
    if prefix:
        subject = f"{prefix.rstrip('.')}.{subject}"
    return subject
