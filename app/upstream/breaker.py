"""A circuit breaker per upstream method: stop hammering a failing ONEPlatform.

After ``threshold`` consecutive failures of a method (timeouts, connection errors,
429, 5xx — not operation codes, which mean the upstream is answering), the circuit
opens: calls fail at once for ``cooldown_s``. Then one probe goes through
(half-open); its success closes the circuit, its failure re-opens it for twice as
long, up to ``max_cooldown_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Circuit:
    failures: int = 0
    open_until: float = 0.0
    cooldown_s: float = 0.0
    probing: bool = False


class CircuitBreaker:
    def __init__(
        self,
        *,
        threshold: int = 5,
        cooldown_s: float = 2.0,
        max_cooldown_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1 or cooldown_s <= 0 or max_cooldown_s < cooldown_s:
            raise ValueError("threshold >= 1 and 0 < cooldown_s <= max_cooldown_s")
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._max_cooldown_s = max_cooldown_s
        self._monotonic = monotonic
        self._circuits: dict[str, _Circuit] = {}

    def before(self, method: str) -> float | None:
        """None: call. A number: the circuit is open, retry after that many seconds."""
        circuit = self._circuits.get(method)
        if circuit is None or circuit.failures < self._threshold:
            return None
        now = self._monotonic()
        if now < circuit.open_until:
            return circuit.open_until - now
        if circuit.probing:
            return self._cooldown_s  # one probe at a time
        circuit.probing = True
        return None

    def succeeded(self, method: str) -> None:
        self._circuits.pop(method, None)

    def failed(self, method: str) -> None:
        circuit = self._circuits.setdefault(method, _Circuit())
        circuit.failures += 1
        if circuit.failures < self._threshold:
            return
        circuit.cooldown_s = (
            self._cooldown_s
            if not circuit.probing and circuit.cooldown_s == 0
            else min(self._max_cooldown_s, max(self._cooldown_s, circuit.cooldown_s * 2))
        )
        circuit.open_until = self._monotonic() + circuit.cooldown_s
        circuit.probing = False

    def state(self, method: str) -> str:
        circuit = self._circuits.get(method)
        if circuit is None or circuit.failures < self._threshold:
            return "closed"
        return "open" if self._monotonic() < circuit.open_until else "half_open"
