"""PV: production up to the forecast; the rest is curtailed (free, needed at negative prices)."""

from __future__ import annotations

from optimizer.devices.context import Context


def add_pv(ctx: Context) -> None:
    """Add ``pv-power`` [kW] in ``[0, forecast]``."""
    if ctx.problem.site.pv is None:
        return
    used = ctx.m.var("pv-power", 0.0, ctx.problem.inputs.pv_kw)
    ctx.pv_used = used
    ctx.balance.append((used, 1.0))
