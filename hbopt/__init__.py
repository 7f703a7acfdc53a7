"""Heartbeat Optimizer: plans PV, battery, EV wallbox and heat pump of a home on day-ahead prices.

Layers (dependencies point down only)::

    api        FastAPI app: routers per audience, auth, settings, schemas
    scheduler  the control loop per site, the fleet runner, the simulated clock, CLI glue
    insights   energy highlights, CO2 impact, savings (pure functions over frames)
    optimizer  pure: problem dataclasses, device blocks, LP assembly, solver backends
    pricing    day-ahead prices, retail tariff, grid CO2 intensity (readers do file/network I/O)
    adapters   the outside world: Heartbeat Modbus client, box simulator, telemetry stores

The packages live under one import package, ``hbopt``, so that generic names such as ``api`` or
``optimizer`` never collide with other distributions installed next to this one.

Units everywhere: kW, kWh, EUR/kWh, gCO2eq/kWh, degC, state of charge as a 0-1 fraction.
Time: tz-aware UTC ``DatetimeIndex`` with a fixed step, values labelled at interval start.
"""

__version__ = "0.1.0"
