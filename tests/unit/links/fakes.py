"""The link service's collaborators for unit tests: a clock that moves only when told
(or when the code under test sleeps), the events it knows, a scripted ONEPlatform
(``httpx.MockTransport``, see ``tests/unit/upstream/fakes.py``) and the store
(fakeredis with Lua, the embedded store)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import Any

import httpx

from app.catalogue.index import IndexedEvent
from app.identity.auth import Principal
from app.links.background import BackgroundWrites
from app.links.budget import LinkBudget, LinkLimits
from app.links.minting import LinkLifetimes, LinkMinter
from app.links.rules import LinkRules, Viewer
from app.links.service import LinkService
from app.links.sessions import LinkSessions
from app.observability.metrics import Metrics
from app.policy.geo import ViewerLocation
from app.ratelimit.admission import LinkAdmission
from app.ratelimit.line import LinePolicy
from app.ratelimit.sessions import SessionLimits, ViewingSessions
from app.store import Store
from app.upstream.client import OnePlatformClient
from app.upstream.models import Event, Stream
from app.watch.rules import WatchRules
from tests.unit.upstream.fakes import json_response, scripted_client

EPOCH = datetime(2026, 11, 25, 18, 0, tzinfo=UTC).timestamp()
REDIRECT = "https://operator.example/watch"
PRINCIPAL = Principal(user_id="viewer-1", via="api_key")
VIEWER = Viewer(ip_address("198.51.100.7"), ViewerLocation("GB", "GB-ENG", "header"))


class FakeClock:
    """Epoch and monotonic seconds that move only by ``advance`` or a sleep; a sleep
    can overrun (``oversleep_s``), as on a replica whose event loop is saturated."""

    def __init__(self, oversleep_s: float = 0.0) -> None:
        self.elapsed = 0.0
        self.oversleep_s = oversleep_s
        self.slept: list[float] = []

    def now_s(self) -> float:
        return EPOCH + self.elapsed

    def monotonic(self) -> float:
        return self.elapsed

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.elapsed += seconds + self.oversleep_s


def event(event_id: str = "E-1", status: str = "O", **fields: Any) -> Event:
    return Event.model_validate({"eventId": event_id, "eventStatusCode": status, **fields})


def stream(name: str, **fields: Any) -> Stream:
    return Stream.model_validate({"uniqueStreamName": name, **fields})


@dataclass
class EventShelf:
    """The events the service can find, and their streams (what the catalogue serves)."""

    events: dict[str, Event] = field(default_factory=dict)
    streams: dict[str, tuple[Stream, ...]] = field(default_factory=dict)
    next_list_in_s: float = 7.0  # what the catalogue says of a pending event

    def put(self, item: Event, *streams: Stream) -> None:
        self.events[item.event_id] = item
        self.streams[item.event_id] = streams

    async def find_event(self, event_id: str) -> IndexedEvent | None:
        found = self.events.get(event_id)
        return IndexedEvent(found, EPOCH) if found is not None else None

    async def event_streams(self, event_id: str) -> tuple[Stream, ...]:
        return self.streams.get(event_id, ())

    async def pending_retry_after(self, event: Event) -> float:
        return self.next_list_in_s


@dataclass
class ScriptedPlatform:
    """stream/link and liveStream as ONEPlatform answers them: per stream name, an
    operationCode (200: a link) and, for raw links, the StreamType liveStream gives."""

    codes: dict[str, int] = field(default_factory=dict)
    stream_types: dict[str, int] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    link_calls: list[str] = field(default_factory=list)  # streamName sent, in order
    live_calls: int = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/stream/link"):
            sent = request.url.params["streamName"]
            self.link_calls.append(sent)
            name = sent.removesuffix("-RAW")
            code = self.codes.get(name, 200)
            if code != 200:
                return json_response(
                    {"operationCode": code, "message": self.messages.get(name, "refused")}
                )
            if sent.endswith("-RAW"):
                return json_response({"streamLink": f"ref:{name}", "operationCode": 200})
            return json_response(
                {"streamLink": f"https://player.example/{name}", "provider": "igame"}
            )
        if request.url.path.endswith("/liveStream"):
            self.live_calls += 1
            name = request.url.params["encodedTransactionRef"].removeprefix("ref:")
            stream_type = self.stream_types.get(name, 2)
            link = f"theolive-{name}" if stream_type == 4 else f"https://cdn.example/{name}.m3u8"
            return json_response(
                {
                    "StreamLink": link,
                    "StreamType": stream_type,
                    "StreamToken": "tok-1" if stream_type == 4 else "",
                    "TransactionId": "tx-1",
                    "ContentDeliveryNetwork": "cdn-a",
                    "OperationCode": 200,
                }
            )
        return json_response({}, status=404)


def limits(**overrides: Any) -> LinkLimits:
    """Budget limits; ``rate_per_s``, ``burst``, ``max_wait_ms`` (the line's hold bound),
    ``renewal_rate_per_s`` and ``grace_s`` shape the line."""
    line: dict[str, Any] = {
        "main_rate_per_s": overrides.pop("rate_per_s", 100.0),
        "renewal_rate_per_s": overrides.pop("renewal_rate_per_s", 0.0),
        "burst": overrides.pop("burst", 10),
        "hold_s": overrides.pop("max_wait_ms", 1000) / 1000,
        "grace_s": overrides.pop("grace_s", 10.0),
        "renewal_lead_s": overrides.pop("renewal_lead_s", 30.0),
    }
    values: dict[str, Any] = {
        "line": LinePolicy(**line),
        "user_rate_per_s": 100.0,
        "user_burst": 100,
        "fallback": "local",
        "replica_count": 1,
    }
    return LinkLimits(**{**values, **overrides})


RULES = LinkRules(
    default_redirect_url=REDIRECT,
    redirect_allowed_hosts=("operator.example",),
    unknown_country_allowed=False,
)
LIFETIMES = LinkLifetimes(link_ttl_s=600.0, theolive_token_ttl_s=100.0)


@dataclass
class Stack:
    """A ``LinkService`` and what a test looks at: the clock, the upstream, the metrics."""

    service: LinkService
    minter: LinkMinter
    clock: FakeClock
    platform: ScriptedPlatform
    shelf: EventShelf
    metrics: Metrics
    background: BackgroundWrites
    client: OnePlatformClient

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def link_stack(
    store: Store,
    *,
    platform: ScriptedPlatform | None = None,
    budget_limits: LinkLimits | None = None,
    session_limits: SessionLimits | None = None,
    clock: FakeClock | None = None,
    dedupe_window_s: float = 30.0,
) -> AsyncIterator[Stack]:
    platform = platform or ScriptedPlatform()
    clock = clock or FakeClock()
    metrics = Metrics()
    background = BackgroundWrites()
    admission = LinkAdmission(store)
    budget = LinkBudget(
        admission,
        budget_limits or limits(),
        metrics,
        sessions=session_limits,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    sessions = LinkSessions(
        ViewingSessions(store), session_limits, metrics, background, clock=clock.now_s
    )
    shelf = EventShelf()
    async with scripted_client(platform) as (client, _):
        minter = LinkMinter(
            client=client,
            budget=budget,
            answers=admission,
            sessions=sessions,
            lifetimes=LIFETIMES,
            dedupe_window_s=dedupe_window_s,
            metrics=metrics,
            background=background,
            clock=clock.now_s,
        )
        service = LinkService(
            catalogue=shelf,
            rules=RULES,
            watch=WatchRules((), None),
            minter=minter,
            sessions=sessions,
            background=background,
            metrics=metrics,
            clock=clock.now_s,
        )
        try:
            yield Stack(service, minter, clock, platform, shelf, metrics, background, client)
        finally:
            await service.close()
