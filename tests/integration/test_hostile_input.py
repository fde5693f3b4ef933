"""Hostile input against a real gateway process (uvicorn + httptools, the documented
command), a real redis-server and the simulator.

Oversized bodies (declared and chunked) and header sets, very long ``X-Forwarded-For``
chains, clients that send a byte at a time, malformed JSON, odd event ids (``../``,
``%2e%2e``, NUL, CR/LF, Unicode), header injection through ``X-User-Id`` and
``redirectUrl``, look-alike country codes from a trusted proxy, JWTs that must not pass,
API keys of every wrong length, and ``X-Forwarded-For`` from an untrusted peer.

The gateway trusts one proxy address, 127.0.0.2; the tests connect from there (a
trusted proxy) or from 127.0.0.1 (anyone else). Raw sockets are used where an HTTP
client would refuse to send the bytes. Every answer must be a 4xx problem+json with a
stable ``code`` (or, for what the HTTP parser itself rejects, its 400 and a closed
connection), never a 5xx or a stack trace; the process must stay alive; and no secret
(customerUid, API key, JWT secret, any token presented) may appear in an answer or in
the process's log. What the simulator saw shows refusals cost no upstream call.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import GatewayProcess, gateway_env, run_gateway
from tests.support.jwt_keys import hs256_with_raw_key, rsa_keys, sign_hs256, unsigned_token
from tests.support.polling import wait_until
from tests.support.redis_server import fresh_database
from tests.support.simulator import SimCall, SimulatorHandle, run_simulator

pytestmark = pytest.mark.redis

UID = f"uid-hostile-{uuid.uuid4().hex}"
API_KEY = f"key-hostile-{uuid.uuid4().hex}"
JWT_SECRET = f"jwt-secret-hostile-{uuid.uuid4().hex}"
AUDIENCE = "oneplatform-gateway"
TRUSTED = "127.0.0.2"
COUNTRY_HEADER = "CF-IPCountry"
PROBLEM_JSON = "application/problem+json"
OPEN, GB_ONLY, US_ONLY = "HOS-OPEN", "HOS-GB", "HOS-US"
GB_VIEWER = "127.0.0.9"  # the simulator places 127.0.0.0/8 in GB
MAX_BODY = 16 * 1024
MAX_HEADERS = 32 * 1024
TRACE_MARKERS = ("Traceback", 'File "', ".py", "site-packages")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Raw:
    """An answer read off a socket; ``status`` 0 when the server closed without one."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Rig:
    sim: SimulatorHandle
    gateway: GatewayProcess
    untrusted: httpx.Client
    trusted: httpx.Client
    answers: list[httpx.Response | Raw] = field(default_factory=list)
    presented: list[str] = field(default_factory=list)  # tokens and keys we sent

    def keep(self, answer: httpx.Response) -> httpx.Response:
        self.answers.append(answer)
        return answer

    def mint(
        self,
        event_id: str = OPEN,
        *,
        headers: dict[str, str] | None = None,
        body: object = None,
        via: httpx.Client | None = None,
    ) -> httpx.Response:
        sent = {"X-API-Key": API_KEY, "X-User-Id": f"u-{uuid.uuid4().hex[:10]}"}
        sent.update(headers or {})
        payload = {"streamName": "HLS", "kind": "player"} if body is None else body
        client = via or self.untrusted
        return self.keep(client.post(f"/v1/events/{event_id}/links", json=payload, headers=sent))

    def raw(self, request: bytes, *, source: str = "127.0.0.1", timeout_s: float = 10) -> Raw:
        answer = raw_http(self.gateway.port, request, source=source, timeout_s=timeout_s)
        self.answers.append(answer)
        return answer


def raw_http(port: int, request: bytes, *, source: str, timeout_s: float) -> Raw:
    """Send bytes as they are (the request should say ``Connection: close``); read the
    answer until the server closes."""
    with socket.create_connection(
        ("127.0.0.1", port), timeout=timeout_s, source_address=(source, 0)
    ) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)  # may be refused before it is all sent: read what it said
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 "):
        return Raw(0, {}, data)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Raw(int(lines[0].split()[1]), headers, body)


def request(method: str, path: str, *headers: bytes, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: gateway", *headers]
    if body:
        lines.append(b"Content-Type: application/json")
        lines.append(b"Content-Length: %d" % len(body))
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def auth_headers(user: str = "raw-user") -> tuple[bytes, bytes]:
    return b"X-API-Key: " + API_KEY.encode(), b"X-User-Id: " + user.encode()


@pytest.fixture(scope="module")
def rig(redis_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    sim_env = {"SIM_CUSTOMER_UID": UID, "SIM_EVENTS_MIN_INTERVAL_S": "0"}
    with run_simulator(env=sim_env) as sim:
        start = datetime.now(UTC) - timedelta(minutes=20)
        common = {"eventStatusCode": "O", "sportCode": "FT", "startTime": _iso(start),
                  "estimatedEndTime": _iso(start + timedelta(hours=4))}  # fmt: skip
        sim.load_scenario(
            [
                {"eventId": OPEN, **common},
                {"eventId": GB_ONLY, "geoAllow": "GB", **common},
                {"eventId": US_ONLY, "geoAllow": "US", **common},
            ],
            {
                e: [{"uniqueStreamName": "HLS", "streamType": "HLS"}]
                for e in (OPEN, GB_ONLY, US_ONLY)
            },
        )
        redis_url = fresh_database(redis_server_url, 6)
        env = gateway_env(
            sim.api_url,
            redis_url,
            IGM_CUSTOMER_UID=UID,
            API_KEYS=API_KEY,
            AUTH_JWT_SECRET=JWT_SECRET,
            AUTH_JWT_AUDIENCE=AUDIENCE,
            TRUSTED_PROXIES=f"{TRUSTED}/32",
            GEO_COUNTRY_HEADER=COUNTRY_HEADER,
            DEFAULT_REDIRECT_URL="https://operator.example/after",
            REDIRECT_ALLOWED_HOSTS="operator.example",
            LINK_DEDUPE_WINDOW_S="0",
            LINK_USER_BURST="100",
        )
        log_dir = Path(tmp_path_factory.mktemp("hostile"))
        proxy = httpx.HTTPTransport(local_address=TRUSTED)
        with (
            run_gateway(env, log_dir, name="hostile") as gateway,
            httpx.Client(base_url=gateway.url, timeout=10) as untrusted,
            httpx.Client(base_url=gateway.url, timeout=10, transport=proxy) as trusted,
        ):
            rig = Rig(sim, gateway, untrusted, trusted)
            wait_until(
                lambda: rig.untrusted.get("/v1/events/open").status_code == 200,
                "the gateway warm",
                timeout_s=20,
            )
            assert rig.mint().status_code == 200  # streams cached, everything in place
            yield rig


@pytest.fixture(autouse=True)
def survives(rig: Rig) -> Iterator[None]:
    """After each test: alive, healthy, no 5xx, no trace, no secret, no violation."""
    rig.answers.clear()
    yield
    assert rig.gateway.process.poll() is None, "the gateway process died"
    assert rig.untrusted.get("/healthz").status_code == 200
    log = rig.gateway.log_text()
    secrets = [UID, API_KEY, JWT_SECRET, *rig.presented]
    for answer in rig.answers:
        status = answer.status_code if isinstance(answer, httpx.Response) else answer.status
        body = answer.content if isinstance(answer, httpx.Response) else answer.body
        headers = dict(answer.headers)
        assert status < 500, (status, body[:300])
        text = body.decode("utf-8", "replace") + repr(headers)
        for marker in TRACE_MARKERS:
            assert marker not in text, text[:300]
        for secret in secrets:
            assert secret not in text
        assert "set-cookie" not in headers
        assert "x-evil" not in headers
    for secret in secrets:
        assert secret not in log
    assert "Traceback" not in log
    assert '"unhandled_error"' not in log
    assert sum(rig.sim.stats()["violations"].values()) == 0


def problem(answer: httpx.Response | Raw, status: int, code: str) -> dict[str, object]:
    if isinstance(answer, httpx.Response):
        got, content_type, body = answer.status_code, answer.headers["content-type"], answer.json()
    else:
        got, content_type = answer.status, answer.headers["content-type"]
        body = json.loads(answer.body)
    assert got == status, (got, body)
    assert content_type == PROBLEM_JSON
    assert isinstance(body, dict)
    assert (body["status"], body["code"]) == (status, code), body
    return body


def link_calls(sim: SimulatorHandle) -> list[SimCall]:
    return sim.calls("stream_link")


# --- sizes ----------------------------------------------------------------------------


def test_oversized_bodies_are_refused_declared_or_chunked(rig: Rig) -> None:
    before = len(link_calls(rig.sim))
    headers = {"X-API-Key": API_KEY, "X-User-Id": "big-body", "Content-Type": "application/json"}
    url = f"/v1/events/{OPEN}/links"
    declared = rig.keep(rig.untrusted.post(url, content=b"{" + b" " * MAX_BODY + b"}",
                                           headers=headers))  # fmt: skip
    problem(declared, 413, "body_too_large")

    def chunks() -> Iterator[bytes]:
        yield b'{"streamName": "HLS", "kind": "raw", "redirectUrl": "'
        for _ in range(64):
            yield b"a" * 1024
        yield b'"}'

    chunked = rig.keep(rig.untrusted.post(url, content=chunks(), headers=headers))
    assert "content-length" not in chunked.request.headers  # it really went chunked
    problem(chunked, 413, "body_too_large")
    # A declared terabyte is refused at once, without waiting for it.
    sent = time.monotonic()
    huge = rig.raw(request("POST", url, *auth_headers(), b"Content-Length: 1000000000000"))
    assert time.monotonic() - sent < 2
    problem(huge, 413, "body_too_large")
    # The limit is not stricter than it says: a padded 16 KiB request is served.
    padded = b'{"streamName": "HLS", "kind": "player"' + b" " * (MAX_BODY - 100) + b"}"
    assert len(padded) <= MAX_BODY
    served = rig.keep(rig.untrusted.post(url, content=padded, headers=headers))
    assert served.status_code == 200, served.text
    assert len(link_calls(rig.sim)) == before + 1  # only the one that was served


def test_oversized_headers_and_forwarded_chains(rig: Rig) -> None:
    before = len(link_calls(rig.sim))
    big = rig.raw(request("GET", "/v1/events/open", b"X-Big: " + b"a" * 1_000_000))
    problem(big, 431, "headers_too_large")  # httptools takes any size; the app refuses
    many = rig.raw(request("GET", "/healthz", *(b"X-H%d: v" % i for i in range(10_000))))
    problem(many, 431, "headers_too_large")
    chain = ", ".join(f"10.{i // 250}.{i % 250}.1" for i in range(20_000)).encode()
    long_chain = rig.raw(
        request("POST", f"/v1/events/{OPEN}/links", *auth_headers(), b"X-Forwarded-For: " + chain,
                body=b'{"streamName": "HLS"}'),
        source=TRUSTED,
    )  # fmt: skip
    problem(long_chain, 431, "headers_too_large")
    assert len(link_calls(rig.sim)) == before
    # A long chain within the limit: only the right-most hops are read, without stalling
    # the request (the bound is loose: a loaded machine may take a while for any request).
    hops = [f"10.0.{i // 250}.{i % 250}" for i in range(1_500)] + ["203.0.113.77"]
    user = f"chain-{uuid.uuid4().hex[:8]}"
    sent = time.monotonic()
    minted = rig.mint(headers={"X-Forwarded-For": ", ".join(hops), "X-User-Id": user},
                      via=rig.trusted)  # fmt: skip
    assert time.monotonic() - sent < 5.0
    assert minted.status_code == 200, minted.text
    [call] = [c for c in link_calls(rig.sim) if c["params"].get("userId") == user]
    assert call["params"]["userIp"] == "203.0.113.77"


def test_slow_clients_do_not_hold_up_anyone_else(rig: Rig) -> None:
    slow = [
        socket.create_connection(("127.0.0.1", rig.gateway.port), timeout=10) for _ in range(20)
    ]
    payload = request("GET", "/v1/events/open")
    stop = threading.Event()

    def dribble() -> None:  # one byte per socket every 40 ms
        for index in range(len(payload) - 4):  # never quite finish the headers
            if stop.is_set():
                return
            for sock in slow:
                sock.sendall(payload[index : index + 1])
            time.sleep(0.04)

    sender = threading.Thread(target=dribble)
    sender.start()
    try:
        time.sleep(0.3)
        slowest = 0.0
        for _ in range(40):
            sent = time.perf_counter()
            read = rig.keep(rig.untrusted.get("/v1/events/open"))
            assert read.status_code == 200
            slowest = max(slowest, time.perf_counter() - sent)
            time.sleep(0.02)
        # Held up by the slow clients, a read would wait for them to finish their headers
        # (seconds from now: the sender is still alive below); a loaded machine may make
        # a read slow, but not that slow.
        assert slowest < 1.0, slowest
        assert sender.is_alive()  # the slow clients were still mid-request throughout
    finally:
        stop.set()
        sender.join()
        for sock in slow:
            sock.close()


# --- malformed requests -----------------------------------------------------------------

MALFORMED: list[tuple[str, bytes, int, str]] = [
    ("truncated", b'{"streamName": "HLS",', 422, "invalid_request"),
    ("null", b"null", 422, "invalid_request"),
    ("array", b"[]", 422, "invalid_request"),
    ("string", b'"HLS"', 422, "invalid_request"),
    ("unknown-field", b'{"streamName": "HLS", "admin": true}', 422, "invalid_request"),
    ("traversal-name", b'{"streamName": "../../etc/passwd"}', 422, "invalid_request"),
    ("nul-name", b'{"streamName": "HLS\\u0000"}', 422, "invalid_request"),
    ("wrong-kind", b'{"streamName": "HLS", "kind": "admin"}', 422, "invalid_request"),
    ("huge-number", b'{"streamName": 1e999999}', 422, "invalid_request"),
    ("duplicate-key", b'{"streamName": "HLS", "streamName": "../x"}', 422, "invalid_request"),
    ("bad-utf8", b'{"streamName": "\xff\xfe"}', 422, "invalid_request"),
    ("deep-nesting", b"[" * 6000 + b"]" * 6000, 422, "invalid_request"),
    ("long-redirect", b'{"streamName": "HLS", "redirectUrl": "https://operator.example/'
     + b"a" * 3000 + b'"}', 422, "invalid_request"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "code"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_json_is_a_problem_not_a_crash(
    rig: Rig, body: bytes, status: int, code: str
) -> None:
    before = len(link_calls(rig.sim))
    headers = {"X-API-Key": API_KEY, "X-User-Id": "json", "Content-Type": "application/json"}
    answer = rig.keep(rig.untrusted.post(f"/v1/events/{OPEN}/links", content=body,
                                         headers=headers))  # fmt: skip
    problem(answer, status, code)
    assert len(link_calls(rig.sim)) == before


ODD_IDS = [
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "%2e%2e%2f%2e%2e%2fetc",
    "..;",
    ".",
    "a%00b",
    "%00",
    "%E2%80%AE" + "txt.exe",
    "%C3%BC%C3%B1%C3%AF",
    "%EF%BC%A7%EF%BC%A2",  # fullwidth GB
    "%F0%9F%92%A3",
    "A%0D%0ASet-Cookie:%20x=1",
    "%25",
    "x" * 129,
]


@pytest.mark.parametrize("event_id", ODD_IDS, ids=range(len(ODD_IDS)))
def test_odd_event_ids_are_not_found_everywhere(rig: Rig, event_id: str) -> None:
    calls = rig.sim.stats()["calls"]
    body = b'{"streamName": "HLS"}'
    answers = [
        rig.raw(request("GET", f"/v1/events/{event_id}")),
        rig.raw(request("GET", f"/v1/events/{event_id}/streams")),
        rig.raw(request("POST", f"/v1/events/{event_id}/links", *auth_headers(), body=body)),
    ]
    expected = {404: ("event_not_found", "not_found"), 422: ("invalid_request",)}
    for answer in answers:
        assert answer.status in expected, answer
        assert _code(answer) in expected[answer.status], answer
        details = problem(answer, answer.status, str(_code(answer)))
        assert "eventId" not in details  # an unusable id is never echoed back
    after = rig.sim.stats()["calls"]
    assert (after["streams"], after["stream_link"]) == (calls["streams"], calls["stream_link"])


def test_path_traversal_spelled_out_is_not_found(rig: Rig) -> None:
    for path in ("/v1/events/../../etc/passwd", "/v1/../v1/events/open/../../../etc/passwd",
                 "/v1/events/open/..%2f..%2f..%2fetc%2fpasswd", "//etc/passwd"):  # fmt: skip
        answer = rig.raw(request("GET", path))
        assert answer.status == 404, (path, answer)
        assert b"root:" not in answer.body
        problem(answer, 404, str(_code(answer)))


def _code(answer: Raw) -> object:
    return json.loads(answer.body).get("code")


# --- injection ----------------------------------------------------------------------------


def test_header_injection_through_user_id_is_refused(rig: Rig) -> None:
    before = len(link_calls(rig.sim))
    body = b'{"streamName": "HLS"}'
    key = b"X-API-Key: " + API_KEY.encode()
    url = f"/v1/events/{OPEN}/links"
    # What the HTTP parser refuses: bare CR, NUL, obs-fold smuggling a header.
    for bad in (b"X-User-Id: a\rX-Evil: 1", b"X-User-Id: a\x00b", b"X-User-Id: a\r\n X-Evil: 1"):
        answer = rig.raw(request("POST", url, key, bad, body=body))
        assert answer.status in (0, 400), answer
    # What reaches the app and fails the user-id rule.
    for value in (b"a%0d%0aX-Evil:%201" + b"\x7f", "viewer-ü".encode(), b"x" * 129, b"\t",
                  b"a\tb", b"\x01abc"):  # fmt: skip
        answer = rig.raw(request("POST", url, key, b"X-User-Id: " + value, body=body))
        if answer.status == 400 and not answer.headers.get("content-type", "").startswith(
            PROBLEM_JSON
        ):
            continue  # the parser refused the control character first
        details = problem(answer, 401, "unauthorized")
        assert details["reason"] == "invalid_user_id"
    assert len(link_calls(rig.sim)) == before


def test_redirect_urls_cannot_inject_or_escape(rig: Rig) -> None:
    before = len(link_calls(rig.sim))
    for url in ("https://operator.example/a\r\nSet-Cookie: x=1",
                "https://operator.example/a\nX-Evil: 1",
                "javascript:alert(1)",
                "https://evil.example/",
                "https://operator.example@evil.example/",
                "https://operator.example\\@evil.example/",
                "//evil.example/",
                "https://oper\u0430tor.example/"):  # fmt: skip
        answer = rig.mint(body={"streamName": "HLS", "kind": "player", "redirectUrl": url})
        details = problem(answer, 422, "invalid_redirect_url")
        assert details["operationCode"] == 305
    assert len(link_calls(rig.sim)) == before
    # Percent-encoded CR/LF is only text in a URL: it reaches the upstream verbatim.
    encoded = "https://operator.example/a%0D%0ASet-Cookie:x=1"
    user = f"redir-{uuid.uuid4().hex[:8]}"
    ok = rig.mint(headers={"X-User-Id": user},
                  body={"streamName": "HLS", "kind": "player", "redirectUrl": encoded})  # fmt: skip
    assert ok.status_code == 200, ok.text
    [call] = [c for c in link_calls(rig.sim) if c["params"].get("userId") == user]
    assert call["params"]["redirectUrl"] == encoded


# --- who the viewer is ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_id", "country", "allowed"),
    [
        (GB_ONLY, b"GB", True),
        (GB_ONLY, b"gb", True),
        (GB_ONLY, "\uff27\uff22".encode(), False),  # fullwidth
        (GB_ONLY, "G\u0392".encode(), False),  # Greek capital beta
        (GB_ONLY, b"UK", True),  # the upstream's alias for GB
        (US_ONLY, "u\u017f".encode(), False),  # long s, which upper-cases to S: "US"
        (US_ONLY, "US\u200b".encode(), False),  # zero-width space
        (US_ONLY, b"XX", False),  # "unknown" marker
    ],
    ids=["GB", "gb", "fullwidth-GB", "greek-beta", "UK", "long-s", "zero-width", "XX"],
)
def test_country_lookalikes_from_a_trusted_proxy(
    rig: Rig, event_id: str, country: bytes, allowed: bool
) -> None:
    before = len(link_calls(rig.sim))
    answer = rig.raw(
        request("POST", f"/v1/events/{event_id}/links", *auth_headers(f"geo-{uuid.uuid4().hex}"),
                b"X-Forwarded-For: " + GB_VIEWER.encode(), COUNTRY_HEADER.encode() + b": "
                + country, body=b'{"streamName": "HLS", "kind": "player"}'),
        source=TRUSTED,
    )  # fmt: skip
    if allowed:
        assert answer.status == 200, answer
        assert len(link_calls(rig.sim)) == before + 1
    else:
        details = problem(answer, 403, "geo_blocked")
        assert details["country"] is None  # not recognised as any country
        assert len(link_calls(rig.sim)) == before


def test_forwarded_for_and_country_from_an_untrusted_peer_are_ignored(rig: Rig) -> None:
    spoof = {"X-Forwarded-For": "203.0.113.50", COUNTRY_HEADER: "GB", "X-Request-ID": "forged-1"}
    user = f"spoof-{uuid.uuid4().hex[:8]}"
    minted = rig.mint(headers={**spoof, "X-User-Id": user})
    assert minted.status_code == 200, minted.text
    assert minted.headers["x-request-id"] != "forged-1"
    [call] = [c for c in link_calls(rig.sim) if c["params"].get("userId") == user]
    assert call["params"]["userIp"] == "127.0.0.1"  # the socket peer, not the header
    # The country header alone does not unlock a GB-only event either.
    problem(rig.mint(GB_ONLY, headers=spoof), 403, "geo_blocked")
    # From the trusted proxy, the right-most untrusted hop is the viewer.
    user = f"proxied-{uuid.uuid4().hex[:8]}"
    chain = {"X-Forwarded-For": f"1.2.3.4, 203.0.113.60, {TRUSTED}", "X-User-Id": user}
    proxied = rig.mint(headers=chain, via=rig.trusted)
    assert proxied.status_code == 200, proxied.text
    [call] = [c for c in link_calls(rig.sim) if c["params"].get("userId") == user]
    assert call["params"]["userIp"] == "203.0.113.60"


# --- credentials ----------------------------------------------------------------------------


def _claims(**changes: object) -> dict[str, object]:
    claims: dict[str, object] = {"sub": "jwt-viewer", "aud": AUDIENCE,
                                 "exp": int(time.time()) + 300}  # fmt: skip
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _bad_tokens() -> list[tuple[str, str, str]]:
    rsa = rsa_keys("hostile")
    return [
        ("alg-none", unsigned_token(_claims()), "invalid_token"),
        ("alg-None", unsigned_token(_claims(), alg="None"), "invalid_token"),
        ("wrong-secret", sign_hs256(_claims(), secret="x" * 40), "invalid_token"),
        ("rs256-to-hs-only", rsa.sign(_claims()), "invalid_token"),
        ("hs256-keyed-with-public-pem",
         hs256_with_raw_key(_claims(), rsa.public_pem.encode()), "invalid_token"),
        ("expired", sign_hs256(_claims(exp=int(time.time()) - 3600), secret=JWT_SECRET),
         "expired_token"),
        ("wrong-audience", sign_hs256(_claims(aud="someone-else"), secret=JWT_SECRET),
         "invalid_token"),
        ("no-exp", sign_hs256(_claims(exp=None), secret=JWT_SECRET), "invalid_token"),
        ("control-in-sub", sign_hs256(_claims(sub="a\nb"), secret=JWT_SECRET), "invalid_token"),
        ("oversized", sign_hs256(_claims(pad="p" * 9000), secret=JWT_SECRET), "invalid_token"),
        ("not-a-jwt", "definitely.not.ajwt", "invalid_token"),
        ("empty", "", "invalid_token"),
    ]  # fmt: skip


def test_jwts_that_must_not_pass(rig: Rig) -> None:
    before = len(link_calls(rig.sim))
    seen = []
    for name, token, _ in _bad_tokens():
        rig.presented += [token] if len(token) > 8 else []
        bearer = f"Bearer {token}" if token else "Bearer"
        answer = rig.mint(headers={"Authorization": bearer, "X-API-Key": ""})
        details = problem(answer, 401, "unauthorized")
        assert answer.headers["www-authenticate"].startswith("Bearer")
        seen.append((name, details["reason"]))
    assert seen == [(name, reason) for name, _, reason in _bad_tokens()]
    assert len(link_calls(rig.sim)) == before
    good = sign_hs256(_claims(), secret=JWT_SECRET)
    rig.presented.append(good)
    answer = rig.mint(headers={"Authorization": f"Bearer {good}", "X-API-Key": ""})
    assert answer.status_code == 200, answer.text
    assert link_calls(rig.sim)[-1]["params"]["userId"] == "jwt-viewer"


def test_api_keys_of_every_wrong_length(rig: Rig) -> None:
    before = len(link_calls(rig.sim))
    wrong = ["k", API_KEY[:-1], API_KEY + "x", API_KEY[1:], API_KEY.upper(), API_KEY * 4,
             "x" * len(API_KEY), "x" * 4096, API_KEY[: len(API_KEY) // 2]]  # fmt: skip
    for key in wrong:
        details = problem(rig.mint(headers={"X-API-Key": key}), 401, "unauthorized")
        assert details["reason"] == "invalid_api_key"
    unicode_key = rig.raw(request("POST", f"/v1/events/{OPEN}/links",
                                  "X-API-Key: ключ-é".encode(), b"X-User-Id: u1",
                                  body=b'{"streamName": "HLS"}'))  # fmt: skip
    assert problem(unicode_key, 401, "unauthorized")["reason"] == "invalid_api_key"
    missing = problem(rig.mint(headers={"X-API-Key": ""}), 401, "unauthorized")
    assert missing["reason"] == "missing_credentials"
    assert len(link_calls(rig.sim)) == before
    assert rig.mint().status_code == 200  # and the right one still works
