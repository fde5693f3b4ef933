"""Response shapes for the OpenAPI document. Handlers send pre-serialised bytes;
these models describe those bytes (a test checks real answers against them)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Schema(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, extra="forbid")


class SportOut(Schema):
    code: str
    name: str


class SportsOut(Schema):
    sports: list[SportOut]
    fetched_at: dt.datetime


class EventOut(Schema):
    event_id: str
    title: str
    sport_code: str
    location_code: str
    location_name: str
    event_number: str
    event_status_code: str
    start_time: dt.datetime | None
    estimated_end_time: dt.datetime | None
    geo_allow: list[str]
    geo_block: list[str]


class EventsOut(Schema):
    events: list[EventOut]
    fetched_at: dt.datetime
    date: dt.date | None = None


class EventDetailOut(EventOut):
    fetched_at: dt.datetime


class StreamOut(Schema):
    name: str
    type: str
    description: str
    geo_country_allow: list[str]
    geo_country_block: list[str]
    player_width: int | None
    player_height: int | None
    fixed_size: bool | None
    controls: bool | None
    fullscreen: bool | None
    video_bit_rate_kbps: int | None
    audio_bit_rate_kbps: int | None
    stream_stretching: str | None
    stream_width: int | None
    stream_height: int | None


class StreamsOut(Schema):
    event_id: str
    streams: list[StreamOut]
    fetched_at: dt.datetime


class Problem(BaseModel):
    """RFC 9457 problem details, with a stable ``code``."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    operationCode: int | None = None  # noqa: N815 (wire name)
    retryAfter: int | None = None  # noqa: N815 (wire name)


class Health(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    checks: dict[str, str] = {}


class LinkRequestIn(Schema):
    """What a front end asks for: a stream of an event, raw or in the iGame player."""

    stream_name: str = Field(
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="uniqueStreamName from the event's streams, e.g. HLS or ULL",
        examples=["HLS"],
    )
    kind: Literal["raw", "player"] = Field(
        default="raw",
        description="raw: HLS URL or THEOlive channel for your own player; player: iframe URL",
    )
    redirect_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Where the player sends the viewer when the event ends (http/https)",
    )
    session_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{8,64}$",
        description="Renewing a link: the sessionId of the answer being replaced, so the "
        "viewing session goes on instead of a new one counting against the limit",
    )


class _LinkCommon(Schema):
    event_id: str
    stream_name: str
    expires_at: dt.datetime = Field(
        description="When the link or token is expected to stop working (LINK_TTL_S or "
        "THEOLIVE_TOKEN_TTL_S after minting; ONEPlatform does not document it)"
    )
    refresh_after: dt.datetime = Field(
        description="From this time on, ask again for a fresh link (before expiresAt)"
    )
    session_id: str | None = Field(
        default=None,
        description="The viewing session this link opened (with MAX_STREAMS_PER_USER): "
        "send POST /v1/sessions/{id}/heartbeat every heartbeatEveryS, and DELETE "
        "/v1/sessions/{id} when playback stops",
    )
    heartbeat_every_s: float | None = Field(default=None, alias="heartbeatEveryS")


class HlsLinkOut(_LinkCommon):
    kind: Literal["hls"]
    url: str = Field(description="The HLS playlist URL for the viewer's player")
    cdn: str
    transaction_id: str


class TheoLiveLinkOut(_LinkCommon):
    kind: Literal["theolive"]
    channel_id: str = Field(description="THEOlive channel id for player.loadChannel()")
    token: str = Field(description="Send in the THEOlive player's token header")
    cdn: str
    transaction_id: str


class PlayerLinkOut(_LinkCommon):
    kind: Literal["player"]
    url: str = Field(description="The iGame player URL, for an iframe src")
    provider: str


LinkOut = Annotated[HlsLinkOut | TheoLiveLinkOut | PlayerLinkOut, Field(discriminator="kind")]


class PlayRequestIn(Schema):
    """What a player asks for: play this event on this kind of device."""

    device: Literal["web", "mobile", "tablet", "tv", "app"] = Field(
        description="Chooses the ladder of STREAM:kind steps (PLAY_LADDER_<DEVICE>)"
    )
    ull: bool = Field(
        default=False,
        description="The player can do THEOlive (ultra-low latency): ULL steps are tried",
    )
    redirect_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Where the player sends the viewer when the event ends (http/https); "
        "DEFAULT_REDIRECT_URL when absent",
    )
    session_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{8,64}$",
        description="Renewing a link: the sessionId of the answer being replaced, so the "
        "viewing session goes on instead of a new one counting against the limit",
    )


class PlayChoice(Schema):
    stream_name: str
    kind: Literal["raw", "player"]


class _Played(Schema):
    device: Literal["web", "mobile", "tablet", "tv", "app"]
    choice: PlayChoice


class HlsPlayOut(HlsLinkOut, _Played):
    pass


class TheoLivePlayOut(TheoLiveLinkOut, _Played):
    pass


class PlayerPlayOut(PlayerLinkOut, _Played):
    pass


PlayOut = Annotated[HlsPlayOut | TheoLivePlayOut | PlayerPlayOut, Field(discriminator="kind")]


# --- the live stream's messages (GET /v1/events/live): each message's JSON ``data`` ---


class LiveSnapshot(EventsOut):
    """``event: snapshot``: the open list as ``GET /v1/events/open`` renders it, and the
    record (or null) of each event asked for with ``eventId``."""

    watched: dict[str, EventOut | None] | None = None


class LiveChange(Schema):
    """``event: event``: one event's change, with its record as the lists render it."""

    event_id: str
    change: Literal["opened", "closed", "voided", "pending", "removed", "updated"]
    event: EventOut | None


class LiveSessionsEnded(Schema):
    """``event: session``: this viewer's viewing sessions that ended for another reason
    than their own player (``MAX_STREAMS_PER_USER``)."""

    session_ids: list[str]
    reason: Literal["evicted", "ended_by_operator"]
