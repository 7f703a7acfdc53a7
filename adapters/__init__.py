"""The outside world: the Heartbeat box link, telemetry stores and the bundled data sets.

* ``heartbeat/`` — the box link: the ESI v1 register map and codec (``esi_map``), typed
  setpoints and readings (``esi_types``), the async Modbus client (``client``), the box's 5-day
  measurement buffer (``backlog``) and its HTTP upload to the gateway route (``gateway_sink``);
* ``store/`` — the :class:`~adapters.store.TelemetryStore` protocol and its SQLite and InfluxDB
  implementations, the telemetry vocabulary, a local VictoriaMetrics runner, ``hbopt store``;
* ``datasets`` — readers of the bundled weather, PV, load and EV data (UTC, project units), with
  the files themselves in ``data/``;
* ``clock`` — injectable clocks shared by the client and the box simulator.

The box simulator and its physical twin are a product of their own, in ``simulation/``.
"""
