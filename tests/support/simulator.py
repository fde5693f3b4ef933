"""Run the ONEPlatform simulator for tests: as a real subprocess with a small sync control
client (``run_simulator``), or in-process with a fake clock (``FakeClock``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Literal, get_args

import httpx
from pydantic import TypeAdapter
from typing_extensions import TypedDict

from tests.support.redis_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CUSTOMER_UID = "demo-customer-uid"
DEFAULT_SERVER_IP = "127.0.0.1"
START_TIMEOUT_S = 20.0

SimMethod = Literal["event_all", "event_open", "streams", "sports", "stream_link", "live_stream"]
SIM_METHODS: tuple[SimMethod, ...] = get_args(SimMethod)
FaultMethod = Literal[
    "event_all", "event_open", "streams", "sports", "stream_link", "live_stream", "*"
]
FaultKind = Literal["status", "delay", "garbage", "truncated", "empty", "operation", "reset"]
EventStatus = Literal["P", "O", "C", "V"]


Scenario = tuple[list[dict[str, object]], dict[str, list[dict[str, object]]]]


def one_open_event(event_id: str, title: str) -> Scenario:
    """A scenario of one open football event with one HLS stream (no times, no geo
    lists): what the link tests need and nothing more."""
    event: dict[str, object] = {
        "eventId": event_id,
        "eventStatusCode": "O",
        "title": title,
        "sportCode": "FT",
    }
    return [event], {event_id: [{"uniqueStreamName": "HLS", "streamType": "HLS"}]}


class SimCall(TypedDict):
    """One record of ``GET /_sim/calls`` (keys as on the wire)."""

    method: str
    at: float
    monotonic: float
    status: int | None
    operationCode: int | None
    params: dict[str, str]
    violation: bool


class SimStats(TypedDict):
    """``GET /_sim/stats``: per method counts, violations, closest spacing, peak rate."""

    calls: dict[str, int]
    violations: dict[str, int]
    minSpacingS: dict[str, float | None]
    maxPerSecond: dict[str, int]


_CALLS = TypeAdapter(list[SimCall])
_STATS = TypeAdapter(SimStats)


@dataclass
class FakeClock:
    """A wall clock and a monotonic clock that move only when told to; ``sleep`` advances
    both and remembers what was asked for."""

    wall: datetime
    mono: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds

    def set(self, moment: datetime) -> None:
        """Move the wall clock to ``moment`` (the monotonic clock moves by the same)."""
        self.mono += max(0.0, (moment - self.wall).total_seconds())
        self.wall = moment

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


@dataclass
class SimulatorHandle:
    """A running simulator: its URLs, the identity it accepts, and its control API."""

    url: str
    customer_uid: str
    server_ip: str
    control: httpx.Client

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def api_headers(self) -> dict[str, str]:
        """Headers a whitelisted server sends (``X-Forwarded-For``)."""
        return {"X-Forwarded-For": self.server_ip}

    def _post(self, path: str, body: object = None) -> httpx.Response:
        response = self.control.post(path, json=body)
        response.raise_for_status()
        return response

    def calls(self, method: SimMethod | None = None) -> list[SimCall]:
        params = {} if method is None else {"method": method}
        response = self.control.get("/_sim/calls", params=params)
        response.raise_for_status()
        return _CALLS.validate_python(response.json())

    def stats(self) -> SimStats:
        response = self.control.get("/_sim/stats")
        response.raise_for_status()
        return _STATS.validate_python(response.json())

    def reset(self) -> None:
        self._post("/_sim/reset")

    def set_status(self, event_id: str, status: EventStatus) -> None:
        self._post(f"/_sim/events/{event_id}/status", {"status": status})

    def load_scenario(
        self,
        events: Sequence[Mapping[str, object]],
        streams: Mapping[str, Sequence[Mapping[str, object]]] | None = None,
    ) -> None:
        body = {
            "events": [dict(e) for e in events],
            "streams": {k: [dict(s) for s in v] for k, v in (streams or {}).items()},
        }
        self._post("/_sim/scenario", body)

    def inject_fault(
        self,
        method: FaultMethod,
        kind: FaultKind,
        *,
        status: int = 503,
        delay_s: float = 1.0,
        operation_code: int = 307,
        count: int | None = None,
    ) -> None:
        body = {
            "method": method,
            "kind": kind,
            "status": status,
            "delayS": delay_s,
            "operationCode": operation_code,
            "count": count,
        }
        self._post("/_sim/faults", body)

    def clear_faults(self) -> None:
        self.control.delete("/_sim/faults").raise_for_status()

    def set_ip_countries(self, mapping: Mapping[str, str]) -> None:
        self._post("/_sim/ip-countries", dict(mapping))

    def configure(
        self,
        *,
        events_min_interval_s: float | None = None,
        link_rate_per_s: int | None = None,
    ) -> None:
        body: dict[str, float | int] = {}
        if events_min_interval_s is not None:
            body["eventsMinIntervalS"] = events_min_interval_s
        if link_rate_per_s is not None:
            body["linkRatePerS"] = link_rate_per_s
        self._post("/_sim/config", body)


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{url}/_sim/stats", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            tail = log.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"the simulator did not start at {url}:\n{tail}")
        time.sleep(0.05)


@contextmanager
def run_simulator(
    env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[SimulatorHandle]:
    """Start ``python -m app.simulator`` on a free loopback port; stop it on exit.

    ``env`` holds ``SIM_*`` settings; inherited ``SIM_*`` variables are dropped so the
    simulator starts from known defaults.
    """
    settings = dict(env or {})
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")} | settings
    server_ips = settings.get("SIM_SERVER_IPS", DEFAULT_SERVER_IP)
    command = [sys.executable, "-m", "app.simulator", "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            command, cwd=REPO_ROOT, env=child_env, stdout=subprocess.DEVNULL, stderr=log
        )
        try:
            _wait_until_up(url, proc, log)
            with httpx.Client(base_url=url, timeout=10.0) as control:
                yield SimulatorHandle(
                    url=url,
                    customer_uid=settings.get("SIM_CUSTOMER_UID") or DEFAULT_CUSTOMER_UID,
                    server_ip=server_ips.split(",")[0].strip() or DEFAULT_SERVER_IP,
                    control=control,
                )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


HLS_STREAM: Mapping[str, object] = {
    "uniqueStreamName": "HLS",
    "streamType": "HLS",
    "description": "HLS",
}


def scenario_event(
    event_id: str,
    *,
    status: str = "O",
    sport: str = "FT",
    title: str | None = None,
    geo_allow: str = "",
    started_minutes_ago: float = 10.0,
) -> dict[str, object]:
    """An event as ONEPlatform lists it (for ``load_scenario``): started a while ago,
    ending in two hours, open everywhere unless ``geo_allow`` says otherwise."""
    now = datetime.now(UTC)
    return {
        "eventId": event_id,
        "eventStatusCode": status,
        "title": title or event_id,
        "sportCode": sport,
        "startTime": _iso(now - timedelta(minutes=started_minutes_ago)),
        "estimatedEndTime": _iso(now + timedelta(hours=2)),
        "geoAllow": geo_allow,
        "geoBlock": "",
    }
