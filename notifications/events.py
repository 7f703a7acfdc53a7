"""What is worth a message to an owner, found from what the control loop observes.

A :class:`SiteWatch` follows one site from one :class:`SiteSnapshot` to the next (one per control
cycle) and returns the :class:`Event` s that the change makes worth telling: the car reached
its target, the plan cannot reach it by departure, the box has been offline or in fallback for
longer than a grace period (and is back), a grid-operator (§14a) limit started or ended. Events
about a day or a month (negative prices tomorrow, the monthly report) are made by the jobs that
know about them, with :func:`negative_prices_event` and :func:`monthly_report_event`.

Each event carries a ``key`` that names the occurrence (the car session, the outage, the day);
the dispatcher sends an event with a key it has sent before only once, so a replan, a restart
or a second control process never repeats a message. Pure: no I/O, times are tz-aware UTC.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd


class EventKind(enum.StrEnum):
    """The kinds of message an owner can switch on or off."""

    EV_CHARGED = "ev_charged"
    EV_TARGET_AT_RISK = "ev_target_at_risk"
    BOX_OFFLINE = "box_offline"
    BOX_BACK = "box_back"
    GRID_LIMIT_START = "grid_limit_start"
    GRID_LIMIT_END = "grid_limit_end"
    NEGATIVE_PRICES_TOMORROW = "negative_prices_tomorrow"
    MONTHLY_REPORT_READY = "monthly_report_ready"


class ChannelName(enum.StrEnum):
    FEED = "feed"
    EMAIL = "email"
    WEBHOOK = "webhook"
    PUSH = "push"


_ALL = frozenset(ChannelName)
_QUIET = frozenset({ChannelName.FEED, ChannelName.WEBHOOK, ChannelName.PUSH})
#: Channels each kind uses until the owner changes it: what needs action now goes everywhere,
#: news that can wait stays out of the mailbox.
DEFAULT_CHANNELS: dict[EventKind, frozenset[ChannelName]] = {
    EventKind.EV_CHARGED: _QUIET,
    EventKind.EV_TARGET_AT_RISK: _ALL,
    EventKind.BOX_OFFLINE: _ALL,
    EventKind.BOX_BACK: _ALL,
    EventKind.GRID_LIMIT_START: _QUIET,
    EventKind.GRID_LIMIT_END: _QUIET,
    EventKind.NEGATIVE_PRICES_TOMORROW: _QUIET,
    EventKind.MONTHLY_REPORT_READY: frozenset({ChannelName.FEED, ChannelName.EMAIL}),
}


@dataclass(frozen=True)
class Event:
    """One thing worth telling the owners of ``site_id``.

    Attributes
    ----------
    kind : EventKind
    site_id : str
    at : datetime
        When it happened (tz-aware UTC).
    key : str
        Names the occurrence; the same key is delivered once per recipient and channel.
    title, body : str
        Plain-language text, in the site's local time where it names a time.
    data : dict
        Machine-readable details (numbers in project units), passed on by webhooks.
    """

    kind: EventKind
    site_id: str
    at: datetime
    key: str
    title: str
    body: str
    data: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class SiteRef:
    """A site as messages name it: id, display name, local time zone."""

    site_id: str
    name: str
    tz: str


@dataclass(frozen=True)
class SiteSnapshot:
    """What one control cycle knows about a site, in project units.

    Attributes
    ----------
    site_id, site_name, tz : str
        The site and its local time zone (for times in messages).
    at : datetime
        Time of the observation (tz-aware UTC).
    box_ok : bool
        The box answered and is under the service's or its schedule's control (not fallback).
    box_problem : str
        Why not, in words ("unreachable", "in fallback"); empty when ``box_ok``.
    ev_connected : bool
        A car is plugged in.
    ev_energy_kwh, ev_target_kwh : float or None
        Energy in the car and its target [kWh]; None when there is no car or no target.
    ev_departure : datetime or None
        The departure the plan charges toward (tz-aware UTC).
    ev_shortfall_kwh : float
        Energy the current plan leaves missing at departure [kWh] (0 when it reaches the target).
    ev_shortfall_reason : str
        Why, in words (from the plan's violated targets); empty when there is no shortfall.
    grid_limit_kw : float or None
        Active grid-operator import limit [kW], None when there is none.
    """

    site_id: str
    site_name: str
    tz: str
    at: datetime
    box_ok: bool = True
    box_problem: str = ""
    ev_connected: bool = False
    ev_energy_kwh: float | None = None
    ev_target_kwh: float | None = None
    ev_departure: datetime | None = None
    ev_shortfall_kwh: float = 0.0
    ev_shortfall_reason: str = ""
    grid_limit_kw: float | None = None


@dataclass(frozen=True)
class SessionOutcome:
    """A car session as it ended: what was asked and what was delivered [kWh]."""

    site_id: str
    plugged_in: datetime
    plugged_out: datetime
    target_kwh: float | None
    energy_kwh: float | None
    delivered_kwh: float
    met: bool | None


#: A shortfall smaller than this is rounding, not news [kWh].
SHORTFALL_TOLERANCE_KWH = 0.5
#: The target counts as reached this close to it [kWh].
TARGET_TOLERANCE_KWH = 0.2


@dataclass
class SiteWatch:
    """Turns consecutive snapshots of one site into events.

    Parameters
    ----------
    offline_after : timedelta
        How long the box must be offline or in fallback before the owner hears of it; short
        interruptions (a router restart) are not news.
    """

    offline_after: timedelta = timedelta(minutes=30)
    _last: SiteSnapshot | None = None
    _down_since: datetime | None = None
    _down_announced: bool = False
    _session_start: datetime | None = None
    _session_first_kwh: float | None = None
    _session_target: float | None = None
    _charged_announced: bool = False
    _risk_announced_for: datetime | None = None
    ended_sessions: list[SessionOutcome] = field(default_factory=list)

    def observe(self, snap: SiteSnapshot) -> list[Event]:
        """Events that ``snap`` makes worth telling, given the snapshots seen before."""
        events = self._box(snap) + self._ev(snap) + self._grid_limit(snap)
        self._last = snap
        return events

    def _box(self, snap: SiteSnapshot) -> list[Event]:
        if not snap.box_ok:
            self._down_since = self._down_since or snap.at
            if not self._down_announced and snap.at - self._down_since >= self.offline_after:
                self._down_announced = True
                minutes = int((snap.at - self._down_since).total_seconds() // 60)
                return [
                    _event(
                        EventKind.BOX_OFFLINE,
                        snap,
                        f"box-down:{_iso(self._down_since)}",
                        (
                            f"{snap.site_name}: your Heartbeat box is "
                            f"{snap.box_problem or 'offline'}",
                            f"Since {_local(self._down_since, snap.tz)} ({minutes} min) the "
                            "service cannot control your home; the box runs on its own logic "
                            "meanwhile.",
                        ),
                        {"since": _iso(self._down_since), "problem": snap.box_problem},
                    )
                ]
            return []
        events = []
        if self._down_since is not None and self._down_announced:
            events.append(
                _event(
                    EventKind.BOX_BACK,
                    snap,
                    f"box-back:{_iso(self._down_since)}",
                    (
                        f"{snap.site_name}: your Heartbeat box is back",
                        f"Control resumed at {_local(snap.at, snap.tz)} after an outage since "
                        f"{_local(self._down_since, snap.tz)}.",
                    ),
                    {"since": _iso(self._down_since)},
                )
            )
        self._down_since, self._down_announced = None, False
        return events

    def _ev(self, snap: SiteSnapshot) -> list[Event]:
        last = self._last
        was_connected = last is not None and last.ev_connected
        if was_connected and not snap.ev_connected and last is not None:
            self._end_session(last, snap.at)
        if not snap.ev_connected:
            return []
        if not was_connected or self._session_start is None:
            self._start_session(snap)
        if snap.ev_target_kwh is not None:
            self._session_target = snap.ev_target_kwh
        events: list[Event] = []
        session = _iso(self._session_start or snap.at)
        energy, target = snap.ev_energy_kwh, snap.ev_target_kwh
        if (
            energy is not None
            and target is not None
            and energy >= target - TARGET_TOLERANCE_KWH
            and not self._charged_announced
        ):
            self._charged_announced = True
            events.append(
                _event(
                    EventKind.EV_CHARGED,
                    snap,
                    f"ev-charged:{session}",
                    (
                        f"{snap.site_name}: your car is charged",
                        f"The car holds {energy:.1f} kWh, its target of {target:.1f} kWh.",
                    ),
                    {"energy_kwh": round(energy, 3), "target_kwh": round(target, 3)},
                )
            )
        at_risk = snap.ev_shortfall_kwh > SHORTFALL_TOLERANCE_KWH and snap.ev_departure is not None
        if at_risk and self._risk_announced_for != snap.ev_departure:
            self._risk_announced_for = snap.ev_departure
            events.append(self._risk_event(snap, session))
        return events

    def _risk_event(self, snap: SiteSnapshot, session: str) -> Event:
        assert snap.ev_departure is not None
        reason = snap.ev_shortfall_reason or "the charging power and time left are not enough"
        return _event(
            EventKind.EV_TARGET_AT_RISK,
            snap,
            f"ev-risk:{session}:{_iso(snap.ev_departure)}",
            (
                f"{snap.site_name}: your car will not reach its target",
                f"By {_local(snap.ev_departure, snap.tz)} the plan reaches "
                f"{(snap.ev_target_kwh or 0) - snap.ev_shortfall_kwh:.1f} of "
                f"{snap.ev_target_kwh or 0:.1f} kWh, {snap.ev_shortfall_kwh:.1f} kWh short: "
                f"{reason}.",
            ),
            {
                "departure": _iso(snap.ev_departure),
                "shortfall_kwh": round(snap.ev_shortfall_kwh, 3),
                "target_kwh": snap.ev_target_kwh,
                "reason": reason,
            },
        )

    def _start_session(self, snap: SiteSnapshot) -> None:
        self._session_start = snap.at
        self._session_first_kwh = snap.ev_energy_kwh
        self._session_target = snap.ev_target_kwh
        self._charged_announced = False
        self._risk_announced_for = None

    def _end_session(self, last: SiteSnapshot, at: datetime) -> None:
        start = self._session_start or last.at
        energy, first = last.ev_energy_kwh, self._session_first_kwh
        delivered = max(0.0, (energy or 0.0) - (first or 0.0))
        target = self._session_target
        met = None if target is None or energy is None else energy >= target - TARGET_TOLERANCE_KWH
        self.ended_sessions.append(
            SessionOutcome(last.site_id, start, at, target, energy, delivered, met)
        )
        self._session_start = None

    def _grid_limit(self, snap: SiteSnapshot) -> list[Event]:
        before = None if self._last is None else self._last.grid_limit_kw
        if (before is None) == (snap.grid_limit_kw is None):
            return []
        if snap.grid_limit_kw is not None:
            return [
                _event(
                    EventKind.GRID_LIMIT_START,
                    snap,
                    f"limit-start:{_iso(snap.at)}",
                    (
                        f"{snap.site_name}: the grid operator limits your import",
                        f"From {_local(snap.at, snap.tz)} your home may draw at most "
                        f"{snap.grid_limit_kw:.1f} kW from the grid (§14a EnWG); the plan "
                        "keeps to it.",
                    ),
                    {"limit_kw": snap.grid_limit_kw},
                )
            ]
        return [
            _event(
                EventKind.GRID_LIMIT_END,
                snap,
                f"limit-end:{_iso(snap.at)}",
                (
                    f"{snap.site_name}: the grid operator's limit has ended",
                    f"Since {_local(snap.at, snap.tz)} your home may draw its full power again.",
                ),
                {},
            )
        ]


def negative_prices_event(
    site: SiteRef,
    at: datetime,
    spot_eur_per_kwh: pd.Series,
    plan_kw: pd.DataFrame | None = None,
) -> Event | None:
    """The event for negative day-ahead prices in ``spot_eur_per_kwh`` (one local day).

    Parameters
    ----------
    site : SiteRef
        The site the message is about.
    at : datetime
        When the prices became known (tz-aware UTC).
    spot_eur_per_kwh : pandas.Series
        Tomorrow's spot prices [EUR/kWh] on a UTC index (one local day).
    plan_kw : pandas.DataFrame, optional
        The plan for the same slots, columns among ``battery_kw`` (+ discharge), ``ev_kw``,
        ``hp_kw`` [kW]; what the plan does in the negative slots goes into the message.

    Returns
    -------
    Event or None
        None when no slot is negative.
    """
    negative = spot_eur_per_kwh[spot_eur_per_kwh < 0]
    if negative.empty:
        return None
    local = pd.DatetimeIndex(negative.index).tz_convert(site.tz)
    day = local[0].date()
    step_h = _step_hours(pd.DatetimeIndex(spot_eur_per_kwh.index))
    hours = len(negative) * step_h
    first, last = local[0], local[-1] + pd.Timedelta(hours=step_h)
    use = _plan_use(plan_kw, pd.DatetimeIndex(negative.index), step_h)
    text = (
        f"Tomorrow, {day:%a %d %b}, the spot price is negative for {hours:g} h between "
        f"{first:%H:%M} and {last:%H:%M} (lowest {negative.min() * 100:.1f} ct/kWh)."
    )
    text += f" The plan uses them: {use}." if use else ""
    return Event(
        EventKind.NEGATIVE_PRICES_TOMORROW,
        site.site_id,
        at,
        f"negative-prices:{day.isoformat()}",
        f"{site.name}: negative electricity prices tomorrow",
        text,
        {"day": day.isoformat(), "hours": hours, "min_eur_per_kwh": float(negative.min())},
    )


def monthly_report_event(site: SiteRef, month: str, at: datetime, url: str) -> Event:
    """The event that the report of ``month`` (``YYYY-MM``) is ready at ``url``."""
    return Event(
        EventKind.MONTHLY_REPORT_READY,
        site.site_id,
        at,
        f"report:{month}",
        f"{site.name}: your energy report for {month} is ready",
        f"Your monthly energy report (PDF) for {month}: {url}",
        {"month": month, "url": url},
    )


def _plan_use(plan_kw: pd.DataFrame | None, slots: pd.DatetimeIndex, step_h: float) -> str:
    if plan_kw is None:
        return ""
    part = plan_kw.reindex(slots)
    words = []
    if "battery_kw" in part:
        charge = float((-part["battery_kw"]).clip(lower=0).sum() * step_h)
        if charge > 0.05:
            words.append(f"{charge:.1f} kWh into the battery")
    for column, name in (("ev_kw", "the car"), ("hp_kw", "the heat pump")):
        if column in part:
            kwh = float(part[column].clip(lower=0).sum() * step_h)
            if kwh > 0.05:
                words.append(f"{kwh:.1f} kWh for {name}")
    return ", ".join(words)


def _step_hours(index: pd.DatetimeIndex) -> float:
    if len(index) < 2:
        return 0.25
    return float((index[1] - index[0]) / pd.Timedelta(hours=1))


def _event(
    kind: EventKind, snap: SiteSnapshot, key: str, text: tuple[str, str], data: dict[str, object]
) -> Event:
    """An event about ``snap``; ``text`` is (title, body)."""
    return Event(kind, snap.site_id, snap.at, key, text[0], text[1], data)


def _iso(t: datetime) -> str:
    return pd.Timestamp(t).tz_convert("UTC").strftime("%Y-%m-%dT%H:%MZ")


def _local(t: datetime, tz: str) -> str:
    return pd.Timestamp(t).tz_convert(tz).strftime("%a %H:%M")


__all__ = [
    "DEFAULT_CHANNELS",
    "ChannelName",
    "Event",
    "EventKind",
    "SessionOutcome",
    "SiteRef",
    "SiteSnapshot",
    "SiteWatch",
    "monthly_report_event",
    "negative_prices_event",
]
