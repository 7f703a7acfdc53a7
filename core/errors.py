"""Errors shared by every layer's command-line glue."""

from __future__ import annotations


class CliError(Exception):
    """A user-facing error: printed as ``hbopt: <message>`` with exit code 2."""
