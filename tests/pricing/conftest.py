"""Fixtures of the pricing tests: real stored responses from tests/data and adapters/data."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
ES_A44 = DATA / "entsoe_A44_ES_day_ahead_2025-09-29_to_2025-10-02_PT60M_to_PT15M.xml"
FR_A44 = DATA / "entsoe_A44_FR_day_ahead_2023-05-07_to_2023-05-08.xml"
LU_A75 = DATA / "entsoe_A75_LU_generation_per_type_2024-05-21_to_2024-05-24.xml"
ACK_NO_DATA = DATA / "entsoe_acknowledgement_no_data.xml"
ACK_BAD_TOKEN = DATA / "entsoe_acknowledgement_bad_token.xml"
FI_A75 = DATA / "entsoe_A75_FI_generation_per_type_2025-10-21_to_2025-10-24.xml"


@pytest.fixture
def es_a44_text() -> str:
    return ES_A44.read_text()


@pytest.fixture
def fr_a44_text() -> str:
    return FR_A44.read_text()


@pytest.fixture
def lu_a75_text() -> str:
    return LU_A75.read_text()


@pytest.fixture
def fi_a75_text() -> str:
    return FI_A75.read_text()


@pytest.fixture
def ack_no_data() -> str:
    return ACK_NO_DATA.read_text()


@pytest.fixture
def ack_bad_token() -> str:
    return ACK_BAD_TOKEN.read_text()
