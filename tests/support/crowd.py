"""A kick-off crowd against a fleet: viewers arriving over a few seconds, each its own
user, asking for a link until they get one, honouring ``Retry-After`` (seconds or an
HTTP date) or, for the impatient ones, asking every half second regardless.

What each viewer saw is kept (``Viewer``), and ``CrowdFigures`` says how the line
served them: against a first-come-first-served line at the rate the bucket sustains,
requests per viewer, waits.
"""

from __future__ import annotations

import asyncio
import email.utils
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

IMPATIENT_EVERY_S = 0.5


@dataclass
class Viewer:
    index: int
    user: str
    url: str  # the replica it asks
    impatient: bool
    arrival: float = 0.0  # wall clock
    served: float | None = None
    requests: int = 0
    statuses: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # each refusal's title
    answer: dict[str, object] | None = None


def retry_after_s(response: httpx.Response, now: float) -> float:
    """``Retry-After`` in seconds, whether given as seconds or as an HTTP date."""
    value = response.headers.get("retry-after", "1")
    if value.isdigit():
        return float(value)
    return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)


async def ask_until_served(
    client: httpx.AsyncClient,
    viewer: Viewer,
    *,
    path: str,
    body: dict[str, object],
    api_key: str,
    deadline_s: float = 120.0,
) -> None:
    headers = {"X-API-Key": api_key, "X-User-Id": viewer.user}
    give_up = time.monotonic() + deadline_s
    while time.monotonic() < give_up:
        viewer.requests += 1
        try:
            response = await client.post(f"{viewer.url}{path}", json=body, headers=headers)
        except httpx.TransportError as exc:
            viewer.statuses.append(0)
            viewer.problems.append(type(exc).__name__)
            await asyncio.sleep(1.0)
            continue
        viewer.statuses.append(response.status_code)
        if response.status_code == 200:
            viewer.served = time.time()
            viewer.answer = response.json()
            return
        if response.headers.get("content-type") == "application/problem+json":
            problem = response.json()
            queued = "queue" in problem
            viewer.problems.append("in line" if queued else str(problem.get("detail")))
        else:
            viewer.problems.append(f"{response.status_code} {response.text[:60]}")
        if viewer.impatient:
            await asyncio.sleep(IMPATIENT_EVERY_S)
        else:
            await asyncio.sleep(retry_after_s(response, time.time()))


async def run_crowd(
    viewers: Sequence[Viewer],
    *,
    over_s: float,
    path: str,
    body: dict[str, object],
    api_key: str,
    start: float | None = None,
    viewers_per_client: int = 25,
) -> None:
    """Viewer ``i`` arrives at ``start + i * over_s / len(viewers)`` (wall clock). Each
    client (its own connection pool) serves a few viewers: one pool of thousands of
    connections costs httpx more per request than the gateway spends on it."""
    start = start or time.time() + 1.0  # every viewer waiting for its moment by then
    timeout = httpx.Timeout(60.0, connect=10.0)
    clients = [
        httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=None))
        for _ in range(max(1, -(-len(viewers) // viewers_per_client)))
    ]

    async def one(viewer: Viewer) -> None:
        at = start + viewer.index * over_s / len(viewers)
        await asyncio.sleep(max(0.0, at - time.time()))
        viewer.arrival = time.time()
        client = clients[viewer.index % len(clients)]
        await ask_until_served(client, viewer, path=path, body=body, api_key=api_key)

    try:
        await asyncio.gather(*(one(v) for v in viewers))
    finally:
        for client in clients:
            await client.aclose()


@dataclass(frozen=True)
class CrowdFigures:
    viewers: int
    served: int
    server_errors: int
    last_link_s: float  # after the first arrival
    lateness_p95_s: float  # patient viewers, against first come first served
    lateness_max_s: float
    requests_per_patient: float
    requests_per_viewer: float
    wait_p50_patient_s: float
    wait_p95_patient_s: float
    wait_p50_impatient_s: float

    @classmethod
    def of(cls, viewers: Sequence[Viewer], sustained_per_s: float) -> CrowdFigures:
        """Lateness: served time minus when a first-come-first-served line serving
        ``sustained_per_s`` would serve the viewer (all viewers in arrival order)."""
        by_arrival = sorted(viewers, key=lambda v: v.arrival)
        first = by_arrival[0].arrival
        fcfs: dict[int, float] = {}
        free_at = first
        for viewer in by_arrival:
            turn = max(viewer.arrival, free_at)
            fcfs[viewer.index] = turn
            free_at = turn + 1 / sustained_per_s
        served = [v for v in viewers if v.served is not None]
        patient = [v for v in served if not v.impatient]
        impatient = [v for v in served if v.impatient]
        late = sorted(max(0.0, (v.served or 0) - fcfs[v.index]) for v in patient) or [0.0]
        waits = sorted((v.served or 0) - v.arrival for v in patient) or [0.0]
        impatient_waits = [(v.served or 0) - v.arrival for v in impatient] or [0.0]
        return cls(
            viewers=len(viewers),
            served=len(served),
            server_errors=sum(1 for v in viewers for s in v.statuses if s >= 500 or s == 0),
            last_link_s=max((v.served or 0) for v in served) - first if served else 0.0,
            lateness_p95_s=_quantile(late, 0.95),
            lateness_max_s=late[-1],
            requests_per_patient=statistics.mean(v.requests for v in patient) if patient else 0,
            requests_per_viewer=statistics.mean(v.requests for v in viewers),
            wait_p50_patient_s=statistics.median(waits),
            wait_p95_patient_s=_quantile(waits, 0.95),
            wait_p50_impatient_s=statistics.median(impatient_waits),
        )


def _quantile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
