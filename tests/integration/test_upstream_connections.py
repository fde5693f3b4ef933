"""How the gateway reaches ONEPlatform (and the JWKS endpoint): proxy variables,
``IGM_CA_BUNDLE``, the pool's size and keep-alive, each against real servers on
loopback (uvicorn, a self-signed TLS certificate made here, a forward proxy)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from app.identity.auth import AuthError, AuthReason
from app.main import create_app
from app.settings import Settings, SettingsError, load_settings
from app.state import GatewayState
from app.tls import tls_verify
from app.upstream.client import OnePlatformClient, build_http_client
from app.upstream.errors import UpstreamConnectionError
from tests.support.jwt_keys import rsa_keys
from tests.support.loopback import Certificate, Recorder, Seen, self_signed, serve
from tests.support.polling import eventually, wait_until
from tests.support.redis_server import free_port

UID = "uid-7f3e-connections-secret"
SERVER_IP = "203.0.113.9"
SPORTS = {"operationCode": 200, "sports": [{"code": "FT", "name": "Football"}]}
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


def sports(seen: Seen) -> object:
    return SPORTS


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy or CA variables but the ones a test sets."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"))


@asynccontextmanager
async def upstream(
    api_url: str,
    *,
    ca_bundle: Path | None = None,
    max_connections: int = 4,
    keepalive_expiry_s: float = 5.0,
) -> AsyncIterator[OnePlatformClient]:
    """A client built as the lifespan builds it (no transport given: httpx's own)."""
    async with build_http_client(
        connect_timeout_s=10.0,  # also the pool wait: generous for a loaded machine
        read_timeout_s=10.0,
        max_connections=max_connections,
        keepalive_expiry_s=keepalive_expiry_s,
        verify=tls_verify(ca_bundle),
    ) as http:
        yield OnePlatformClient(
            http,
            api_url=api_url,
            player_api_url=api_url,
            customer_uid=SecretStr(UID),
            server_ip=SERVER_IP,
        )


# --- proxy variables --------------------------------------------------------------------

PROXY_CASES = [
    pytest.param({"HTTP_PROXY": "{proxy}"}, True, id="HTTP_PROXY"),
    pytest.param({"http_proxy": "{proxy}"}, True, id="http_proxy"),
    pytest.param({"ALL_PROXY": "{proxy}"}, True, id="ALL_PROXY"),
    pytest.param({"HTTP_PROXY": "{proxy}", "NO_PROXY": "127.0.0.1"}, False, id="NO_PROXY"),
    pytest.param({"HTTPS_PROXY": "{proxy}"}, False, id="HTTPS_PROXY-is-for-https-only"),
    pytest.param({}, False, id="none"),
]


@pytest.mark.parametrize(("variables", "proxied"), PROXY_CASES)
async def test_proxy_variables_are_honoured(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], proxied: bool
) -> None:
    # Nothing listens at the upstream's address: only a proxy can answer for it.
    origin = f"127.0.0.1:{free_port()}"
    proxy = Recorder(sports)
    with serve(proxy) as proxy_url:
        for name, value in variables.items():
            monkeypatch.setenv(name, value.format(proxy=proxy_url))
        async with upstream(f"http://{origin}/api") as client:
            if proxied:
                result = await client.sports()
                assert [sport.code for sport in result.items] == ["FT"]
            else:
                with pytest.raises(UpstreamConnectionError) as caught:
                    await client.sports()
                assert UID not in str(caught.value)
    if proxied:
        [seen] = proxy.seen
        assert seen.host == origin  # asked for the upstream's origin, in absolute form
        assert seen.path == f"/api/sport/all/{UID}"
        assert seen.headers["x-forwarded-for"] == SERVER_IP
    else:
        assert proxy.seen == []


# --- IGM_CA_BUNDLE ----------------------------------------------------------------------


async def test_a_self_signed_upstream_needs_the_ca_bundle(certificate: Certificate) -> None:
    server = Recorder(sports)
    with serve(server, certfile=certificate.certfile, keyfile=certificate.keyfile) as url:
        assert url.startswith("https://")
        async with upstream(f"{url}/api") as default_trust:
            with pytest.raises(UpstreamConnectionError) as caught:
                await default_trust.sports()
        assert caught.value.message == "ConnectError"  # the TLS handshake was refused
        assert UID not in str(caught.value)
        assert server.seen == []

        async with upstream(f"{url}/api", ca_bundle=certificate.certfile) as trusting:
            result = await trusting.sports()
    assert [sport.code for sport in result.items] == ["FT"]
    assert [seen.path for seen in server.seen] == [f"/api/sport/all/{UID}"]


def test_a_missing_ca_bundle_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(igm_mode="simulator", igm_ca_bundle=tmp_path / "absent.pem")
    assert "IGM_CA_BUNDLE" in str(caught.value)


# --- the pool ---------------------------------------------------------------------------


@pytest.mark.parametrize("max_connections", [1, 3])
async def test_the_pool_opens_at_most_max_connections(max_connections: int) -> None:
    server = Recorder(sports, delay_s=0.1)  # answers overlap: each call holds its connection
    with serve(server) as url:
        async with upstream(f"{url}/api", max_connections=max_connections) as client:
            await asyncio.gather(*(client.sports() for _ in range(8)))
    assert len(server.seen) == 8
    assert len(server.connections) == max_connections


@pytest.mark.parametrize(
    ("keepalive_expiry_s", "connections"),
    [pytest.param(60.0, 1, id="reused"), pytest.param(0.05, 2, id="expired")],
)
async def test_keepalive_expiry(keepalive_expiry_s: float, connections: int) -> None:
    server = Recorder(sports)
    with serve(server) as url:
        async with upstream(f"{url}/api", keepalive_expiry_s=keepalive_expiry_s) as client:
            await client.sports()
            await asyncio.sleep(0.5)  # 10x the short expiry; far below the long one
            await client.sports()
    assert len(server.seen) == 2
    assert len(server.connections) == connections


# --- the lifespan: the upstream and the JWKS client agree -------------------------------


@asynccontextmanager
async def gateway(settings: Settings) -> AsyncIterator[GatewayState]:
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:
        assert state is not None
        yield state["gateway"]


ISSUER = "https://idp.example/"
AUDIENCE = "gateway"


def tls_settings(url: str, ca_bundle: Path | None) -> Settings:
    values: dict[str, Any] = {
        "igm_mode": "simulator",
        "igm_api_url": f"{url}/api",  # a network upstream: the TLS server
        "igm_player_api_url": f"{url}/api",
        "auth_jwks_url": f"{url}/jwks",
        "auth_jwt_issuer": ISSUER,
        "auth_jwt_audience": AUDIENCE,
        "igm_ca_bundle": ca_bundle,
        "log_level": "warning",
    }
    return Settings(**values)


def jwks_answer(seen: Seen) -> object:
    if seen.path == "/jwks":
        return {"keys": [rsa_keys().public_jwk("k1")]}
    return SPORTS


def token() -> str:
    claims = {
        "sub": "viewer-1",
        "exp": int(time.time()) + 600,
        "iss": ISSUER,
        "aud": AUDIENCE,  # required with a JWKS URL
    }
    return rsa_keys().sign(claims, {"kid": "k1"})


async def refresher_called(state: GatewayState) -> bool:
    called = {
        sample.labels["method"]
        for family in state.metrics.registry.collect()
        if family.name == "gateway_upstream_calls"
        for sample in family.samples
        if sample.name == "gateway_upstream_calls_total"
    }
    return {"event_open", "event_all"} <= called


@pytest.mark.parametrize("trusted", [True, False], ids=["with-bundle", "without"])
async def test_the_lifespan_gives_both_clients_the_ca_bundle(
    certificate: Certificate, trusted: bool
) -> None:
    server = Recorder(jwks_answer)
    with serve(server, certfile=certificate.certfile, keyfile=certificate.keyfile) as url:
        settings = tls_settings(url, certificate.certfile if trusted else None)
        async with gateway(settings) as state:
            # The refresher's first round reaches the server too, through the same bundle.
            await eventually(
                lambda: refresher_called(state), "the refresher's first round", timeout_s=20
            )
            authenticate = state.authenticator.authenticate(
                authorization=f"Bearer {token()}", api_key=None, user_id=None
            )
            if trusted:
                principal = await authenticate
                assert principal.user_id == "viewer-1"
                result = await state.client.sports()
                assert [sport.code for sport in result.items] == ["FT"]
            else:
                with pytest.raises(AuthError) as refused:
                    await authenticate
                assert refused.value.reason == AuthReason.INVALID_TOKEN
                with pytest.raises(UpstreamConnectionError):
                    await state.client.sports()
    uid = settings.customer_uid.get_secret_value()
    paths = {seen.path for seen in server.seen}
    assert ({"/jwks", f"/api/sport/all/{uid}"} <= paths) is trusted
    assert (paths == set()) is not trusted  # no handshake passed without the bundle


class SilentServer:
    """A TCP server that accepts connections and never answers (a TLS handshake to it
    never ends); it records, per connection, whether the client has closed it."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        self.closed: list[bool] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # listener closed
            index = len(self.closed)
            self.closed.append(False)
            threading.Thread(target=self._read, args=(connection, index), daemon=True).start()

    def _read(self, connection: socket.socket, index: int) -> None:
        with connection:
            while connection.recv(4096):  # the ClientHello, then nothing until EOF
                pass
        self.closed[index] = True

    def close(self) -> None:
        self._listener.close()


async def test_a_shutdown_in_the_middle_of_a_handshake_closes_the_refreshers_connection() -> None:
    """The refresher's round, cancelled by the lifespan's shutdown in the middle of a
    TLS handshake, finishes first (the connect timeout ends the handshake), so its
    socket is closed when the lifespan has ended, not left to the garbage collector."""
    server = SilentServer()
    try:
        settings = tls_settings(server.url, None).model_copy(
            update={"igm_connect_timeout_s": 0.5, "auth_jwks_url": None}
        )
        async with gateway(settings):
            await eventually(
                _async(lambda: len(server.closed) >= 1), "the refresher connecting upstream"
            )
        assert len(server.closed) == 1
        wait_until(lambda: server.closed[0], "the gateway closing its connection", timeout_s=5)
    finally:
        server.close()


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def checked() -> bool:
        return check()

    return checked
