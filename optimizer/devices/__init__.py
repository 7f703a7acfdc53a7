"""Device blocks: each adds its variables and constraints over the whole horizon.

A device function takes the :class:`~optimizer.devices.context.Context` and registers
what it feeds into (``+``) or takes from (``-``) the site's power balance; the formulation
module then writes one balance row per slot. Loops run over devices, never over time steps.
"""
