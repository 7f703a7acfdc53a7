"""The outside world: Heartbeat box Modbus client, box simulator, telemetry stores."""
