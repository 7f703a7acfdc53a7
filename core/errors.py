"""Errors shared by every layer's command-line glue."""

from __future__ import annotations


class CliError(Exception):
    """A user-facing error, printed as ``hbopt: <message>``.

    ``exit_code`` is 2 for a mistake in what the user typed (the default) and 1 for a runtime
    failure (a server that does not answer, a port already in use).
    """

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
