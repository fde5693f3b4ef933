"""The demo's routes, left out of the OpenAPI document (they are not the API) but for
the token route while it issues tokens (so that /docs can say where a token comes from):

==========================================  ===========================================
``GET /`` (demo mode) or ``/demo``          the reference page (``static/index.html``)
``GET /_demo/static/{name}``                its script and style sheet
``GET /_demo/vendor/{name}``                hls.js and the THEOlive player, from npm ci
``GET /_demo/kit/player.js``                the player kit (``clients/web/src``)
``GET /_demo/hls/{eventId}/playlist.m3u8``  a sliding live playlist (``hls.py``)
``GET /_demo/hls/{eventId}/{n}.ts``         its segments (``media/``, ``mpegts.py``)
``GET /_demo/player/{eventId}``             a frameable page playing that stream
``GET /_demo/token``                        a demo viewer's JWT (``tokens.py``)
==========================================  ===========================================

Pages carry their own Content-Security-Policy (the API's ``default-src 'none'`` would
stop them running); the request middleware leaves a response's own policy alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import orjson
from fastapi import APIRouter
from pydantic import Field
from starlette.responses import FileResponse, Response

from app.api.problems import problem_responses
from app.api.schemas import Schema
from app.demo.hls import LoopedStream
from app.demo.mpegts import shift_timestamps
from app.demo.tokens import DemoTokenIssuer
from app.errors import GatewayError, problem

HERE: Final = Path(__file__).resolve().parent
MEDIA_DIR: Final = HERE / "media"
STATIC_DIR: Final = HERE / "static"
SEGMENT_S: Final = 2.0

# 'wasm-unsafe-eval': THEOlive's transmuxer is WebAssembly; blob: workers are hls.js's
# and THEOlive's; THEOlive injects its UI's styles and talks to its own https hosts, and
# a production player link is an https iframe.
PAGE_CSP: Final = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "media-src 'self' blob: https:; connect-src 'self' https:; worker-src 'self' blob:; "
    "frame-src 'self' https:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
PLAYER_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


def player_csp(frame_ancestors: Sequence[str]) -> str:
    """The player page's policy: framed by the gateway's own pages and by the origins of
    ``FRAME_ANCESTORS`` (validated origins: no quote, space or semicolon)."""
    if not frame_ancestors:
        return PLAYER_CSP
    allowed = " ".join(["'self'", *frame_ancestors])
    return PLAYER_CSP.replace("frame-ancestors 'self'", f"frame-ancestors {allowed}")


# The player kit (clients/web/src), for the reference page and pages on other origins
KIT_FILES: Final = {"player.js": "text/javascript"}
STATIC_FILES: Final = {
    "demo.js": "text/javascript",
    "player.js": "text/javascript",
    "demo.css": "text/css",
}
# name served -> (path under DEMO_VENDOR_DIR, media type)
VENDOR_FILES: Final = {
    "hls.js": ("hls.js/dist/hls.min.js", "text/javascript"),
    "THEOLive.js": ("@theolive/player/THEOLive.js", "text/javascript"),
    "THEOplayer.transmux.js": ("@theolive/player/THEOplayer.transmux.js", "text/javascript"),
    "THEOplayer.transmux.wasm": ("@theolive/player/THEOplayer.transmux.wasm", "application/wasm"),
}
NO_STORE: Final = {"Cache-Control": "no-store"}


def _not_found(what: str) -> GatewayError:
    return problem("not_found", f"No such {what}.")


@dataclass(frozen=True, slots=True)
class DemoSite:
    """What the demo routes serve, loaded once when the app is built."""

    stream: LoopedStream
    segments: tuple[bytes, ...]
    vendor_dir: Path
    issuer: DemoTokenIssuer | None  # None: the page asks for a JWT to paste
    wall: Callable[[], float]
    kit_dir: Path = Path("clients/web/src")
    player_csp: str = PLAYER_CSP

    @classmethod
    def load(
        cls,
        vendor_dir: Path,
        issuer: DemoTokenIssuer | None,
        wall: Callable[[], float],
        *,
        kit_dir: Path = Path("clients/web/src"),
        frame_ancestors: Sequence[str] = (),
    ) -> DemoSite:
        files = sorted(MEDIA_DIR.glob("segment*.ts"), key=lambda p: int(p.stem[7:]))
        segments = tuple(path.read_bytes() for path in files)
        stream = LoopedStream(len(segments), SEGMENT_S)
        csp = player_csp(frame_ancestors)
        return cls(stream, segments, vendor_dir, issuer, wall, kit_dir, csp)


def page(name: str, csp: str) -> Response:
    body = (STATIC_DIR / name).read_bytes()
    return Response(
        body,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": csp, "Referrer-Policy": "no-referrer", **NO_STORE},
    )


class DemoTokenOut(Schema):
    """A demo viewer's JWT, for ``Authorization: Bearer`` (or ``?access_token=`` on the
    live stream)."""

    access_token: str = Field(description="The JWT (HS256, signed with AUTH_JWT_SECRET)")
    token_type: Literal["Bearer"]
    user_id: str = Field(description="The token's `sub`: a random demo-viewer-…")
    expires_at: int = Field(description="When it expires, in seconds since the epoch")


def demo_router(site: DemoSite, *, page_path: str) -> APIRouter:
    """The demo's routes; only the token route is in the OpenAPI document, and only
    while it issues tokens."""
    router = APIRouter()

    @router.get(page_path, include_in_schema=False)
    async def reference_page() -> Response:
        return page("index.html", PAGE_CSP)

    @router.get("/_demo/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        media_type = STATIC_FILES.get(name)
        if media_type is None:
            raise _not_found("file")
        return Response((STATIC_DIR / name).read_bytes(), media_type=media_type, headers=NO_STORE)

    @router.get("/_demo/vendor/{name}", include_in_schema=False)
    async def vendor(name: str) -> Response:
        entry = VENDOR_FILES.get(name)
        path = site.vendor_dir / entry[0] if entry else None
        if entry is None or path is None or not path.is_file():
            raise _not_found("player library (run npm ci)")
        return FileResponse(path, media_type=entry[1], headers={"Cache-Control": "max-age=3600"})

    @router.get("/_demo/kit/{name}", include_in_schema=False)
    async def kit(name: str) -> Response:
        media_type = KIT_FILES.get(name)
        path = site.kit_dir / name
        if media_type is None or not path.is_file():
            raise _not_found("player kit file")
        return Response(path.read_bytes(), media_type=media_type, headers=NO_STORE)

    @router.get("/_demo/hls/{event_id}/playlist.m3u8", include_in_schema=False)
    async def playlist(event_id: str) -> Response:
        return Response(
            site.stream.playlist(site.wall()),
            media_type="application/vnd.apple.mpegurl",
            headers={"Cache-Control": "no-cache"},
        )

    @router.get("/_demo/hls/{event_id}/{sequence:int}.ts", include_in_schema=False)
    async def segment(event_id: str, sequence: int) -> Response:
        stream = site.stream
        return Response(
            shift_timestamps(site.segments[stream.file_of(sequence)], stream.clock_shift(sequence)),
            media_type="video/mp2t",
            headers={"Cache-Control": "max-age=60"},
        )

    @router.get("/_demo/player/{event_id}", include_in_schema=False)
    async def player(event_id: str) -> Response:
        return page("player.html", site.player_csp)

    @router.get(
        "/_demo/token",
        tags=["demo"],
        include_in_schema=site.issuer is not None,
        response_model=DemoTokenOut,
        summary="A demo viewer's JWT (demo mode, or DEMO_TOKEN_ISSUER)",
        description="A 10-minute token for a random viewer, to put in *Authorize* "
        "(`viewerJwt`) or in a front end's `Authorization: Bearer`. Anyone may ask: a "
        "demo or staging gateway only.",
        responses=problem_responses("not_found"),
    )
    async def token() -> Response:
        if site.issuer is None:
            raise _not_found("token issuer (paste a JWT)")
        minted = site.issuer.mint()
        body = {
            "accessToken": minted.access_token,
            "tokenType": "Bearer",
            "userId": minted.user_id,
            "expiresAt": minted.expires_at,
        }
        return Response(orjson.dumps(body), media_type="application/json", headers=NO_STORE)

    return router
