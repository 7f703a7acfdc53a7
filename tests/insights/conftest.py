"""Fixtures: a frame factory and a plain local day."""

from __future__ import annotations

import pandas as pd
import pytest

from core.timeindex import local_day
from tests.insights.frames import FrameFactory, build_frame


@pytest.fixture
def make_frame() -> FrameFactory:
    return build_frame


@pytest.fixture
def day() -> pd.DatetimeIndex:
    """A plain 96-slot local day (2024-06-12, Europe/Berlin) as a UTC index."""
    return local_day("2024-06-12")
