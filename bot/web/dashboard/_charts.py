"""Bar charts as inline SVG, drawn on the server (no script, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 720, 180
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP = 48, 28, 12


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def bar_chart(
    title: str,
    bars: Sequence[tuple[str, float]],
    *,
    unit: str = "",
    label_every: int = 1,
) -> str:
    """An SVG bar chart of ``(label, value)`` pairs; every ``label_every``-th label is shown."""
    top = _nice_max(max((value for _, value in bars), default=0.0))
    plot_w = WIDTH - MARGIN_LEFT - 8
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    slot = plot_w / max(1, len(bars))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP + plot_h}" x2="{WIDTH - 8}" '
        f'y2="{MARGIN_TOP + plot_h}" stroke="#888"/>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = MARGIN_TOP + plot_h * (1 - fraction)
        parts.append(
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"{escape(_number(top * fraction))}{escape(unit)}</text>"
        )
    for n, (label, value) in enumerate(bars):
        height = plot_h * (value / top) if top else 0.0
        x = MARGIN_LEFT + n * slot
        parts.append(
            f'<rect class="bar" x="{x + slot * 0.1:.2f}" y="{MARGIN_TOP + plot_h - height:.2f}" '
            f'width="{max(slot * 0.8, 0.5):.2f}" height="{height:.2f}" fill="#4a7bd0">'
            f"<title>{escape(label)}: {escape(_number(value))}{escape(unit)}</title></rect>"
        )
        if n % label_every == 0:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{HEIGHT - 10}" text-anchor="middle" '
                f'font-size="11">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
