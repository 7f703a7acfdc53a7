"""Request and response bodies of the control routes: site status, the optimization switch,
and box addresses."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.schemas import DeviceReasonPublic

ControlState = Literal[
    "remote", "schedule_only", "fallback", "unreachable", "not_configured", "off"
]
_HOST = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModbusAddress(NamedTuple):
    """A box's Modbus TCP address: host, port, unit id."""

    host: str
    port: int
    unit: int

    @classmethod
    def parse(cls, text: str) -> ModbusAddress:
        """``HOST:PORT[/UNIT]`` (an IPv6 host in brackets); ValueError says what is wrong."""
        address, _, unit = text.partition("/")
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"{text!r} is not HOST:PORT[/UNIT]")
        if unit and not unit.isdigit():
            raise ValueError(f"unit {unit!r} is not a number")
        link = BoxLinkIn(
            serial="x", host=host.strip("[]"), port=int(port), unit=int(unit) if unit else 1
        )
        return cls(link.host, link.port, link.unit)


class BoxLinkIn(_In):
    """Where the service reaches a box over Modbus TCP."""

    serial: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    host: str = Field(min_length=1, max_length=253, description="IP address or DNS name")
    port: int = Field(default=502, ge=1, le=65535)
    unit: int = Field(default=1, ge=0, le=247, description="Modbus unit (device) id")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not _HOST.match(value):
                raise ValueError("not an IP address or host name") from None
        return value


class BoxLinkPublic(BoxLinkIn):
    updated_at: datetime


class OptimizationSwitch(_In):
    """The owner's switch: off hands the box back to its own logic at once."""

    enabled: bool


class OptimizationPublic(BaseModel):
    site_id: str
    enabled: bool


class SiteStatusPublic(BaseModel):
    """What the control loop knows of a site now."""

    site_id: str
    state: ControlState = Field(
        description="remote: live setpoints; schedule_only: the box follows the uploaded or "
        "fetched schedule; fallback: the box's own fallback logic; unreachable; not_configured "
        "(no box, no equipment); off (owner switched optimization off)"
    )
    state_text: str = Field(description="The state in words, e.g. 'remote control'")
    link: Literal["modbus", "pull"] | None = Field(description="How the service reaches the box")
    last_contact: datetime | None = Field(description="Last successful read of the box")
    last_plan_at: datetime | None = Field(description="When the current plan was made")
    last_error: str | None = Field(description="The last error in words")
    reasons: list[DeviceReasonPublic] = Field(
        description="Per device, why it does what the plan says in the current or next slot"
    )
    optimization: bool = Field(description="The owner's optimization switch")
    last_cycle_triggers: list[str] = Field(
        default_factory=list,
        description="Why the last cycle ran: timer, start, owner settings changed, ev plugged "
        "in, new prices, box back from fallback, ...",
    )
    updated_at: datetime | None = Field(description="When the control loop reported this")
