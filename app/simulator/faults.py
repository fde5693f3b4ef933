"""Injected faults: what the next calls of a method should suffer instead of an answer.

Kinds::

    status      answer with HTTP ``status`` and {"message", "operationCode": status}
    delay       wait ``delay_s`` seconds, then answer normally
    garbage     HTTP 200 whose body is not JSON
    truncated   the normal answer cut in half
    empty       HTTP 200 with the normal answer's lists emptied (``{"events": []}``);
                ``{}`` for the link methods
    operation   the method's error answer for ``operation_code`` (for the two link
                methods applied once a request has passed validation, like the
                provider failure 307 it stands for)
    reset       the connection is closed before a complete answer

A fault with ``count`` applies to that many calls, then disappears; ``None`` means
until cleared. The first active fault matching a call applies; one per call.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Final, Literal

from app.simulator.events import JsonObject
from app.simulator.limits import Method

FaultKind = Literal["status", "delay", "garbage", "truncated", "empty", "operation", "reset"]
FaultMethod = Literal[
    "event_all", "event_open", "streams", "sports", "stream_link", "live_stream", "*"
]

ALL_KINDS: Final[frozenset[FaultKind]] = frozenset(
    {"status", "delay", "garbage", "truncated", "empty", "operation", "reset"}
)


@dataclass(slots=True)
class Fault:
    method: FaultMethod
    kind: FaultKind
    status: int = 503
    delay_s: float = 1.0
    operation_code: int = 307
    count: int | None = None

    def to_json(self) -> JsonObject:
        return {
            "method": self.method,
            "kind": self.kind,
            "status": self.status,
            "delayS": self.delay_s,
            "operationCode": self.operation_code,
            "count": self.count,
        }


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def active(self) -> list[Fault]:
        return list(self._faults)

    def take(self, method: Method, kinds: Container[str]) -> Fault | None:
        """The first fault for ``method`` among ``kinds``, spending one of its count."""
        for fault in self._faults:
            if fault.method in ("*", method) and fault.kind in kinds:
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                return fault
        return None
