"""The customerUid never leaves the process: not in any error the client raises (its text,
its repr, its chained exceptions, the problem a front end sees), not in the log.

A dedicated simulator accepts only a distinctive uid, so any leak is unmistakable. The
client is driven through every call, every operation code, every fault, a timeout, a
rate limit and a closed port, with logging configured by the real ``configure_logging``
and ``Redactor`` writing to a captured stdout.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import date

import httpx
import orjson
import pytest
import structlog
from pydantic import SecretStr

from app.errors import problem_from_upstream
from app.observability.logging import configure_logging, log_level, set_log_level
from app.observability.redaction import REDACTED, STDLIB_LOGGERS, Redactor
from app.upstream.client import OnePlatformClient, UpstreamCall, build_http_client
from app.upstream.errors import (
    OPERATION_ERRORS,
    UpstreamBadResponse,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
)
from tests.support.redis_server import free_port
from tests.support.simulator import (
    SIM_METHODS,
    FaultKind,
    SimMethod,
    SimulatorHandle,
    run_simulator,
)

UID = "uid-5ec7e7-9d1f-4b2a-LEAKCHECK-77a1c0de"
EVENT_ID = "SEC-OPEN-1"
REDIRECT = "https://operator.example/over"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ2aWV3ZXItMSJ9.c2lnbmF0dXJlLWJ5dGVz"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    env = {"SIM_CUSTOMER_UID": UID, "SIM_EVENTS_MIN_INTERVAL_S": "0"}
    with run_simulator(env) as handle:
        yield handle


def start_over(sim: SimulatorHandle) -> None:
    """No faults, pins, geo additions or limits left over; one open event."""
    sim.reset()
    sim.load_scenario(
        [{"eventId": EVENT_ID, "eventStatusCode": "O", "startTime": "2030-06-01T18:00:00Z"}],
        {EVENT_ID: [{"uniqueStreamName": "HLS", "streamType": "HLS"}]},
    )


@pytest.fixture(autouse=True)
def fresh(sim: SimulatorHandle) -> None:
    start_over(sim)


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """Logging as the app configures it, into the captured stdout; restored afterwards.

    Call the returned function once at the start of the test body (``configure_logging``
    binds the stdout of that moment, and capsys swaps its stream between setup and call),
    then again to read everything logged since.
    """
    saved, level = structlog.get_config(), log_level()
    started = False

    def logged() -> str:
        nonlocal started
        if not started:
            configure_logging(json_lines=True, level="debug", redactor=Redactor([UID]))
            capsys.readouterr()
            started = True
            return ""
        captured = capsys.readouterr()
        return captured.out + captured.err

    try:
        yield logged
    finally:
        structlog.configure(**saved)
        set_log_level(level)


@asynccontextmanager
async def connect(
    sim: SimulatorHandle,
    calls: list[UpstreamCall],
    *,
    api_url: str | None = None,
    server_ip: str | None = None,
    customer_uid: str = UID,
    read_timeout_s: float = 5.0,
) -> AsyncIterator[OnePlatformClient]:
    async with build_http_client(
        connect_timeout_s=2.0, read_timeout_s=read_timeout_s, max_connections=4
    ) as http:
        yield OnePlatformClient(
            http,
            api_url=api_url or sim.api_url,
            player_api_url=api_url or sim.api_url,
            customer_uid=SecretStr(customer_uid),
            server_ip=server_ip or sim.server_ip,
            observer=calls.append,
        )


async def call(
    client: OnePlatformClient,
    method: SimMethod,
    *,
    event_id: str = EVENT_ID,
    user_id: str = "viewer-1",
    user_ip: str = "127.0.0.1",
    stream_name: str = "HLS",
    redirect_url: str = REDIRECT,
    ref: str = "NDc2MDIyNTI2O2IwNWE1ZDU1",
) -> object:
    if method == "event_all":
        return await client.events_by_date(date(2030, 6, 1))
    if method == "event_open":
        return await client.open_events()
    if method == "streams":
        return await client.streams(event_id)
    if method == "sports":
        return await client.sports()
    if method == "stream_link":
        return await client.stream_link(
            user_id=user_id,
            user_ip=user_ip,
            event_id=event_id,
            stream_name=stream_name,
            redirect_url=redirect_url,
            raw=True,
        )
    return await client.live_stream(ref)


def texts_of(error: BaseException) -> list[str]:
    """Everything an error shows: str, repr, args, attributes, the formatted traceback,
    and the same for every exception chained to it (cause or context, suppressed or not)."""
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        # Attributes too: httpx errors keep their request (and so its URL) on them.
        texts += [str(current), repr(current), repr(current.args), repr(vars(current))]
        texts += traceback.format_exception(current)
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
    return texts


Provocation = Callable[[SimulatorHandle, list[UpstreamCall]], Awaitable[object]]


def _with(
    sim_setup: Callable[[SimulatorHandle], None], method: SimMethod, **link: str
) -> Provocation:
    async def provoke(sim: SimulatorHandle, calls: list[UpstreamCall]) -> object:
        sim_setup(sim)
        async with connect(sim, calls) as client:
            return await call(client, method, **link)

    return provoke


def _fault(method: SimMethod, kind: FaultKind, status: int = 503, code: int = 307) -> Provocation:
    return _with(
        lambda sim: sim.inject_fault(method, kind, status=status, operation_code=code, count=1),
        method,
    )


def _nothing(sim: SimulatorHandle) -> None:
    return None


def _viewer_in_france(sim: SimulatorHandle) -> None:
    sim.load_scenario(
        [{"eventId": EVENT_ID, "eventStatusCode": "O", "geoAllow": "UK"}],
        {EVENT_ID: [{"uniqueStreamName": "HLS"}]},
    )
    sim.set_ip_countries({"100.64.0.0/10": "FR"})


async def _wrong_server(sim: SimulatorHandle, calls: list[UpstreamCall]) -> object:
    async with connect(sim, calls, server_ip="198.51.100.99") as client:
        return await client.streams(EVENT_ID)


async def _wrong_customer(sim: SimulatorHandle, calls: list[UpstreamCall]) -> object:
    async with connect(sim, calls, customer_uid="someone-else") as client:
        return await client.sports()


async def _too_soon(sim: SimulatorHandle, calls: list[UpstreamCall]) -> object:
    sim.configure(events_min_interval_s=30)
    async with connect(sim, calls) as client:
        await client.open_events()
        return await client.open_events()


async def _closed_port(sim: SimulatorHandle, calls: list[UpstreamCall]) -> object:
    async with connect(sim, calls, api_url=f"http://127.0.0.1:{free_port()}/api") as client:
        return await client.events_by_date(date(2030, 6, 1))


async def _slow(sim: SimulatorHandle, calls: list[UpstreamCall]) -> object:
    sim.inject_fault("streams", "delay", delay_s=0.6, count=1)
    try:
        async with connect(sim, calls, read_timeout_s=0.15) as client:
            return await client.streams(EVENT_ID)
    finally:
        # The simulator logs the abandoned call once its delay is over: wait for it, so
        # that it lands in this provocation's log and not the next one's.
        deadline = time.monotonic() + 5
        while not sim.calls("streams") and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def _success(sim: SimulatorHandle, calls: list[UpstreamCall]) -> object:
    async with connect(sim, calls) as client:
        for method in SIM_METHODS[:5]:
            await call(client, method)
        ref = (await client.stream_link(
            user_id="viewer-1", user_ip="127.0.0.1", event_id=EVENT_ID, stream_name="HLS",
            redirect_url=REDIRECT, raw=True,
        )).stream_link  # fmt: skip
        return await client.live_stream(ref)


FAULT_KINDS: list[tuple[FaultKind, int, type[UpstreamError]]] = [
    ("status", 500, UpstreamServerError),
    ("status", 429, UpstreamRateLimited),
    ("garbage", 503, UpstreamBadResponse),
    ("truncated", 503, UpstreamBadResponse),
    ("reset", 503, UpstreamConnectionError),
]

# Each provocation and the error type it must end in (None: success).
PROVOCATIONS: list[tuple[str, Provocation, type[UpstreamError] | None]] = [
    ("all-six-calls-succeed", _success, None),
    ("300-wrong-customer", _wrong_customer, OPERATION_ERRORS[300]),
    ("301", _with(_nothing, "stream_link", user_ip="not-an-ip"), OPERATION_ERRORS[301]),
    ("302", _with(_nothing, "stream_link", user_id=""), OPERATION_ERRORS[302]),
    ("303-wrong-server-ip", _wrong_server, OPERATION_ERRORS[303]),
    ("304", _with(_nothing, "stream_link", stream_name="SD"), OPERATION_ERRORS[304]),
    ("305", _with(_nothing, "stream_link", redirect_url="nowhere"), OPERATION_ERRORS[305]),
    (
        "306",
        _with(_viewer_in_france, "stream_link", user_ip="100.64.0.9"),
        OPERATION_ERRORS[306],
    ),
    ("307", _fault("stream_link", "operation", code=307), OPERATION_ERRORS[307]),
    ("308", _with(_nothing, "live_stream", ref="bm90LWEtcmVm"), OPERATION_ERRORS[308]),
    ("401-link", _with(_nothing, "stream_link", event_id="NOPE"), OPERATION_ERRORS[401]),
    ("401-streams", _with(_nothing, "streams", event_id="NOPE"), OPERATION_ERRORS[401]),
    ("402", _with(lambda sim: sim.set_status(EVENT_ID, "P"), "stream_link"), OPERATION_ERRORS[402]),
    ("403", _with(lambda sim: sim.set_status(EVENT_ID, "C"), "stream_link"), OPERATION_ERRORS[403]),
    ("404", _with(lambda sim: sim.set_status(EVENT_ID, "V"), "stream_link"), OPERATION_ERRORS[404]),
    ("operation-on-a-get", _fault("event_all", "operation", code=300), OPERATION_ERRORS[300]),
    ("rate-limited", _too_soon, UpstreamRateLimited),
    ("timeout", _slow, UpstreamTimeout),
    ("closed-port", _closed_port, UpstreamConnectionError),
    *[
        (f"{kind}-{method}", _fault(method, kind, status=status), error_type)
        for method in SIM_METHODS
        for kind, status, error_type in FAULT_KINDS
    ],
    ("empty-link", _fault("stream_link", "empty"), UpstreamBadResponse),
]


async def test_no_error_and_no_log_line_holds_the_customer_uid(
    sim: SimulatorHandle, logs: Callable[[], str]
) -> None:
    log = structlog.get_logger("test.secrets")
    calls: list[UpstreamCall] = []
    errors: list[UpstreamError] = []
    outcomes: list[tuple[str, type[UpstreamError] | None, type[UpstreamError] | None]] = []
    logs()
    seen_by_simulator: list[str] = []
    for name, provoke, expected in PROVOCATIONS:
        start_over(sim)
        try:
            await provoke(sim, calls)
        except UpstreamError as exc:
            outcomes.append((name, type(exc), expected))
            errors.append(exc)
            # The ways a caller may log it: as a field, with its traceback.
            log.warning("upstream_failed", case=name, error=exc, detail=str(exc))
            try:
                raise exc
            except UpstreamError:
                log.exception("upstream_failed_with_traceback", case=name)
        else:
            outcomes.append((name, None, expected))
        seen_by_simulator.append(str(sim.calls()))
    for observed in calls:
        log.info("upstream_call", call=observed)

    assert [(name, got) for name, got, _ in outcomes] == [
        (name, expected) for name, _, expected in PROVOCATIONS
    ]
    for error in errors:
        for text in texts_of(error):
            assert UID not in text, f"{type(error).__name__}: {text}"
        assert UID not in orjson.dumps(problem_from_upstream(error).body()).decode()

    output = logs()
    lines = [orjson.loads(line) for line in output.splitlines()]
    assert sum(line["event"] == "upstream_failed" for line in lines) == len(errors)
    assert sum("exception" in line for line in lines) == len(errors)
    assert UID not in output
    unseen = [name for (name, _, _), seen in zip(PROVOCATIONS, seen_by_simulator, strict=True)
              if seen == "[]"]  # fmt: skip
    assert unseen == ["closed-port"]
    assert UID not in "".join(seen_by_simulator)


async def test_the_processor_redacts_uid_and_tokens_in_any_field(
    sim: SimulatorHandle, logs: Callable[[], str]
) -> None:
    logs()
    log = structlog.get_logger("test.secrets")
    url = f"{sim.api_url}/event/all/{UID}/01-06-2030"
    log.info(f"GET {url}", header=f"Bearer {JWT}", nested={"urls": [url], "jwt": JWT})
    log.error("failed", error=RuntimeError(f"could not reach {url}"))

    output = logs()
    assert UID not in output
    assert JWT not in output
    first, second = (orjson.loads(line) for line in output.splitlines())
    assert first["event"] == f"GET {sim.api_url}/event/all/{REDACTED}/01-06-2030"
    assert first["header"] == f"Bearer {REDACTED}"
    assert first["nested"] == {
        "urls": [f"{sim.api_url}/event/all/{REDACTED}/01-06-2030"],
        "jwt": REDACTED,
    }
    assert REDACTED in second["error"]


def test_the_redactor_as_a_processor() -> None:
    redactor = Redactor([UID, "abc"])  # too short to be a secret: left alone
    event = redactor(
        None,
        "info",
        {
            "event": f"calling /sport/all/{UID}",
            "authorization": "Basic dXNlcjpwYXNz",
            "auth": f"bearer {JWT}",
            "items": (UID, "abc", 3),
        },
    )
    assert event == {
        "event": f"calling /sport/all/{REDACTED}",
        "authorization": REDACTED,
        "auth": f"Bearer {REDACTED}",
        "items": [REDACTED, "abc", 3],
    }


async def test_non_string_values_are_scrubbed(
    sim: SimulatorHandle, logs: Callable[[], str]
) -> None:
    """An ``httpx.URL`` (or any object rendered with ``str``) holding the uid."""
    logs()
    structlog.get_logger("test.secrets").info(
        "request", url=httpx.URL(f"{sim.api_url}/sport/all/{UID}"), raw=UID.encode()
    )
    output = logs()
    assert "request" in output
    assert UID not in output


async def test_stdlib_loggers_do_not_print_the_uid(
    sim: SimulatorHandle, logs: Callable[[], str], caplog: pytest.LogCaptureFixture
) -> None:
    """The libraries' own loggers (httpx's client logs every request line, with the
    uid in its path) are scrubbed too."""
    logs()
    caplog.set_level(logging.DEBUG)  # as logging.basicConfig(level=DEBUG) would
    url = httpx.URL(f"{sim.api_url}/sport/all/{UID}")
    for name in STDLIB_LOGGERS:
        logging.getLogger(name).info(
            'HTTP Request: %s %s "%s %d %s"', "GET", url, "HTTP/1.1", 200, "OK"
        )
    async with connect(sim, []) as client:
        await client.sports()
    output = logs()  # the same records, as the app's JSON lines
    # uvicorn.access is switched off (the app writes the one access line itself).
    assert len(caplog.records) >= len(STDLIB_LOGGERS) - 1
    assert "HTTP Request: GET" in caplog.text
    assert UID not in caplog.text
    assert "HTTP Request: GET" in output
    assert UID not in output
