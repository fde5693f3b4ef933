"""``create_simulator``: the ONEPlatform simulator as a FastAPI app (no I/O at build)."""

from __future__ import annotations

from fastapi import FastAPI

from app.simulator import api, control
from app.simulator.config import SimulatorConfig
from app.simulator.state import Clock, Monotonic, Sleep, build_state


def create_simulator(
    config: SimulatorConfig | None = None,
    clock: Clock | None = None,
    *,
    monotonic: Monotonic | None = None,
    sleep: Sleep | None = None,
) -> FastAPI:
    """The simulator app.

    ``clock`` gives the wall time (event statuses, the call log's ``at``); ``monotonic``
    gives the seconds the rate limits are measured in; ``sleep`` serves delay faults.
    They default to the real ones.
    """
    app = FastAPI(title="ONEPlatform simulator", version="1")
    app.state.simulator = build_state(config or SimulatorConfig(), clock, monotonic, sleep)
    app.include_router(api.router)
    app.include_router(control.router)
    return app
