"""The outside world: Heartbeat box Modbus client, box simulator, telemetry stores.

Box link modules:

* ``esi_map`` — the ESI v1 register map as data, the codec, CRC-16/MODBUS;
* ``esi_types`` — setpoints, schedules, readings in project units (kW, A, SOC 0-1);
* ``heartbeat_client`` — the async Modbus client (:class:`HeartbeatClient`) and its errors;
* ``box`` — the box's control logic; ``box_sim`` — the pymodbus server around it;
* ``twin`` — the physical home behind the simulator; ``clock`` — injectable clocks;
* ``backlog`` — the 5-day measurement buffer and the :class:`BacklogSink` protocol;
* ``datasets`` — readers of the bundled weather, PV, load and EV data (UTC, project units).
"""
