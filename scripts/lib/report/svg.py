"""Inline SVG, written directly (no plotting library, nothing loaded): a line chart of one or more series, and the
strip that places a measured number, its interval and the reported number's tolerance band on its table's scale."""

import math
from html import escape

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]


def _num(v: float) -> str:
    return f"{v:.4g}"


def line_chart(series: list, title: str, width: int = 360, height: int = 160) -> str:
    """[(name, [(x, y)])] as polylines on shared axes, the y range labelled, a legend below when several."""
    points = [p for _, pts in series for p in pts]
    if not points:
        return ""
    left, right, top, bottom = 48, 8, 18, 22
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + abs(y0) * 0.01 + 1e-9)
    w, h = width - left - right, height - top - bottom

    def at(x, y):
        return f"{left + (x - x0) / (x1 - x0) * w:.1f},{top + (1 - (y - y0) / (y1 - y0)) * h:.1f}"

    lines = [
        f'<polyline fill="none" stroke="{COLOURS[i % len(COLOURS)]}" stroke-width="1.6" '
        f'points="{" ".join(at(x, y) for x, y in pts)}"><title>{escape(name)}</title></polyline>'
        for i, (name, pts) in enumerate(series)
    ]
    legend = "".join(
        f'<span class="key"><i style="background:{COLOURS[i % len(COLOURS)]}"></i>{escape(name)}</span>'
        for i, (name, _) in enumerate(series)
    )
    return (
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        f'<rect x="{left}" y="{top}" width="{w}" height="{h}" class="frame"/>'
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{_num(y1)}</text>'
        f'<text x="{left - 4}" y="{top + h}" text-anchor="end">{_num(y0)}</text>'
        f'<text x="{left}" y="{height - 6}">{_num(x0)}</text>'
        f'<text x="{left + w}" y="{height - 6}" text-anchor="end">{_num(x1)}</text>'
        f"{''.join(lines)}</svg>" + (f'<div class="legend">{legend}</div>' if len(series) > 1 else "") + "</figure>"
    )


def strip(measured, ci, reported, tolerance, ok, top: float = 100.0, width: int = 160, height: int = 14) -> str:
    """One verify row on 0-top (100, or 1 for a table in 0-1): the band reported +- tolerance, the measured dot and
    its interval's whisker; nothing on a scale without a top (a perplexity)."""
    if not math.isfinite(top):
        return ""

    def x(v):
        return f"{max(0.0, min(top, v)) / top * (width - 4) + 2:.1f}"

    parts = [
        f'<line x1="{x(v)}" x2="{x(v)}" y1="0" y2="{height}" class="grid"/>'
        for v in (0, top / 4, top / 2, top * 3 / 4, top)
    ]
    if reported is not None and tolerance is not None:
        lo, hi = reported - tolerance, reported + tolerance
        parts.append(f'<rect x="{x(lo)}" y="2" width="{float(x(hi)) - float(x(lo)):.1f}" height="{height - 4}" '
                     'class="band"/>')  # fmt: skip
        parts.append(f'<line x1="{x(reported)}" x2="{x(reported)}" y1="1" y2="{height - 1}" class="reported"/>')
    if ci:
        parts.append(f'<line x1="{x(ci[0])}" x2="{x(ci[1])}" y1="{height / 2}" y2="{height / 2}" class="whisker"/>')
    if measured is not None:
        state = "pass" if ok else "fail" if ok is False else "apart"
        parts.append(f'<circle cx="{x(measured)}" cy="{height / 2}" r="3.2" class="dot {state}"/>')
    return f'<svg class="strip" width="{width}" height="{height}" viewBox="0 0 {width} {height}">{"".join(parts)}</svg>'
