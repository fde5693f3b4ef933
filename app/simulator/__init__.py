"""The built-in ONEPlatform simulator: the upstream as the developer guide describes it.

Events, streams, sports, link minting and the live-stream lookup with the guide's
operation codes, rate limits and payload quirks, plus a control API under ``/_sim/``.
Run it with ``python -m app.simulator --host 127.0.0.1 --port 8081``.
"""

from app.simulator.app import create_simulator
from app.simulator.config import SimulatorConfig

__all__ = ["SimulatorConfig", "create_simulator"]
