"""Everything one simulator instance holds, built once per app; handlers reach it through
``get_state`` and the ``SimState`` alias."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, cast

from fastapi import Depends, Request

from app.simulator.calllog import CallLog
from app.simulator.config import SimulatorConfig
from app.simulator.faults import FaultBook
from app.simulator.geo import IpCountryTable
from app.simulator.limits import Limits, RateLimiter
from app.simulator.links import TransactionBook
from app.simulator.schedule import Schedule

Clock = Callable[[], datetime]
Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class SimulatorState:
    config: SimulatorConfig
    clock: Clock
    monotonic: Monotonic
    sleep: Sleep
    schedule: Schedule
    limiter: RateLimiter
    geo: IpCountryTable
    transactions: TransactionBook
    calls: CallLog = field(default_factory=CallLog)
    faults: FaultBook = field(default_factory=FaultBook)

    def now(self) -> datetime:
        """The injected wall clock as an aware UTC datetime (naive values are UTC)."""
        moment = self.clock()
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)

    def reset(self) -> None:
        """Clear the call log, statistics, faults, pins, scenario, limits and geo additions."""
        self.calls.reset()
        self.faults.clear()
        self.schedule.reset()
        self.limiter.reset()
        self.limiter.limits = _limits(self.config)
        self.geo = IpCountryTable.from_pairs(self.config.ip_countries)


def _limits(config: SimulatorConfig) -> Limits:
    return Limits(config.events_min_interval_s, config.link_rate_per_s)


def build_state(
    config: SimulatorConfig,
    clock: Clock | None = None,
    monotonic: Monotonic | None = None,
    sleep: Sleep | None = None,
) -> SimulatorState:
    return SimulatorState(
        config=config,
        clock=clock or utc_now,
        monotonic=monotonic or time.monotonic,
        sleep=sleep or asyncio.sleep,
        schedule=Schedule(config.seed),
        limiter=RateLimiter(_limits(config)),
        geo=IpCountryTable.from_pairs(config.ip_countries),
        transactions=TransactionBook(config.seed),
    )


def get_state(request: Request) -> SimulatorState:
    return cast(SimulatorState, request.app.state.simulator)


SimState = Annotated[SimulatorState, Depends(get_state)]
