"""Pure optimization core: typed problem, device blocks as sparse matrices, solver backends.

Typical use::

    from hbopt.optimizer import Battery, Inputs, Problem, Site, State, optimize

    plan = optimize(Problem(Site(battery=Battery()), Inputs.from_frame(frame), State(0.4)))
    plan.slots          # per-slot DataFrame, units in the column names
    plan.summary        # cost, energy totals, violations, solver statistics
    plan.setpoints()    # what the box should do now
"""

from hbopt.optimizer.config import (
    PV,
    Battery,
    ChargingMode,
    ConfigError,
    EVSession,
    FeedInRule,
    Grid,
    HeatPump,
    Site,
    Tuning,
    Wallbox,
)
from hbopt.optimizer.formulate import formulate
from hbopt.optimizer.plan import (
    HeatPumpSetpoint,
    Plan,
    PlanSummary,
    Setpoints,
    SGReady,
    Violation,
    WallboxSetpoint,
    optimize,
)
from hbopt.optimizer.problem import Inputs, Problem, State
from hbopt.optimizer.solvers import SolverError, available_solvers, get_solver
from hbopt.optimizer.solvers.pulp_backend import write_model

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
    "Plan",
    "PlanSummary",
    "Problem",
    "SGReady",
    "Setpoints",
    "Site",
    "SolverError",
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
