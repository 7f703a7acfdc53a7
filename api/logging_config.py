"""The service's log: uvicorn's loggers plus the project's own, all to stderr.

uvicorn configures only its own loggers, so without this the ``api.mail`` lines (the
confirmation and reset links when no SMTP server is set) and the control loop's messages would
reach Python's last-resort handler, which drops everything below WARNING.
"""

from __future__ import annotations

import copy
from typing import Any

from uvicorn.config import LOGGING_CONFIG

# Top-level packages whose loggers the service shows (third-party ones stay at WARNING).
PROJECT_LOGGERS = (
    "api", "hbopt", "scheduler", "adapters", "pricing", "simulation", "insights", "notifications",
)  # fmt: skip


def service_log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's ``log_config`` dict with a stderr handler for the project's loggers.

    Parameters
    ----------
    level : str
        Lowest level shown for the project's loggers (``debug``, ``info``, ``warning``...).
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["service"] = {
        "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
    }
    config["handlers"]["service"] = {
        "formatter": "service",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    for name in PROJECT_LOGGERS:
        config["loggers"][name] = {
            "handlers": ["service"],
            "level": level.upper(),
            "propagate": False,
        }
    return config
