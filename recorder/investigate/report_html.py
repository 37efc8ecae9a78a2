"""One self-contained HTML page from `ReportData`: inline SVG, inline style and script, no network.

Generated SVG rather than a plotting library: a timeline of a few series, shaded gaps and
re-list ticks is a few dozen elements, which a browser draws with no code of ours and no
dependency; the page stays small and opens offline, and a Content-Security-Policy that allows
nothing but inline content makes any request a visible error.
"""

from __future__ import annotations

from html import escape
from typing import Final

from recorder.investigate.report import ObjectTrail, ReportData
from recorder.timeparse import format_time

WIDTH: Final = 1000
HEIGHT: Final = 260
PAD: Final = 40
COLOURS: Final = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
)
_STYLE: Final = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
td.n { text-align: right; }
.gap { fill: #f4cccc; }
.relist { stroke: #555; stroke-dasharray: 3 3; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; }
"""
_SCRIPT: Final = """
(function () {
  var total = 0;
  document.querySelectorAll("g.series").forEach(function (g) {
    total += Number(g.getAttribute("data-total"));
  });
  document.getElementById("timeline-total").textContent = String(total);
  document.body.setAttribute("data-ready", "1");
})();
"""


def render_report(data: ReportData, title: str) -> str:
    """The whole page."""
    stats = data.stats
    first = format_time(stats.first_ns) if stats.first_ns is not None else "-"
    last = format_time(stats.last_ns) if stats.last_ns is not None else "-"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>{escape(first)} .. {escape(last)}: {stats.messages} messages, {stats.events} object"
        f" events (<span id='timeline-total'></span> on the timeline), {len(stats.gaps)} gaps,"
        f" {len(stats.relists)} re-lists.</p>",
        "<h2>Events per kind over time</h2>",
        _timeline(data),
        _legend(data),
        "<h2>Gaps</h2>",
        _gaps(data),
        "<h2>Kinds</h2>",
        _kinds(data),
        "<h2>Most-changed objects</h2>",
        _top(data.top),
        *(_trail(number, trail) for number, trail in enumerate(data.top, 1)),
        f"<script>{_SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts)


def _x(data: ReportData, time_ns: int) -> float:
    span = data.bucket_ns * len(next(iter(data.series.values()), [0]))
    fraction = (time_ns - data.start_ns) / span if span else 0.0
    return PAD + max(0.0, min(1.0, fraction)) * (WIDTH - 2 * PAD)


def _timeline(data: ReportData) -> str:
    peak = max((max(counts) for counts in data.series.values()), default=0) or 1
    plot_h = HEIGHT - 2 * PAD
    out = [f'<svg id="timeline" width="{WIDTH}" height="{HEIGHT}" role="img">']
    stats = data.stats
    end_ns = stats.last_ns or data.start_ns
    for gap in stats.gaps:
        if gap.start_ns is None:
            continue
        stop = gap.start_ns + gap.length_ns if gap.length_ns is not None else end_ns
        left, right = _x(data, gap.start_ns), _x(data, stop)
        out.append(
            f'<rect class="gap" data-kind="{escape(gap.kind)}" x="{left:.1f}" y="{PAD}"'
            f' width="{max(right - left, 2.0):.1f}" height="{plot_h}">'
            f"<title>{escape(gap.kind)} at {format_time(gap.start_ns)}</title></rect>"
        )
    for relist in stats.relists:
        x = _x(data, relist.time_ns)
        out.append(
            f'<line class="relist" x1="{x:.1f}" x2="{x:.1f}" y1="{PAD}" y2="{HEIGHT - PAD}">'
            f"<title>{escape(relist.entity)} at {format_time(relist.time_ns)}</title></line>"
        )
    out.append(
        f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{HEIGHT - PAD}" y2="{HEIGHT - PAD}"'
        ' stroke="#999"/>'
    )
    for index, (kind, counts) in enumerate(data.series.items()):
        step = (WIDTH - 2 * PAD) / max(len(counts) - 1, 1)
        points = " ".join(
            f"{PAD + i * step:.1f},{HEIGHT - PAD - count / peak * plot_h:.1f}"
            for i, count in enumerate(counts)
        )
        colour = COLOURS[index % len(COLOURS)]
        out.append(
            f'<g class="series" data-kind="{escape(kind)}" data-total="{sum(counts)}">'
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
            f"<title>{escape(kind)}: {sum(counts)} events</title></g>"
        )
    out.append(
        f'<text x="{PAD}" y="{PAD - 8}" font-size="11">peak {peak} events per'
        f" {data.bucket_ns / 1e9:.3g} s</text></svg>"
    )
    return "".join(out)


def _legend(data: ReportData) -> str:
    items = [
        f'<span style="background:{COLOURS[i % len(COLOURS)]}"></span>{escape(kind)} ({sum(c)})'
        for i, (kind, c) in enumerate(data.series.items())
    ]
    return f'<p class="legend">{"".join(items)}</p>'


def _table(header: list[str], rows: list[list[str]], css_id: str = "") -> str:
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    ident = f' id="{css_id}"' if css_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _gaps(data: ReportData) -> str:
    if not data.stats.gaps:
        return "<p>None: the journal covers its whole time range.</p>"
    rows = [
        [
            escape(gap.kind),
            format_time(gap.start_ns) if gap.start_ns is not None else "-",
            f"{gap.length_ns / 1e9:.3f} s" if gap.length_ns is not None else "open",
            "" if gap.count is None else str(gap.count),
            escape(gap.detail),
        ]
        for gap in data.stats.gaps
    ]
    return _table(["gap", "start", "length", "count", "where"], rows, "gaps")


def _kinds(data: ReportData) -> str:
    rows = [
        [
            escape(row.kind),
            str(row.events),
            str(row.types["ADDED"]),
            str(row.types["MODIFIED"]),
            str(row.types["DELETED"]),
            str(len(row.objects)),
        ]
        for row in data.kinds
    ]
    header = ["kind", "events", "ADDED", "MODIFIED", "DELETED", "objects"]
    return _table(header, rows, "kinds")


def _where(trail: ObjectTrail) -> str:
    return f"{trail.namespace}/{trail.name}" if trail.namespace else trail.name


def _top(top: list[ObjectTrail]) -> str:
    rows = [
        [
            f'<a href="#object-{number}">{escape(trail.kind)} {escape(_where(trail))}</a>',
            escape(trail.cluster[:8]),
            escape(trail.uid),
            str(trail.events),
        ]
        for number, trail in enumerate(top, 1)
    ]
    return _table(["object", "cluster", "uid", "events"], rows, "top")


def _trail(number: int, trail: ObjectTrail) -> str:
    rows = [
        [str(seq), format_time(time_ns), escape(event_type), escape(rv)]
        for seq, time_ns, event_type, rv in trail.versions
    ]
    shown = "" if len(rows) == trail.events else f" (the last {len(rows)} of {trail.events})"
    return (
        f'<section id="object-{number}"><h3>{escape(trail.kind)} {escape(_where(trail))}'
        f"{shown}</h3>{_table(['seq', 'time', 'event', 'resourceVersion'], rows)}</section>"
    )
