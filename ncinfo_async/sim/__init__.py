"""A simulated Altair Accelerator vovserver speaking REST API v3, for tests and benchmarks.

    from ncinfo_async.sim import FaultConfig, SimConfig, Simulator

    async with Simulator(SimConfig(jobs=100, tls=True)) as sim:
        ...  # sim.url, sim.ca_pem, sim.stats(), sim.set_faults(FaultConfig(error_rate=0.1))

Run it as its own process with the `ncinfo-sim` console script.
"""

from __future__ import annotations

from ._config import FaultConfig, SimConfig
from ._jobs import FIELDS, duration_pp
from ._rules import RuleError, parse
from ._server import Simulator
from ._stats import ROUTES

__all__ = [
    "FIELDS",
    "ROUTES",
    "FaultConfig",
    "RuleError",
    "SimConfig",
    "Simulator",
    "duration_pp",
    "parse",
]
