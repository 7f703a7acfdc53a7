"""Typed errors of the pricing package, so callers can tell bad data from a bad request."""

from __future__ import annotations


class PricingError(ValueError):
    """Base class: price or carbon data could not be produced."""


class PriceDataError(PricingError):
    """A price or generation document is malformed (bad XML/JSON, missing field, bad values)."""


class EntsoeErrorDocument(PricingError):  # noqa: N818 - named after the ENTSO-E document
    """ENTSO-E answered with an ``Acknowledgement_MarketDocument`` instead of data.

    Attributes
    ----------
    code : str
        The ``Reason/code`` of the acknowledgement (e.g. ``999``).
    text : str
        The ``Reason/text`` ENTSO-E sent.
    """

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"ENTSO-E error {code}: {text}")
        self.code = code
        self.text = text


class EntsoeNoDataError(EntsoeErrorDocument):
    """ENTSO-E has no data for the request (e.g. tomorrow not yet published)."""


class EntsoeAuthError(EntsoeErrorDocument):
    """ENTSO-E rejected the security token (missing, wrong or not activated)."""
