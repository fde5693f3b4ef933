"""The line for the link budget: first come, first served, across the fleet.

When link requests arrive faster than the budget, each gets the next slot of the
budget's schedule, in arrival order. A slot within ``hold_s`` is waited for (the
request is held, then minted); a later one becomes the viewer's *place*: the viewer
is told to come back just inside its hold window (``retry_after_s``), where it
stands (``position``, ``eta_s``), and keeps the place when it does, however early
it comes back. A place not claimed within ``grace_s`` after its slot is given up.

A renewal (a viewer whose current link is unexpired) has a deadline, the link's
expiry. While a line is waiting (more than a second of it), one that could come
back after the line ahead of it and still have ``renewal_lead_s`` to spare is told
to (``deferred``, no place taken), so renewals that can wait do not delay
newcomers; one that cannot takes the sooner of the main lane and a small renewal
lane (``renewal_rate_per_s``) that newcomers never use.
Places claimed after their slot went by also use the sooner lane. The two lanes'
rates add up to the budget's, so the budget holds in every second.

The fleet's line lives in Redis (``admission.lua``, one round trip with dedupe and
the other limits). ``LocalLine`` is the same line kept by one replica, within its
share of the budget, while the store is unreachable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

LineOutcome = Literal["admitted", "queued", "deferred"]


@dataclass(frozen=True, slots=True)
class LinePolicy:
    """How the line spends a budget of ``main_rate_per_s + renewal_rate_per_s`` slots a
    second, plus ``burst`` at once in the main lane (the renewal lane has none: one call
    at a time). In any second: at most burst - 1 + main + renewal calls."""

    main_rate_per_s: float
    renewal_rate_per_s: float
    burst: int
    hold_s: float
    grace_s: float
    renewal_lead_s: float
    # How late a place may be claimed and keep its own slot: later, its slot went
    # out unused and the viewer takes the sooner lane's next one.
    late_s: float = 0.02

    @classmethod
    def for_budget(
        cls,
        rate_per_s: float,
        burst: int,
        *,
        renewal_share: float,
        hold_s: float,
        grace_s: float,
        renewal_lead_s: float,
    ) -> LinePolicy:
        """Split ``rate_per_s`` (the rate the bucket refills at) into the two lanes. The
        renewal lane gets a whole number of slots a second (at least one when a share
        is asked for and the budget allows it): the sum of two whole rates keeps the
        budget's slack of one call in any second."""
        renewal = float(math.floor(rate_per_s * renewal_share)) if renewal_share > 0 else 0.0
        if renewal_share > 0 and renewal < 1 and rate_per_s >= 2:
            renewal = 1.0
        if rate_per_s - renewal <= 0:
            renewal = 0.0
        return cls(
            main_rate_per_s=rate_per_s - renewal,
            renewal_rate_per_s=renewal,
            burst=burst,
            hold_s=hold_s,
            grace_s=grace_s,
            renewal_lead_s=renewal_lead_s,
        )

    def share(self, parts: int) -> LinePolicy:
        """This policy for one of ``parts`` replicas (the local line)."""
        return LinePolicy(
            main_rate_per_s=self.main_rate_per_s / parts,
            renewal_rate_per_s=self.renewal_rate_per_s / parts,
            burst=self.burst,
            hold_s=self.hold_s,
            grace_s=self.grace_s,
            renewal_lead_s=self.renewal_lead_s,
            late_s=self.late_s,
        )


@dataclass(frozen=True, slots=True)
class LineVerdict:
    """``admitted``: call the upstream ``wait_s`` from now. ``queued``: the viewer's
    place is ``eta_s`` away, ``position`` th in line; come back in ``retry_after_s``.
    ``deferred``: a renewal that can wait; come back in ``retry_after_s``."""

    outcome: LineOutcome
    wait_s: float = 0.0
    retry_after_s: float = 0.0
    eta_s: float = 0.0
    position: int = 0
    line_length: int = 0
    given_up: int = 0
    in_line_s: float = 0.0  # admitted: how long ago its place was taken (0: none)


class _Lane:
    """GCRA cells, one per method, sharing one schedule of slots."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.interval = 1.0 / rate_per_s
        self.burst = burst
        self._tat: dict[str, float] = {}

    def next_slot(self, methods: Sequence[str], now: float) -> float:
        wait = 0.0
        for method in methods:
            debt = max(0.0, self._tat.get(method, now) - now)
            wait = max(wait, debt - (self.burst - 1) * self.interval)
        return wait

    def reserve(self, methods: Sequence[str], now: float, ahead: float) -> None:
        for method in methods:
            debt = max(0.0, self._tat.get(method, now) - now, ahead)
            self._tat[method] = now + debt + self.interval


class LocalLine:
    """One replica's line, for when the shared store is unreachable: same answers,
    within ``policy`` (already this replica's share). Not thread-safe; one event loop."""

    def __init__(
        self,
        policy: LinePolicy,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        max_viewers: int = 100_000,
    ) -> None:
        self.policy = policy
        self._monotonic = monotonic
        self._main = _Lane(policy.main_rate_per_s, policy.burst)
        # The renewal lane has no burst of its own: one call at a time, on top of the main.
        self._renewal = (
            _Lane(policy.renewal_rate_per_s, 1) if policy.renewal_rate_per_s > 0 else None
        )
        # viewer -> (slot, taken at), monotonic, in slot order
        self._places: dict[str, tuple[float, float]] = {}
        self._current: dict[str, float] = {}  # viewer -> its link's expiry (monotonic)
        self._max_viewers = max_viewers

    def __len__(self) -> int:
        return len(self._places)

    def remember(self, viewer: str, expires_in_s: float) -> None:
        """The viewer now has a link that expires in ``expires_in_s``."""
        now = self._monotonic()
        if len(self._current) >= self._max_viewers:
            self._current = {v: d for v, d in self._current.items() if d > now}
            if len(self._current) >= self._max_viewers:
                self._current.pop(next(iter(self._current)))
        self._current[viewer] = now + expires_in_s

    def keep_place(self, viewer: str) -> None:
        """A place whose turn is now, for a viewer admitted to a turn this replica could
        not take on time: coming back within the grace period, it goes first (dated a
        second back, the place is never claimed as on time: a new turn is reserved)."""
        now = self._monotonic()
        self._places[viewer] = (now - 1.0, now)

    def admit(self, viewer: str, methods: Sequence[str]) -> LineVerdict:
        policy = self.policy
        now = self._monotonic()
        given_up = self._give_up(now)
        place = self._places.get(viewer)
        if place is not None:
            slot = place[0] - now
            if slot > policy.hold_s:
                return self._queued(slot, given_up)
            del self._places[viewer]
            if slot < -policy.late_s:
                slot, lane = self._priority_slot(methods, now)
                lane.reserve(methods, now, slot)
                if slot > policy.hold_s:  # first in line, but held no longer than the bound
                    self._places[viewer] = (now + slot, place[1])
                    return self._queued(slot, given_up)
            return LineVerdict(
                "admitted",
                wait_s=max(0.0, slot),
                line_length=len(self),
                given_up=given_up,
                in_line_s=now - place[1],
            )
        lane = self._main
        slot = lane.next_slot(methods, now)
        deadline = self._current.get(viewer)
        if deadline is not None and deadline > now and slot > min(policy.hold_s, 1.0):
            if slot + policy.renewal_lead_s <= deadline - now:
                return LineVerdict(
                    "deferred",
                    retry_after_s=max(1.0, slot - policy.hold_s),
                    line_length=len(self),
                    given_up=given_up,
                )
            if slot > policy.hold_s:
                slot, lane = self._priority_slot(methods, now)
        lane.reserve(methods, now, slot)
        if slot > policy.hold_s:
            if len(self._places) >= self._max_viewers:
                self._places.pop(next(iter(self._places)))
            self._places[viewer] = (now + slot, now)
            return self._queued(slot, given_up)
        return LineVerdict("admitted", wait_s=slot, line_length=len(self), given_up=given_up)

    def _priority_slot(self, methods: Sequence[str], now: float) -> tuple[float, _Lane]:
        main = self._main.next_slot(methods, now)
        if self._renewal is not None:
            renewal = self._renewal.next_slot(methods, now)
            if renewal < main:
                return renewal, self._renewal
        return main, self._main

    def _queued(self, slot: float, given_up: int) -> LineVerdict:
        return LineVerdict(
            "queued",
            retry_after_s=slot - self.policy.hold_s,
            eta_s=slot,
            position=math.floor(slot * self.policy.main_rate_per_s + 0.5) + 1,
            line_length=len(self),
            given_up=given_up,
        )

    def _give_up(self, now: float) -> int:
        """Drop the places whose grace period is over (oldest first: places are added
        in slot order, but for the few from the renewal lane)."""
        expired: list[str] = []
        for viewer, (slot, _) in self._places.items():
            if slot >= now - self.policy.grace_s:
                break
            expired.append(viewer)
        for viewer in expired:
            del self._places[viewer]
        return len(expired)
