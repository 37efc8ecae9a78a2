"""Arguments and options that several commands take, declared once so they read the same."""

from pathlib import Path
from typing import Annotated

import typer

JournalDir = Annotated[
    Path, typer.Argument(metavar="DIR", help="Journal directory.", show_default=False)
]
Output = Annotated[
    str,
    typer.Option(
        "--output",
        "-o",
        metavar="FORMAT",
        help="text (for people) or json (one document on stdout, for scripts).",
    ),
]
AllowGaps = Annotated[
    bool,
    typer.Option(
        "--allow-gaps",
        help="Go on around records missing from the journal (each gap is still a warning).",
    ),
]
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress display, even on a terminal.")
]
Since = Annotated[str | None, typer.Option(help="RFC 3339 time or relative like -15m.")]
Until = Annotated[str | None, typer.Option(help="RFC 3339 time or relative like -5m.")]
FromSeq = Annotated[int | None, typer.Option(min=0, help="First sequence number.")]
ToSeq = Annotated[int | None, typer.Option(min=0, help="Last sequence number.")]
Subjects = Annotated[
    list[str] | None,
    typer.Option("--subject", help="Only subjects matching this pattern (`*`, `>`), repeatable."),
]
Kinds = Annotated[
    list[str] | None, typer.Option("--kind", help="Only MeshSync objects of this kind, repeatable.")
]
Namespaces = Annotated[
    list[str] | None,
    typer.Option("--namespace", help="Only MeshSync objects in this namespace, repeatable."),
]
JournalSource = Annotated[
    str,
    typer.Argument(
        metavar="DIR",
        help="Journal directory, or an archive URL (s3://BUCKET/prefix, gs://, az://, file://).",
        show_default=False,
    ),
]
Endpoint = Annotated[
    str | None,
    typer.Option(
        envvar="RECORDER_ARCHIVE_ENDPOINT",
        help="S3-compatible server URL (credentials come from the provider's chain).",
    ),
]
ArchiveJournal = Annotated[
    str | None,
    typer.Option(
        "--journal",
        metavar="NAME",
        help="Which journal of an archive URL, when it holds several (one per recorder).",
    ),
]
# For a command that also takes --snapshot FILE instead.
OptionalJournalSource = Annotated[
    str | None,
    typer.Argument(
        metavar="DIR",
        help="Journal directory, or an archive URL (s3://BUCKET/prefix, gs://, az://, file://).",
        show_default=False,
    ),
]
JournalSources = Annotated[
    list[str],
    typer.Argument(
        metavar="DIR",
        help="Journal directory, or an archive URL (s3://BUCKET/prefix, gs://, az://, file://); "
        "several (one per cluster or recorder) are merged, newest event winning.",
        show_default=False,
    ),
]
