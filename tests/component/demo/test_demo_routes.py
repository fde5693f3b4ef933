"""The demo routes in-process: the pages' own CSP (and the API's, untouched), the
stream, the player libraries, the demo token and who gets which of them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from app.api.problems import install_problem_handlers
from app.demo.mpegts import CLOCK_HZ, shift_timestamps
from app.demo.routes import MEDIA_DIR, PAGE_CSP, PLAYER_CSP, DemoSite, demo_router
from app.demo.tokens import TOKEN_LIFETIME_S
from app.main import create_app
from app.settings import Settings
from app.settings.checks import SIMULATOR_JWT_SECRET
from tests.support.asgi import app_client
from tests.support.polling import eventually

API_CSP = "default-src 'none'; frame-ancestors 'none'"
SECRET = "a-jwt-secret-of-at-least-thirty-two-bytes-0123"


async def warm(client: httpx.AsyncClient) -> None:
    async def answered() -> bool:
        return (await client.get("/v1/events/open")).status_code == 200

    await eventually(answered, "the catalogue warm")


@pytest.fixture
async def demo() -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(Settings(igm_mode="simulator"))) as client:
        yield client


async def test_pages_keep_their_own_policy_and_the_api_keeps_its(
    demo: httpx.AsyncClient,
) -> None:
    page = await demo.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers.get_list("content-security-policy") == [PAGE_CSP]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "/_demo/static/demo.js" in page.text
    player = await demo.get("/_demo/player/ANY-EVENT")
    assert player.headers.get_list("content-security-policy") == [PLAYER_CSP]
    assert "frame-ancestors 'self'" in PLAYER_CSP  # the gateway's own pages may frame it
    api = await demo.get("/v1/sports")
    assert api.headers.get_list("content-security-policy") == [API_CSP]


@pytest.mark.parametrize(
    ("name", "media_type"),
    [("demo.js", "text/javascript"), ("player.js", "text/javascript"), ("demo.css", "text/css")],
)
async def test_static_files(demo: httpx.AsyncClient, name: str, media_type: str) -> None:
    answer = await demo.get(f"/_demo/static/{name}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(media_type)


@pytest.mark.parametrize("name", ["index.html", "..%2Froutes.py", "missing.js"])
async def test_only_listed_static_files(demo: httpx.AsyncClient, name: str) -> None:
    answer = await demo.get(f"/_demo/static/{name}")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


async def test_demo_token_mints_links_without_a_redirect_url(demo: httpx.AsyncClient) -> None:
    await warm(demo)
    answer = await demo.get("/_demo/token")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    claims = jwt.decode(body["accessToken"], SIMULATOR_JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == body["userId"]
    assert body["userId"].startswith("demo-viewer-")
    assert 0 < claims["exp"] - time.time() <= TOKEN_LIFETIME_S
    assert claims["exp"] == body["expiresAt"]
    open_events = (await demo.get("/v1/events/open")).json()["events"]
    channel = next(e for e in open_events if e["sportCode"] == "HR")  # never geo-limited
    link = await demo.post(
        f"/v1/events/{channel['eventId']}/links",
        headers={"Authorization": f"Bearer {body['accessToken']}"},
        json={"streamName": "HLS", "kind": "raw"},  # no redirectUrl: demo mode has one
    )
    assert link.status_code == 200, link.text
    origin = str(demo.base_url).rstrip("/")  # a relative link is made absolute
    assert link.json()["url"] == f"{origin}/_demo/hls/{channel['eventId']}/playlist.m3u8"
    player = await demo.post(
        f"/v1/events/{channel['eventId']}/links",
        headers={"Authorization": f"Bearer {body['accessToken']}"},
        json={"streamName": "HLS", "kind": "player"},
    )
    assert player.json()["url"].startswith(f"{origin}/_demo/player/{channel['eventId']}?tid=")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("gateway.example:8443", "http://gateway.example:8443"),
        ("[::1]:8000", "http://[::1]:8000"),
        ("evil.example/phish?", "http://gateway"),  # not a host: the server's own name
    ],
)
async def test_relative_links_are_made_absolute_with_the_host_asked(
    demo: httpx.AsyncClient, host: str, expected: str
) -> None:
    await warm(demo)
    token = (await demo.get("/_demo/token")).json()["accessToken"]
    open_events = (await demo.get("/v1/events/open")).json()["events"]
    channel = next(e for e in open_events if e["sportCode"] == "HR")
    played = await demo.post(
        f"/v1/events/{channel['eventId']}/play",
        headers={"Authorization": f"Bearer {token}", "Host": host},
        json={"device": "web"},
    )
    assert played.status_code == 200, played.text
    assert played.json()["url"] == f"{expected}/_demo/hls/{channel['eventId']}/playlist.m3u8"


def production(**values: object) -> Settings:
    base: dict[str, object] = {
        "igm_customer_uid": "uid-not-used-here",
        "igm_server_ip": "127.0.0.1",
        "igm_api_url": "http://127.0.0.1:9/api",  # never called in these tests
        "auth_jwt_secret": SECRET,
        "catalogue_cold_wait_s": 0,
        "audit_user_id_key": "audit-key-for-the-demo-route-tests-0123",
        "redirect_allow_any": True,
    }
    return Settings(**(base | values))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "answers"),
    [
        (production(), {"/": 404, "/demo": 404, "/_demo/token": 404, "/_demo/player/E": 404}),
        (
            production(demo_page=True),
            {"/": 404, "/demo": 200, "/_demo/token": 404, "/_demo/player/E": 200},
        ),
        (
            production(demo_page=True, demo_token_issuer=True),
            {"/": 404, "/demo": 200, "/_demo/token": 200, "/_demo/player/E": 200},
        ),
        # demo mode in front of an upstream of its own: the page, never the token route
        (production(igm_mode="simulator"), {"/": 200, "/_demo/token": 404}),
    ],
    ids=["production", "demo-page", "demo-page-and-issuer", "simulator-own-upstream"],
)
def test_who_serves_what(settings: Settings, answers: dict[str, int]) -> None:
    """Built but not started: the routes exist or not whatever the upstream does."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)

    async def run() -> dict[str, int]:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return {path: (await client.get(path)).status_code for path in answers}

    assert asyncio.run(run()) == answers


def site_at(now: float, vendor_dir: Path) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(demo_router(DemoSite.load(vendor_dir, None, lambda: now), page_path="/"))
    return app


async def test_stream_follows_the_clock_and_serves_the_files(tmp_path: Path) -> None:
    files = sorted(MEDIA_DIR.glob("segment*.ts"))
    transport = httpx.ASGITransport(app=site_at(19.9, tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        playlist = await client.get("/_demo/hls/E1/playlist.m3u8")
        assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
        assert "#EXT-X-MEDIA-SEQUENCE:1\n" in playlist.text  # 8 segments, 1 to 8
        assert playlist.text.rstrip().endswith("\n8.ts")
        segment = await client.get("/_demo/hls/E1/9.ts")
        assert segment.headers["content-type"] == "video/mp2t"
        # segment 9 is file 1 of the third loop: its clock moved on by two loops of 8 s
        assert segment.content == shift_timestamps(files[1].read_bytes(), 2 * 8 * CLOCK_HZ)
        assert (await client.get("/_demo/hls/E1/x.ts")).status_code == 404


def test_the_shipped_segments_are_small_mpeg_ts() -> None:
    files = sorted(MEDIA_DIR.glob("segment*.ts"))
    assert len(files) == 4
    assert sum(path.stat().st_size for path in files) <= 1_000_000
    for path in files:
        data = path.read_bytes()
        assert len(data) % 188 == 0
        assert all(data[i] == 0x47 for i in range(0, len(data), 188))  # TS sync bytes


async def test_vendor_files_come_from_the_npm_directory(tmp_path: Path) -> None:
    (tmp_path / "hls.js" / "dist").mkdir(parents=True)
    (tmp_path / "hls.js" / "dist" / "hls.min.js").write_text("window.Hls = 1;")
    transport = httpx.ASGITransport(app=site_at(0.0, tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        served = await client.get("/_demo/vendor/hls.js")
        assert served.status_code == 200
        assert served.text == "window.Hls = 1;"
        assert served.headers["content-type"].startswith("text/javascript")
        missing = await client.get("/_demo/vendor/THEOLive.js")  # npm ci not run
        assert missing.status_code == 404
        assert "npm ci" in missing.json()["detail"]
        assert (await client.get("/_demo/vendor/package.json")).status_code == 404


async def test_links_disabled() -> None:
    app = create_app(Settings(igm_mode="simulator", links_enabled=False))
    async with app_client(app) as client:
        answer = await client.post(
            "/v1/events/ANY/links",
            headers={"X-API-Key": "demo-api-key", "X-User-Id": "viewer-1"},
            json={"streamName": "HLS", "kind": "raw"},
        )
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "links_disabled"


async def test_frame_ancestors_let_other_origins_frame_the_player_page() -> None:
    settings = Settings(igm_mode="simulator", frame_ancestors="https://www.operator.example")
    async with app_client(create_app(settings)) as client:
        player = await client.get("/_demo/player/E1")
        page = await client.get("/")
    [policy] = player.headers.get_list("content-security-policy")
    assert "frame-ancestors 'self' https://www.operator.example;" in policy
    assert page.headers["content-security-policy"] == PAGE_CSP  # only the player page


@pytest.mark.parametrize(
    "value", ["https://ok.example; script-src *", "'unsafe-inline'", "https://x.example/path"]
)
def test_frame_ancestors_take_origins_only(value: str) -> None:
    with pytest.raises(ValidationError):
        Settings(igm_mode="simulator", frame_ancestors=value)


async def test_the_player_kit_is_served_to_other_origins() -> None:
    origin = "http://127.0.0.1:8100"
    settings = Settings(igm_mode="simulator", cors_allow_origins=origin)
    async with app_client(create_app(settings)) as client:
        kit = await client.get("/_demo/kit/player.js", headers={"Origin": origin})
        missing = await client.get("/_demo/kit/fakes.js")
    assert kit.status_code == 200
    assert kit.headers["content-type"].startswith("text/javascript")
    assert kit.headers["access-control-allow-origin"] == origin  # a module script's CORS
    assert "export function createPlayer" in kit.text
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("trusted", "expected"), [("127.0.0.1/32", "https://"), ("10.0.0.0/8", "http://")]
)
async def test_the_scheme_of_a_relative_link_is_a_trusted_proxys(
    trusted: str, expected: str
) -> None:
    """Behind a proxy that terminates TLS, X-Forwarded-Proto says the scheme: believed
    only from one of TRUSTED_PROXIES (the test client is 127.0.0.1)."""
    settings = Settings(igm_mode="simulator", trusted_proxies=trusted)
    async with app_client(create_app(settings)) as client:
        await warm(client)
        token = (await client.get("/_demo/token")).json()["accessToken"]
        open_events = (await client.get("/v1/events/open")).json()["events"]
        channel = next(e for e in open_events if e["sportCode"] == "HR")
        played = await client.post(
            f"/v1/events/{channel['eventId']}/play",
            headers={
                "Authorization": f"Bearer {token}",
                "Host": "www.operator.example",
                "X-Forwarded-Proto": "https",
            },
            json={"device": "web"},
        )
    assert played.status_code == 200, played.text
    assert played.json()["url"].startswith(f"{expected}www.operator.example/_demo/hls/")
