"""A model's profile as two small SVG plots: throughput, and p50/p99 latency with the SLO line,
against concurrency, the plan's operating point marked on both.

Concurrency levels are spaced evenly (they usually double), each labelled; values are to scale
on the vertical axis. Used by plan.html when the plan is made from a registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from profiles.schema import Profile

WIDTH = 300
HEIGHT = 150
_LEFT, _RIGHT, _TOP, _BOTTOM = 46, 10, 16, 28


@dataclass(frozen=True)
class ProfileCurve:
    """What a plot needs: the profile on the model's pool's GPU type, its SLO, and the
    concurrency the plan runs it at (None: no point met the SLO)."""

    model: str
    profile: Profile
    slo_p99_ms: float
    concurrency: int | None


def _x(index: int, count: int) -> float:
    span = WIDTH - _LEFT - _RIGHT
    return _LEFT + (span * index / (count - 1) if count > 1 else span / 2)


def _y(value: float, top: float) -> float:
    return _TOP + (HEIGHT - _TOP - _BOTTOM) * (1 - value / top)


def _frame(title: str, levels: list[int], top: float, unit: str) -> list[str]:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'role="img" aria-label="{escape(title, quote=True)}">',
             f'<text x="{_LEFT}" y="11" font-size="11" font-weight="600">{escape(title)}</text>',
             f'<line x1="{_LEFT}" y1="{_y(0, top)}" x2="{WIDTH - _RIGHT}" y2="{_y(0, top)}" '
             'stroke="#888"/>',
             f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_y(0, top)}" stroke="#888"/>']
    for fraction in (0.5, 1.0):
        y = _y(top * fraction, top)
        parts.append(f'<text x="{_LEFT - 4}" y="{y + 3}" font-size="9" text-anchor="end">'
                     f"{top * fraction:,.0f}</text>")
        parts.append(f'<line x1="{_LEFT}" y1="{y}" x2="{WIDTH - _RIGHT}" y2="{y}" '
                     'stroke="#eee"/>')
    parts.append(f'<text x="4" y="{_y(top * 0.75, top):.1f}" font-size="9" fill="#5f6368">'
                 f"{escape(unit)}</text>")
    for i, level in enumerate(levels):
        parts.append(f'<text x="{_x(i, len(levels))}" y="{HEIGHT - 14}" font-size="9" '
                     f'text-anchor="middle">{level}</text>')
    parts.append(f'<text x="{(WIDTH + _LEFT) / 2}" y="{HEIGHT - 3}" font-size="9" '
                 'text-anchor="middle" fill="#5f6368">concurrency</text>')
    return parts


def _line(values: list[float], top: float, colour: str, label: str, dashed: bool = False
          ) -> list[str]:
    points = " ".join(f"{_x(i, len(values)):.1f},{_y(v, top):.1f}" for i, v in enumerate(values))
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return [f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.8"'
            f"{dash}><title>{escape(label)}</title></polyline>"]


def _operating_point(index: int | None, count: int, value: float | None, top: float,
                     label: str) -> list[str]:
    if index is None or value is None:
        return []
    return [f'<circle cx="{_x(index, count):.1f}" cy="{_y(value, top):.1f}" r="4.5" '
            f'fill="#fff" stroke="#111" stroke-width="2"><title>{escape(label)}</title>'
            "</circle>"]


def render_curve(curve: ProfileCurve) -> str:
    """Throughput and latency plots of one model's profile, side by side."""
    points = curve.profile.points
    levels = [p.concurrency for p in points]
    chosen = levels.index(curve.concurrency) if curve.concurrency in levels else None
    label = f"operating point: concurrency {curve.concurrency}"
    throughput = [p.throughput_rps for p in points]
    top_rps = max(throughput) * 1.1
    left = _frame("throughput", levels, top_rps, "rps")
    left += _line(throughput, top_rps, "#0072B2", "throughput (requests per second)")
    left += _operating_point(chosen, len(levels), throughput[chosen] if chosen is not None
                             else None, top_rps, label)
    left.append("</svg>")
    p50, p99 = [p.p50_ms for p in points], [p.p99_ms for p in points]
    top_ms = max(max(p99), curve.slo_p99_ms) * 1.1
    right = _frame("latency p50 / p99 and SLO", levels, top_ms, "ms")
    slo_y = _y(curve.slo_p99_ms, top_ms)
    right.append(f'<line x1="{_LEFT}" y1="{slo_y:.1f}" x2="{WIDTH - _RIGHT}" y2="{slo_y:.1f}" '
                 f'stroke="#D55E00" stroke-dasharray="5 3"><title>SLO p99 '
                 f"{curve.slo_p99_ms:g} ms</title></line>")
    right += _line(p50, top_ms, "#009E73", "p50 latency (ms)")
    right += _line(p99, top_ms, "#CC79A7", "p99 latency (ms)")
    right += _operating_point(chosen, len(levels), p99[chosen] if chosen is not None else None,
                              top_ms, label)
    right.append("</svg>")
    method = "measured" if curve.profile.method == "measured" else "reference estimate"
    return (f'<figure class="profile" id="profile-{escape(curve.model, quote=True)}">'
            + "".join(left) + "".join(right)
            + f"<figcaption>{escape(curve.model)} on {escape(curve.profile.gpu_type)} "
            f"({method}); SLO p99 {curve.slo_p99_ms:g} ms; "
            + (f"runs at concurrency {curve.concurrency}" if curve.concurrency is not None
               else "no point meets the SLO")
            + "</figcaption></figure>")
