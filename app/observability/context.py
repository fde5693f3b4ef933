"""What the access line says about the request being served, beyond what its
middleware sees: how the cache served it, how many upstream calls it made, and the
route template where the router did not match one (the warm read path). Kept in a
contextvar, so the endpoint, the upstream client's observer and the access line all
count into the same summary. (The request id reaches every log line through
structlog's own contextvars.)"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

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
