"""Pure optimization core: typed problem, device blocks as sparse matrices, solver backends.

Typical use::

    from optimizer import Battery, Inputs, Problem, Site, State, optimize

    plan = optimize(Problem(Site(battery=Battery()), Inputs.from_frame(frame), State(0.4)))
    plan.slots          # per-slot DataFrame, units in the column names
    plan.summary        # cost, energy totals, violations, solver statistics
    plan.setpoints()    # what the box should do now
"""

from optimizer.config import (
    PV,
    Battery,
    ChargingMode,
    ConfigError,
    EVSession,
    FeedInRule,
    Grid,
    HeatPump,
    Milestone,
    Site,
    Tuning,
    Wallbox,
)
from optimizer.formulate import formulate
from optimizer.plan import (
    HeatPumpSetpoint,
    Plan,
    PlanSummary,
    Schedule,
    Setpoints,
    SGReady,
    Violation,
    WallboxSetpoint,
    optimize,
)
from optimizer.problem import Inputs, Problem, State
from optimizer.solvers import SolverError, SolverTimeLimitError, available_solvers, get_solver
from optimizer.solvers.pulp_backend import write_model

__all__ = [
    "PV",
    "Battery",
    "ChargingMode",
    "ConfigError",
    "EVSession",
    "FeedInRule",
    "Grid",
    "HeatPump",
    "HeatPumpSetpoint",
    "Inputs",
    "Milestone",
    "Plan",
    "PlanSummary",
    "Problem",
    "SGReady",
    "Schedule",
    "Setpoints",
    "Site",
    "SolverError",
    "SolverTimeLimitError",
    "State",
    "Tuning",
    "Violation",
    "Wallbox",
    "WallboxSetpoint",
    "available_solvers",
    "formulate",
    "get_solver",
    "optimize",
    "write_model",
]
