"""An in-process transport to a :class:`~simulation.box.HeartbeatBox`: no TCP, same client.

:class:`InProcessClient` is a :class:`~adapters.heartbeat.client.HeartbeatClient` whose
Modbus connection is replaced by direct calls into the box's request handler with the same
register image semantics as the pymodbus server (the box validates and renders, then the
written values are stored). Everything above the transport -- encoding, confirmation,
heartbeat, lock, retries -- is the real client. Backtests use it so that a simulated week costs
its solves, not 40,000 loopback round trips; the tests run the real server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.heartbeat.client import HeartbeatClient
from simulation.box import REG_BASE, REG_END, HeartbeatBox


@dataclass
class _Reply:
    registers: list[int] = field(default_factory=list)
    exception_code: int = 0

    def isError(self) -> bool:  # noqa: N802 - pymodbus' name
        return self.exception_code != 0


class _DirectModbus:
    """Duck-types the few methods of pymodbus' ``AsyncModbusTcpClient`` the client calls."""

    connected = True

    def __init__(self, box: HeartbeatBox) -> None:
        self.box = box
        self.regs = [0] * (REG_END - REG_BASE)

    async def read_holding_registers(self, address: int, count: int, device_id: int) -> _Reply:
        code = self.box.on_request(address, None, self.regs, self)
        lo = address - REG_BASE
        return _Reply(self.regs[lo : lo + count], code or 0)

    async def read_input_registers(self, address: int, count: int, device_id: int) -> _Reply:
        return await self.read_holding_registers(address, count, device_id)

    async def write_registers(self, address: int, values: list[int], device_id: int) -> _Reply:
        code = self.box.on_request(address, list(values), self.regs, self)
        if code is None:
            lo = address - REG_BASE
            self.regs[lo : lo + len(values)] = values
        return _Reply([], code or 0)

    def close(self) -> None:
        return None


class InProcessClient(HeartbeatClient):
    """A :class:`HeartbeatClient` talking to ``box`` in the same process."""

    def __init__(self, box: HeartbeatBox, **kwargs: Any) -> None:
        super().__init__("in-process", 0, clock=box.clock, **kwargs)
        self._direct = _DirectModbus(box)

    async def _ensure_connected(self) -> Any:
        if self._client is None:
            self._client = self._direct  # type: ignore[assignment]
            self._hb_sent_at, self._seq = None, None
            if self.controller_id is not None:
                await self._write(self._direct, 1015, [self.controller_id])  # type: ignore[arg-type]
        return self._client
