"""The monthly energy report of a site, as a PDF.

:func:`monthly_report` gathers one local month from an energy frame: the month's highlights
(:func:`insights.energy_highlights`, so every figure equals what the highlights API answers for
the same month), the days for the chart, the notable moments and the car sessions;
:func:`monthly_report_pdf` lays it out on A4 with fpdf2 (a real text layer, so the figures can
be searched and copied) and charts rendered by matplotlib's Agg canvas. No I/O: bytes out.

Car sessions come from the frame (contiguous charging, split at two hours without charge); where
the service recorded what the owner asked for (:class:`SessionTarget`), each session says
whether the target was met. The average price of a session values energy from the home's own
PV and battery at the export price it did not earn, and grid energy at the import price.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from fpdf import FPDF
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from insights.flows import InsightSettings, slot_quantities
from insights.highlights import PeriodHighlights, energy_highlights
from insights.moments import NotableMoment, notable_moments

#: A pause longer than this ends a car session [h].
SESSION_GAP_H = 2.0
_FONT_DIR = Path(mpl.get_data_path()) / "fonts" / "ttf"


@dataclass(frozen=True)
class SessionTarget:
    """What the owner asked of a car session, as the service recorded it (UTC times, kWh)."""

    plugged_in: pd.Timestamp
    plugged_out: pd.Timestamp
    target_kwh: float | None
    met: bool | None


@dataclass(frozen=True)
class EvSession:
    """One car session of the month.

    Attributes
    ----------
    start, end : pandas.Timestamp
        Start of the first and end of the last charging slot (local time).
    delivered_kwh : float
        Energy into the car [kWh].
    own_share : float
        Share from the home's PV and battery (0-1).
    average_price_eur_per_kwh : float
        Energy-weighted price: own energy at the export price, grid energy at the import price.
    target_kwh : float or None
        The owner's target, where recorded.
    met : bool or None
        Whether the target was reached by departure, where recorded.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    delivered_kwh: float
    own_share: float
    average_price_eur_per_kwh: float
    target_kwh: float | None = None
    met: bool | None = None


@dataclass(frozen=True)
class MonthlyReport:
    """Everything one month's PDF shows."""

    site_name: str
    tz: str
    month: PeriodHighlights
    days: pd.DataFrame  # per local day: own_kwh, battery_kwh, grid_kwh, export_kwh, pv_kwh
    moments: tuple[NotableMoment, ...]
    sessions: tuple[EvSession, ...]

    @property
    def label(self) -> str:
        return f"{self.month.start:%B %Y}"


def monthly_report(
    frame: pd.DataFrame,
    site_name: str,
    settings: InsightSettings,
    targets: Sequence[SessionTarget] = (),
) -> MonthlyReport:
    """The report of the one local month ``frame`` covers.

    Parameters
    ----------
    frame : pandas.DataFrame
        Energy frame of one local month (:mod:`insights.frame`).
    site_name : str
        Shown in the title.
    settings : InsightSettings
        Time zone and counterfactual battery, as for the highlights.
    targets : sequence of SessionTarget
        Recorded car targets; matched to sessions by overlap.
    """
    months = energy_highlights(frame, "month", settings)
    if len(months.periods) != 1:
        raise ValueError(f"frame: must cover one local month, covers {len(months.periods)}")
    q = slot_quantities(frame, settings)
    local_day = pd.DatetimeIndex(q.index).tz_convert(settings.tz).tz_localize(None).normalize()
    own_direct = q["pv_to_load_kwh"]
    battery = q["battery_to_load_kwh"]
    days = pd.DataFrame(
        {
            "solar_kwh": own_direct.groupby(local_day).sum(),
            "battery_kwh": battery.groupby(local_day).sum(),
            "grid_kwh": (q["consumption_kwh"] - own_direct - battery).groupby(local_day).sum(),
            "export_kwh": q["export_kwh"].groupby(local_day).sum(),
        }
    )
    return MonthlyReport(
        site_name,
        settings.tz,
        months.periods[0],
        days,
        notable_moments(frame, settings),
        ev_sessions(frame, q, settings.tz, targets),
    )


def ev_sessions(
    frame: pd.DataFrame,
    q: pd.DataFrame,
    tz: str,
    targets: Sequence[SessionTarget] = (),
) -> tuple[EvSession, ...]:
    """Car sessions in ``frame`` (``q`` = its :func:`slot_quantities`)."""
    ev = q["ev_kwh"].to_numpy()
    charging = np.flatnonzero(ev > 1e-3)
    if charging.size == 0:
        return ()
    step = q.index[1] - q.index[0]
    step_h = step / pd.Timedelta(hours=1)
    breaks = np.flatnonzero(np.diff(charging) * step_h > SESSION_GAP_H)
    groups = np.split(charging, breaks + 1)
    p_imp = frame["import_eur_per_kwh"].to_numpy(dtype=float)
    p_exp = frame["export_eur_per_kwh"].to_numpy(dtype=float)
    own = q["ev_own_kwh"].to_numpy()
    sessions = []
    for g in groups:
        kwh = float(ev[g].sum())
        own_kwh = float(own[g].sum())
        price = float((own[g] * p_exp[g] + (ev[g] - own[g]) * p_imp[g]).sum() / kwh)
        start, end = q.index[g[0]], q.index[g[-1]] + step
        target = _matching_target(start, end, targets)
        sessions.append(
            EvSession(
                start.tz_convert(tz),
                end.tz_convert(tz),
                kwh,
                own_kwh / kwh,
                price,
                None if target is None else target.target_kwh,
                None if target is None else target.met,
            )
        )
    return tuple(sessions)


def _matching_target(
    start: pd.Timestamp, end: pd.Timestamp, targets: Sequence[SessionTarget]
) -> SessionTarget | None:
    for t in targets:
        if t.plugged_in <= end and t.plugged_out >= start:
            return t
    return None


# --------------------------------------------------------------------------- the PDF
def monthly_report_pdf(report: MonthlyReport) -> bytes:
    """The report as a PDF document (A4, two pages at most for a normal month)."""
    pdf = _Pdf(report)
    pdf.add_page()
    pdf.title_block()
    pdf.key_figures()
    pdf.chart(_daily_chart(report))
    pdf.sessions_table()
    pdf.moments_list()
    return bytes(pdf.output())


class _Pdf(FPDF):
    def __init__(self, report: MonthlyReport) -> None:
        super().__init__(format="A4")
        self.report = report
        self.set_auto_page_break(auto=True, margin=15)
        self.add_font("DejaVu", "", str(_FONT_DIR / "DejaVuSans.ttf"))
        self.add_font("DejaVu", "B", str(_FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_title(f"Energy report {report.label} – {report.site_name}")
        self.set_creator("Heartbeat Optimizer")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("DejaVu", "", 7)
        self.set_text_color(120)
        self.cell(0, 5, f"Heartbeat Optimizer · {self.report.site_name} · page {self.page_no()}")

    def title_block(self) -> None:
        self.set_font("DejaVu", "B", 18)
        self.cell(0, 10, f"Energy report {self.report.label}", new_x="LMARGIN", new_y="NEXT")
        self.set_font("DejaVu", "", 10)
        self.set_text_color(90)
        m = self.report.month
        status = "" if m.complete else " (the month is not complete yet)"
        self.cell(
            0,
            6,
            f"{self.report.site_name}, times in {self.report.tz}{status}",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        self.set_text_color(0)
        self.ln(3)

    def key_figures(self) -> None:
        for title, rows in _figure_rows(self.report.month):
            self.section(title)
            self.set_font("DejaVu", "", 10)
            for label, value in rows:
                self.cell(95, 6, label)
                self.cell(0, 6, value, align="R", new_x="LMARGIN", new_y="NEXT")
            self.ln(2)

    def section(self, title: str) -> None:
        self.set_font("DejaVu", "B", 12)
        self.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")

    def chart(self, png: bytes) -> None:
        self.section("Day by day")
        self.image(io.BytesIO(png), w=self.epw)
        self.ln(2)

    def sessions_table(self) -> None:
        self.section("Car charging")
        self.set_font("DejaVu", "", 9)
        sessions = self.report.sessions
        if not sessions:
            self.cell(0, 6, "No car charging this month.", new_x="LMARGIN", new_y="NEXT")
            return
        widths = (48, 24, 26, 30, 26, 26)
        head = ("Session", "Delivered", "Own energy", "Average price", "Target", "Met")
        with self.table(col_widths=widths, text_align="RIGHT", first_row_as_headings=True) as t:
            t.row(head)
            for s in sessions:
                t.row(
                    (
                        f"{s.start:%a %d %b %H:%M}–{s.end:%H:%M}",
                        f"{s.delivered_kwh:.1f} kWh",
                        f"{s.own_share * 100:.0f} %",
                        f"{s.average_price_eur_per_kwh * 100:.1f} ct/kWh",
                        "—" if s.target_kwh is None else f"{s.target_kwh:.1f} kWh",
                        "—" if s.met is None else ("yes" if s.met else "no"),
                    )
                )
        met = [s.met for s in sessions if s.met is not None]
        total = sum(s.delivered_kwh for s in sessions)
        self.ln(1)
        summary = f"{len(sessions)} sessions, {total:.1f} kWh"
        if met:
            summary += f"; target met in {sum(met)} of {len(met)} with a recorded target"
        self.cell(0, 6, summary, new_x="LMARGIN", new_y="NEXT")
        self.ln(2)

    def moments_list(self) -> None:
        self.section("Notable moments")
        self.set_font("DejaVu", "", 10)
        moments = self.report.moments or ()
        if not moments:
            self.cell(0, 6, "Nothing unusual this month.", new_x="LMARGIN", new_y="NEXT")
        for m in moments:
            self.multi_cell(0, 6, f"• {m.text}", new_x="LMARGIN", new_y="NEXT")


def _figure_rows(m: PeriodHighlights) -> list[tuple[str, list[tuple[str, str]]]]:
    def kwh(x: float) -> str:
        return f"{x:,.1f} kWh"

    def eur(x: float) -> str:
        return f"{x:,.2f} EUR"

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{x * 100:.1f} %"

    bill = f"you earn {eur(-m.cost_eur)} net" if m.cost_eur < 0 else f"you pay {eur(m.cost_eur)}"
    return [
        (
            "Energy in and out",
            [
                ("Solar production", kwh(m.pv_kwh)),
                ("Consumption (house, car, heat pump)", kwh(m.consumption_kwh)),
                ("Bought from the grid", kwh(m.import_kwh)),
                ("Sold to the grid", kwh(m.export_kwh)),
                (
                    "Battery charged / discharged",
                    f"{m.battery_charge_kwh:,.1f} / {m.battery_discharge_kwh:,.1f} kWh",
                ),
                ("Car / heat pump", f"{m.ev_kwh:,.1f} / {m.hp_kwh:,.1f} kWh"),
            ],
        ),
        (
            "Self-sufficiency",
            [
                ("Self-sufficiency (consumption from own solar)", pct(m.autarky)),
                ("Self-consumption (solar used at home)", pct(m.self_consumption_rate)),
            ],
        ),
        (
            "Money",
            [
                ("Energy bill", bill),
                ("Saved against no solar and no battery", eur(m.savings_vs_no_pv_eur)),
                (
                    "Saved against a plain self-consumption battery",
                    eur(m.savings_vs_self_consumption_eur),
                ),
            ],
        ),
        (
            "CO2",
            [
                ("CO2 caused by grid electricity", f"{m.co2.caused_kg:,.1f} kg"),
                (
                    "CO2 avoided (against no solar and no battery)",
                    f"{m.co2.avoided_total_kg:,.1f} kg",
                ),
            ],
        ),
    ]


def _daily_chart(report: MonthlyReport) -> bytes:
    days = report.days
    fig = Figure(figsize=(7.5, 2.8), dpi=160)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = np.arange(len(days))
    bottom = np.zeros(len(days))
    for column, label, color in (
        ("solar_kwh", "from solar", "#f2b705"),
        ("battery_kwh", "from battery", "#2a9d8f"),
        ("grid_kwh", "from grid", "#8d99ae"),
    ):
        ax.bar(x, days[column], bottom=bottom, width=0.8, label=label, color=color)
        bottom = bottom + days[column].to_numpy()
    ax.bar(x, -days["export_kwh"], width=0.8, label="sold", color="#90be6d")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x[::2], [f"{d:%d}" for d in days.index[::2]], fontsize=7)
    ax.set_ylabel("kWh per day", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlim(-0.6, len(days) - 0.4)
    ax.legend(fontsize=7, ncols=4, loc="upper center", bbox_to_anchor=(0.5, 1.18), frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
