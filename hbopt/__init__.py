"""Heartbeat Optimizer's composition root: the ``hbopt`` command, the demo and the service.

The layers are top-level packages (dependencies point down only)::

    api         FastAPI app: routers per audience, auth, accounts store, settings, schemas
    scheduler   the control loop per site, the fleet runner, the simulated clock, CLI glue
    simulation  the Heartbeat box simulator and the physical twin behind it
    insights    energy highlights, CO2 impact, savings (pure functions over frames)
    optimizer   pure: problem dataclasses, device blocks, LP assembly, solver backends
    pricing     day-ahead prices, retail tariff, grid CO2 intensity (readers do file/network I/O)
    adapters    the outside world: Heartbeat Modbus client, telemetry stores, bundled data
    core        the time-grid rules and the user-error type every layer shares

This package sits above them all and wires them together; nothing below imports it.

Units everywhere: kW, kWh, EUR/kWh, gCO2eq/kWh, degC, state of charge as a 0-1 fraction.
Time: tz-aware UTC ``DatetimeIndex`` with a fixed step, values labelled at interval start.
"""

from core import __version__

__all__ = ["__version__"]
