"""ENTSO-E Transparency Platform: day-ahead prices (A44) and generation per type (A75).

``get_*`` does the request through ``entsoe-py``'s :class:`entsoe.EntsoeRawClient` (it knows the
area codes, request parameters and paging); ``read_*`` parses the XML text with entsoe-py's own
parsers (:func:`entsoe.parsers.parse_prices`, :func:`entsoe.parsers.parse_generation`), which
expand compressed curves (curveType A03: a position is left out when the value repeats) and
return one series per resolution.

What is added on top of entsoe-py, and why:

* entsoe-py parses with BeautifulSoup's lenient *HTML* parser, so a truncated or malformed
  document yields fewer points instead of an error. The text is first checked for well-formed
  XML with the standard library, so a broken download can never become a silently short series.
* An ``Acknowledgement_MarketDocument`` (ENTSO-E's error reply: no data, bad parameters) parses
  to an empty series in entsoe-py; here it raises a typed :class:`EntsoeErrorDocument`.
* Mixed resolutions (hourly until the 1 Oct 2025 SDAC switch, quarter-hourly after) are joined
  into one 15-minute series, hourly values held over their four quarter-hours, so the unit of
  the series is the same before and after the switch. Where two resolutions cover the same
  quarter-hour, the finer one wins (it is the product actually traded after the switch).
* EUR/MWh becomes EUR/kWh here, at the edge.
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pandas as pd
import requests
from entsoe import EntsoeRawClient
from entsoe.exceptions import NoMatchingDataError
from entsoe.parsers import parse_generation, parse_prices

from pricing.errors import (
    EntsoeAuthError,
    EntsoeErrorDocument,
    EntsoeNoDataError,
    PriceDataError,
)
from pricing.series import QUARTER, expand_to_quarter_hours

_NO_DATA_CODE = "999"


def check_entsoe_document(xml_text: str) -> str:
    """Check that ``xml_text`` is well-formed XML and not an ENTSO-E error reply.

    Parameters
    ----------
    xml_text : str
        The body of an ENTSO-E API response.

    Returns
    -------
    str
        The local name of the root element (e.g. ``Publication_MarketDocument``).

    Raises
    ------
    PriceDataError
        Not well-formed XML.
    EntsoeNoDataError, EntsoeAuthError, EntsoeErrorDocument
        The document is an ``Acknowledgement_MarketDocument``.
    """
    try:
        root = ET.fromstring(xml_text.encode() if isinstance(xml_text, str) else xml_text)
    except ET.ParseError as exc:
        raise PriceDataError(f"ENTSO-E response is not well-formed XML: {exc}") from exc
    name = root.tag.rsplit("}", 1)[-1]
    if name == "Acknowledgement_MarketDocument":
        code = _first_text(root, "code") or "?"
        text = _first_text(root, "text") or "no reason given"
        # ENTSO-E uses code 999 for most refusals, so the text decides
        if "token" in text.lower() or "unauthori" in text.lower():
            raise EntsoeAuthError(code, text)
        if "no matching data" in text.lower():
            raise EntsoeNoDataError(code, text)
        raise EntsoeErrorDocument(code, text)
    return name


def _first_text(root: ET.Element, local_name: str) -> str | None:
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == local_name and element.text:
            return element.text.strip()
    return None


def read_entsoe_prices(xml_text: str) -> pd.Series:
    """Parse an A44 day-ahead price document into a 15-minute series.

    Parameters
    ----------
    xml_text : str
        The XML body of an A44 response (any mix of PT60M/PT30M/PT15M, curveType A01 or A03).

    Returns
    -------
    pandas.Series
        Spot price [EUR/kWh] on a UTC 15-minute index labelled at interval start; an hourly
        price is repeated on its four quarter-hours. Name ``spot_eur_per_kwh``.
    """
    root = check_entsoe_document(xml_text)
    if root != "Publication_MarketDocument":
        raise PriceDataError(f"expected a Publication_MarketDocument (A44), got {root}")
    with warnings.catch_warnings():
        # entsoe-py reads XML with bs4's HTML parser on purpose; its warning is noise here
        warnings.simplefilter("ignore")
        by_resolution = parse_prices(xml_text)
    parts = []
    # finest first, so drop_duplicates(keep="first") lets the finer product win
    for freq in ("15min", "30min", "60min"):
        part = by_resolution.get(freq)
        if part is not None and len(part) > 0:
            parts.append(expand_to_quarter_hours(part.astype(float), pd.Timedelta(freq)))
    if not parts:
        raise PriceDataError("A44 document contains no price points")
    joined = pd.concat(parts)
    joined = joined[~joined.index.duplicated(keep="first")].sort_index()
    return (joined / 1000.0).rename("spot_eur_per_kwh")


def read_entsoe_generation(xml_text: str) -> pd.DataFrame:
    """Parse an A75 actual-generation-per-type document.

    Parameters
    ----------
    xml_text : str
        The XML body of an A75 response.

    Returns
    -------
    pandas.DataFrame
        Generation [MW] per ENTSO-E production type name (columns as entsoe-py names them,
        e.g. ``Fossil Gas``), UTC index at the document's resolution. Only generation
        (``Actual Aggregated``) is kept; consumption of storage plants is dropped because the
        intensity is production-based. A slot where some types are missing stays NaN.
    """
    root = check_entsoe_document(xml_text)
    if root != "GL_MarketDocument":
        raise PriceDataError(f"expected a GL_MarketDocument (A75), got {root}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = parse_generation(xml_text)
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    if frame.empty:
        raise PriceDataError("A75 document contains no generation points")
    if isinstance(frame.columns, pd.MultiIndex):
        frame = frame.xs("Actual Aggregated", axis=1, level=-1)
    frame.index = pd.DatetimeIndex(frame.index).tz_convert("UTC")
    return pd.DataFrame(frame).astype(float)


def _call(fetch: Callable[[], str]) -> str:
    """Run an entsoe-py raw query and map its exceptions to the typed errors.

    entsoe-py's client already retries connection errors (3 tries, 10 s apart), so no second
    retry layer is added here.
    """
    try:
        return str(fetch())
    except NoMatchingDataError as exc:
        raise EntsoeNoDataError(_NO_DATA_CODE, "No matching data found") from exc
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status in (401, 403):
            raise EntsoeAuthError(str(status), "security token rejected") from exc
        body = exc.response.text if exc.response is not None else ""
        check_entsoe_document(body)
        raise


def get_entsoe_prices(
    token: str, area: str, start: pd.Timestamp, end: pd.Timestamp, *, timeout_s: float = 30.0
) -> pd.Series:
    """Fetch day-ahead prices from ENTSO-E and parse them (see :func:`read_entsoe_prices`).

    Parameters
    ----------
    token : str
        ENTSO-E security token.
    area : str
        entsoe-py area name, e.g. ``DE_LU``.
    start, end : pandas.Timestamp
        tz-aware bounds of the request.
    timeout_s : float
        HTTP timeout [s].
    """
    if not token:
        raise EntsoeAuthError("401", "no ENTSO-E token configured (HBOPT_ENTSOE_TOKEN)")
    client = EntsoeRawClient(api_key=token, timeout=int(timeout_s))
    if area in ("DE_LU", "AT"):  # as entsoe-py's pandas client does: sequence 1 is SDAC
        text = _call(lambda: client.query_day_ahead_prices(area, start, end, sequence=1))
    else:
        text = _call(lambda: client.query_day_ahead_prices(area, start, end))
    return read_entsoe_prices(text)


def get_entsoe_generation(
    token: str, area: str, start: pd.Timestamp, end: pd.Timestamp, *, timeout_s: float = 30.0
) -> pd.DataFrame:
    """Fetch actual generation per production type (A75) and parse it."""
    if not token:
        raise EntsoeAuthError("401", "no ENTSO-E token configured (HBOPT_ENTSOE_TOKEN)")
    client = EntsoeRawClient(api_key=token, timeout=int(timeout_s))
    text = _call(lambda: client.query_generation(area, start=start, end=end))
    return read_entsoe_generation(text)


__all__ = [
    "QUARTER",
    "check_entsoe_document",
    "get_entsoe_generation",
    "get_entsoe_prices",
    "read_entsoe_generation",
    "read_entsoe_prices",
]
