"""What is known about the request being served: its id, how the cache served it,
how many upstream calls it made. Kept in a contextvar so the access line, every log
line of the request and the upstream client's observer all see the same facts."""

from __future__ import annotations

from collections.abc import MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from app.upstream.client import UpstreamCall


@dataclass(slots=True)
class RequestFacts:
    request_id: str
    cache: str | None = None
    upstream_calls: int = 0


_FACTS: ContextVar[RequestFacts | None] = ContextVar("request_facts", default=None)

set_facts = _FACTS.set
reset_facts = _FACTS.reset


def current_facts() -> RequestFacts | None:
    return _FACTS.get()


def count_upstream_call(call: UpstreamCall) -> None:
    facts = _FACTS.get()
    if facts is not None:
        facts.upstream_calls += 1


def add_request_id(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: every line logged while serving a request carries its id."""
    facts = _FACTS.get()
    if facts is not None:
        event_dict.setdefault("request_id", facts.request_id)
    return event_dict
