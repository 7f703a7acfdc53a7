"""The Heartbeat box simulator: ESI v1 over a real Modbus TCP server with a physical home behind it.

* ``box`` — the box's control logic (watchdog, schedule, clamping, precedence);
* ``box_sim`` — the pymodbus server around it; ``box_inprocess`` — the same box without TCP;
* ``twin`` — the physical home (battery, PV, load, EV, heat pump) driven by the bundled data;
* ``cli`` — ``hbopt box-sim``.

Tests, the demo and backtests use it; the service never does.
"""
