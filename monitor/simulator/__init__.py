"""The exchange simulator: local servers speaking each venue's protocol, and scenarios.

``Simulator`` (server.py) serves every simulated venue on one loopback port and plays a
``Scenario`` (scenarios.py) at a speed, with optional ``Faults`` (faults.py); ``sent()``
counts what it really sent. A venue is simulated by a module under ``venues/`` following the
``VenueSim`` protocol (venue_sim.py).
"""

from monitor.simulator.faults import Faults, parse_faults
from monitor.simulator.ledger import SentCounts, SideTotals
from monitor.simulator.scenarios import SCENARIOS, build_scenario
from monitor.simulator.scenarios.model import Scenario, ScenarioEvent
from monitor.simulator.server import Simulator

__all__ = [
    "SCENARIOS",
    "Faults",
    "Scenario",
    "ScenarioEvent",
    "SentCounts",
    "SideTotals",
    "Simulator",
    "build_scenario",
    "parse_faults",
]
