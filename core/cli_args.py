"""Checks of command-line values that every command shares, each naming the flag it checks.

They run before any slow work (loading data, solving), so a typo costs the user a second, not
a minute, and the message names the flag the user typed. Importing this module is cheap:
pandas is imported only by :func:`start_time`.
"""

from __future__ import annotations

import os
import socket
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import CliError

if TYPE_CHECKING:
    import pandas as pd


def time_zone(flag: str, name: str) -> str:
    """``name`` if it is an IANA time zone (``Europe/Berlin``), else a :class:`CliError`."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise CliError(
            f"{flag}: unknown time zone {name!r}; give an IANA name such as Europe/Berlin or UTC"
        ) from None
    return name


def start_time(flag: str, value: str, tz: str) -> pd.Timestamp:
    """``value`` as a UTC timestamp; a value without offset is local time in ``tz``."""
    import pandas as pd

    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise CliError(
            f"{flag}: {value!r} is not a date or time; use e.g. 2024-06-12 or 2024-06-12T06:00Z"
        ) from None
    if stamp is pd.NaT:
        raise CliError(f"{flag}: give a date, e.g. 2024-06-12")
    if stamp.tzinfo is None:
        try:
            stamp = stamp.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        except (ValueError, TypeError) as exc:
            raise CliError(
                f"{flag}: {value} does not exist or is ambiguous in {tz} (a DST change): {exc}; "
                "add an offset such as +01:00"
            ) from None
    return stamp.tz_convert("UTC")


def output_file(flag: str, path: Path) -> Path:
    """A file to write: its directory must exist (none is created) and be writable."""
    if path.is_dir():
        raise CliError(f"{flag}: {path} is a directory; give a file name, e.g. {path / 'x.csv'}")
    parent = path.parent
    if not parent.is_dir():
        raise CliError(
            f"{flag}: directory {parent} does not exist; create it first or pick another path"
        )
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise CliError(f"{flag}: cannot write {path} (permission denied); pick another path")
    return path


def output_dir(flag: str, path: Path) -> Path:
    """A directory to write into; made if missing and its parent exists (never a whole tree)."""
    if path.exists() and not path.is_dir():
        raise CliError(f"{flag}: {path} is a file, not a directory; give a directory to write to")
    if not path.exists():
        if not path.parent.is_dir():
            raise CliError(
                f"{flag}: {path.parent} does not exist; create it first or pick another directory"
            )
        try:
            path.mkdir()
        except OSError as exc:
            raise CliError(f"{flag}: cannot create {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise CliError(f"{flag}: cannot write to {path} (permission denied)")
    return path


def tcp_port(flag: str, port: int) -> int:
    """``port`` if it is a TCP port number (0 = any free one)."""
    if not 0 <= port <= 65535:
        raise CliError(f"{flag}: {port} is not a TCP port; give 1..65535, or 0 for a free one")
    return port


def resolve_host(flag: str, host: str) -> str:
    """``host`` if it resolves to an address this machine can bind or connect to."""
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise CliError(
            f"{flag} {host}: cannot resolve it ({exc}); give an IP address such as 127.0.0.1 "
            "or 0.0.0.0, or a known host name"
        ) from None
    return host


def pydantic_one_line(exc: Any, flags: Mapping[str, str]) -> str:
    """A pydantic ``ValidationError`` as one line, fields named by the flag that set them."""
    if not hasattr(exc, "errors"):
        return str(exc)
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        parts.append(f"{flags.get(field, field)}: {error['msg']}")
    return "; ".join(parts)
