"""Options the investigation commands share: the object filters and the output format."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from recorder.errors import UsageError

if TYPE_CHECKING:
    from recorder.investigate.events import EventFilter

KindOpt = Annotated[list[str] | None, typer.Option("--kind", help="Only this kind, repeatable.")]
NamespaceOpt = Annotated[
    list[str] | None, typer.Option("--namespace", help="Only this namespace, repeatable.")
]
NameOpt = Annotated[list[str] | None, typer.Option("--name", help="Only this name, repeatable.")]
ClusterOpt = Annotated[
    list[str] | None, typer.Option("--cluster", help="Only this cluster id (or prefix).")
]
EventTypeOpt = Annotated[
    list[str] | None,
    typer.Option("--event-type", help="Only ADDED, MODIFIED or DELETED, repeatable."),
]
EVENT_TYPES = ("ADDED", "MODIFIED", "DELETED")


def event_filter(
    kind: list[str] | None,
    namespace: list[str] | None,
    name: list[str] | None,
    cluster: list[str] | None,
    event_type: list[str] | None,
) -> EventFilter:
    """The object filter from command-line values, with errors that name the option."""
    from recorder.investigate.events import EventFilter

    for value in event_type or ():
        if value.upper() not in EVENT_TYPES:
            raise UsageError(
                f"--event-type: must be one of {', '.join(EVENT_TYPES)}, got {value!r}"
            )
    return EventFilter(
        kinds=tuple(kind or ()),
        namespaces=tuple(namespace or ()),
        names=tuple(name or ()),
        clusters=tuple(cluster or ()),
        event_types=tuple(value.upper() for value in event_type or ()),
    )


def output_format(value: str | None, allowed: tuple[str, ...]) -> str:
    """`-o` checked against what the command prints; None is the first (the default)."""
    if value is None:
        return allowed[0]
    if value not in allowed:
        raise UsageError(f"-o: must be one of {', '.join(allowed)}, got {value!r}")
    return value
