"""What the access line says about the request being served, beyond what its
middleware sees: how the cache served it, how many upstream calls it made, and the
route template where the router did not match one (the warm read path). Kept in a
contextvar, so the endpoint, the upstream client's observer and the access line all
count into the same summary; and a structlog processor (``add_request_id``) puts its
request id on every line logged while the request is served. (One contextvar a
request: binding the id in structlog's contextvars as well cost a warm read 2.5 µs
under load, ``tests/perf/bench_reads.py``.)"""

from __future__ import annotations

from collections.abc import MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from app.upstream.client import UpstreamCall


@dataclass(slots=True)
class RequestSummary:
    request_id: str
    route: str | None = None
    cache: str | None = None
    upstream_calls: int = 0


_SUMMARY: ContextVar[RequestSummary | None] = ContextVar("request_summary", default=None)

set_summary = _SUMMARY.set
reset_summary = _SUMMARY.reset


def current_summary() -> RequestSummary | None:
    return _SUMMARY.get()


def count_upstream_call(call: UpstreamCall) -> None:
    summary = _SUMMARY.get()
    if summary is not None:
        summary.upstream_calls += 1


def add_request_id(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the request id of the request being served, if any (a
    ``request_id`` given to the line itself wins)."""
    summary = _SUMMARY.get()
    if summary is not None and "request_id" not in event_dict:
        event_dict["request_id"] = summary.request_id
    return event_dict
