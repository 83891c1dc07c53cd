"""Bar charts as inline SVG, drawn on the server: no script, readable without one."""

from __future__ import annotations

from datetime import datetime
from html import escape

from markupsafe import Markup

from homing.service.activity import Hourly

WIDTH = 480
HEIGHT = 120
TOP = 14  # room for the maximum's label
BOTTOM = 16  # room for the hour labels


def bar_chart(starts: list[datetime], counts: list[int], *, label: str) -> Markup:
    """One bar per hour, the highest labelled; `label` names the chart for screen readers."""
    peak = max(counts, default=0)
    slot = WIDTH / max(len(counts), 1)
    plot = HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}, highest {peak} per hour" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (start, count) in enumerate(zip(starts, counts, strict=True)):
        height = 0.0 if peak == 0 else plot * count / peak
        x = i * slot
        y = TOP + plot - height
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{slot - 2:.1f}" height="{height:.1f}">'
            f"<title>{start:%H}:00 UTC: {count}</title></rect>"
        )
        if i % 6 == 0:
            parts.append(
                f'<text x="{x + 1:.1f}" y="{HEIGHT - 3}" class="axis">{start:%H}:00</text>'
            )
    parts.append(f'<text x="0" y="10" class="axis">{peak} per hour</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def queries_chart(hourly: Hourly, nodes: dict[str, int]) -> Markup:
    """DNS queries per hour over every node, and each node's share in words."""
    chart = bar_chart(hourly.starts, hourly.counts, label="DNS queries per hour, last 24 hours")
    shares = ", ".join(f"{escape(node)}: {count:,}" for node, count in nodes.items())
    return chart + Markup(
        f'<p class="muted small" data-figure="nodes">per node: {shares or "none yet"}</p>'
    )
