"""Shipped example tariff files (TOML); see ``de_dynamic_example.toml``."""

from pathlib import Path

EXAMPLE_TARIFF = Path(__file__).with_name("de_dynamic_example.toml")
