""" "Share your impact": a plain-text summary and a small PNG card of one period.

The PNG is rendered with matplotlib's Agg canvas on a private ``Figure`` (no pyplot global
state, safe in a web worker) and returned as bytes; the caller decides where it goes.
"""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from insights.highlights import PeriodHighlights

CARD_SIZE_IN = (6.0, 3.15)  # 1200 x 630 px at 200 dpi: the usual link-preview card shape
CARD_DPI = 200


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.0f} %"


def _eur(x: float) -> str:
    return f"{x:.2f} EUR" if abs(x) < 100 else f"{x:.0f} EUR"


def _label(p: PeriodHighlights) -> str:
    last = p.end - p.start
    if last.days <= 1:
        return f"{p.start:%d %b %Y}"
    return f"{p.start:%d %b %Y} – {(p.end - last / last.days):%d %b %Y}"


def share_text(p: PeriodHighlights, *, site_name: str = "My home") -> str:
    """A shareable plain-text summary of one period (English, units spelled out)."""
    lines = [
        f"{site_name}, {_label(p)}",
        f"Solar: {p.pv_kwh:.1f} kWh produced, {_pct(p.self_consumption_rate)} used at home",
        f"Self-sufficiency: {_pct(p.autarky)} of {p.consumption_kwh:.1f} kWh consumed",
        f"CO2 avoided: {p.co2.avoided_total_kg:.1f} kg (caused {p.co2.caused_kg:.1f} kg)",
        f"Saved: {p.savings_vs_no_pv_eur:.2f} EUR against no solar and battery",
    ]
    if p.ev_solar_share is not None:
        lines.insert(3, f"EV charged {_pct(p.ev_solar_share)} from own solar")
    return "\n".join(lines)


def share_card_png(p: PeriodHighlights, *, site_name: str = "My home") -> bytes:
    """A 1200 x 630 px PNG card of one period's impact.

    Returns
    -------
    bytes
        PNG file content.
    """
    fig = Figure(figsize=CARD_SIZE_IN, dpi=CARD_DPI, facecolor="#0f3d2e")
    FigureCanvasAgg(fig)
    fig.text(0.05, 0.86, site_name, color="white", fontsize=15, weight="bold")
    fig.text(0.05, 0.77, _label(p), color="#b8e0c8", fontsize=9)
    tiles = [
        (f"{p.co2.avoided_total_kg:.1f} kg", "CO2 avoided"),
        (_pct(p.autarky), "self-sufficient"),
        (f"{p.pv_kwh:.0f} kWh", "solar produced"),
        (_eur(p.savings_vs_no_pv_eur), "saved vs no solar"),
    ]
    for i, (value, caption) in enumerate(tiles):
        x = 0.05 + i * 0.235
        fig.text(x, 0.42, value, color="#ffd54f", fontsize=15, weight="bold")
        fig.text(x, 0.31, caption, color="white", fontsize=8)
    fig.text(0.05, 0.2, "own energy | grid", color="#b8e0c8", fontsize=7)
    ax = fig.add_axes((0.05, 0.08, 0.9, 0.1))
    own = p.autarky or 0.0
    ax.barh([0], [own], color="#ffd54f")
    ax.barh([0], [1 - own], left=[own], color="#557a6a")
    ax.set_xlim(0, 1)
    ax.set_axis_off()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor=fig.get_facecolor())
    return buf.getvalue()
