"""Charts as inline SVG drawn on the server: no script library, readable without
JavaScript, printable, and as sharp on a phone as on the office PC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from markupsafe import Markup, escape

__all__ = ["day_columns", "share_bars"]


def _fmt(n: float) -> str:
    return f"{int(n):,}".replace(",", ".") if float(n).is_integer() else f"{n:.1f}".replace(".", ",")


def day_columns(
    points: Sequence[tuple[str, int]], label: str, start: dt.date | None = None, end: dt.date | None = None, width: int = 640, height: int = 180
) -> Markup:
    """Checks per day as columns; every day of the period (or from the first check to the
    last) is drawn, a day without checks a gap people should see; at most the last 92."""
    if not points:
        return Markup("")
    values = dict(points)
    first, last = start or dt.date.fromisoformat(points[0][0]), end or dt.date.fromisoformat(points[-1][0])
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)][-92:]
    top = max(values.values()) or 1
    left, bottom, gap = 28, 22, 2
    plot_w, plot_h = width - left - 4, height - bottom - 8
    step = plot_w / len(days)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">',
        f"<title>{escape(label)}</title>",
    ]
    for fraction in (0.5, 1.0):
        y = 8 + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{left}" x2="{width - 4}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{_fmt(round(top * fraction))}</text>')
    for i, day in enumerate(days):
        n = values.get(day.isoformat(), 0)
        h = plot_h * n / top
        x = left + i * step + gap / 2
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{8 + plot_h - h:.1f}" width="{max(step - gap, 1):.1f}" height="{h:.1f}" rx="1.5">'
            f"<title>{day.strftime('%d/%m/%Y')}: {n}</title></rect>"
        )
        if i == 0 or i == len(days) - 1 or (len(days) > 14 and i % 7 == 0):
            anchor = "start" if i == 0 else "end" if i == len(days) - 1 else "middle"
            parts.append(f'<text class="axis" x="{x + step / 2:.1f}" y="{height - 6}" text-anchor="{anchor}">{day.strftime("%d/%m")}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def share_bars(items: Sequence[tuple[str, str, int]], label: str) -> Markup:
    """Horizontal bars, largest first: (css class, label, count). HTML with SVG bars, so
    long Vietnamese labels wrap on a narrow phone instead of being cut."""
    rows = sorted((i for i in items if i[2]), key=lambda i: -i[2])
    if not rows:
        return Markup("")
    top = max(n for _, _, n in rows)
    out = [f'<ul class="bars" aria-label="{escape(label)}">']
    for css, name, n in rows:
        pct = 100 * n / top
        out.append(
            f'<li><span class="bar-label">{escape(name)}</span><span class="bar-track">'
            f'<svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true"><rect class="bar {escape(css)}" width="{pct:.1f}" height="10" rx="2"/></svg>'
            f'</span><span class="bar-value">{_fmt(n)}</span></li>'
        )
    out.append("</ul>")
    return Markup("".join(out))
