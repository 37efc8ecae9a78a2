"""Plain-text rendering for the terminal: aligned tables and human sizes."""

from __future__ import annotations


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns separated by two spaces, the header underlined."""
    widths = [max(len(str(row[col])) for row in [header, *rows]) for col in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True))

    rule = ["-" * width for width in widths]
    return "\n".join(line(cells).rstrip() for cells in [header, rule, *rows])


def human_duration(nanoseconds: int | None) -> str:
    """`1h02m03s`, `4.250s`, or `open` for a gap that never closed."""
    if nanoseconds is None:
        return "open"
    seconds = nanoseconds / 1e9
    if seconds < 60:
        return f"{seconds:.3f}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
