"""ONEPlatform payloads as typed, frozen models that tolerate the guide's quirks.

- Key casing varies between (and within) responses: ``EventStreams``/``eventStreams``,
  ``StreamLink``/``streamLink``; every model reads its keys case-insensitively.
- Geo lists are comma strings with or without spaces, and say ``UK`` for ``GB``:
  they become tuples of normalised ISO 3166 codes.
- Times are ISO 8601 in several forms (``Z``, offsets, 7-digit fractions, no zone
  meaning UTC) and sometimes malformed (``2020-11-09T:00:00:00``): an unreadable
  time becomes ``None`` and the event is kept.
- Numbers may arrive as strings and strings as numbers.

The same models serialise (by alias, camelCase) into the gateway's own responses.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic.alias_generators import to_camel

from app.policy.countries import parse_code_list

_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")
_COMPACT_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_upstream_time(value: object) -> datetime | None:
    """An aware UTC datetime, or None when the value cannot be read as ISO 8601."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text[-1] in "Zz":
            text = text[:-1] + "+00:00"
        text = _LONG_FRACTION.sub(r"\1", text)
        text = _COMPACT_OFFSET.sub(r"\1:\2", text) if "T" in text else text
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)  # the guide: all dates are UTC
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before datetime.min in UTC
        return None


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | int | float):
        return str(value)
    return ""


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int):
        return bool(value)
    return None


class UpstreamModel(BaseModel):
    """Reads upstream keys case-insensitively; serialises as camelCase."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    # field name -> further upstream keys it may arrive under
    upstream_keys: ClassVar[dict[str, tuple[str, ...]]] = {}

    @model_validator(mode="before")
    @classmethod
    def _fold_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        folded = {str(key).casefold(): value for key, value in data.items()}
        out: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            for key in (name, field.alias or name, *cls.upstream_keys.get(name, ())):
                if key.casefold() in folded:
                    out[name] = folded[key.casefold()]
                    break
        return out


class Event(UpstreamModel):
    event_id: str
    title: str = ""
    sport_code: str = ""
    location_code: str = ""
    location_name: str = ""
    event_number: str = ""
    event_status_code: str = ""
    start_time: datetime | None = None
    estimated_end_time: datetime | None = None
    geo_allow: tuple[str, ...] = ()
    geo_block: tuple[str, ...] = ()

    @field_validator("event_id", mode="before")
    @classmethod
    def _required_id(cls, value: object) -> str:
        text = _as_text(value)
        if not text:
            raise ValueError("eventId is empty")
        return text

    @field_validator(
        "title", "sport_code", "location_code", "location_name", "event_number", mode="before"
    )
    @classmethod
    def _text(cls, value: object) -> str:
        return _as_text(value)

    @field_validator("event_status_code", mode="before")
    @classmethod
    def _status(cls, value: object) -> str:
        return _as_text(value).upper()

    @field_validator("start_time", "estimated_end_time", mode="before")
    @classmethod
    def _time(cls, value: object) -> datetime | None:
        return parse_upstream_time(value)

    @field_validator("geo_allow", "geo_block", mode="before")
    @classmethod
    def _geo(cls, value: object) -> tuple[str, ...]:
        return parse_code_list(value)


class Stream(UpstreamModel):
    name: str
    type: str = ""
    description: str = ""
    geo_country_allow: tuple[str, ...] = ()
    geo_country_block: tuple[str, ...] = ()
    player_width: int | None = None
    player_height: int | None = None
    fixed_size: bool | None = None
    controls: bool | None = None
    fullscreen: bool | None = None
    video_bit_rate_kbps: int | None = None
    audio_bit_rate_kbps: int | None = None
    stream_stretching: str | None = None
    stream_width: int | None = None
    stream_height: int | None = None

    upstream_keys: ClassVar[dict[str, tuple[str, ...]]] = {
        "name": ("uniqueStreamName",),
        "type": ("streamType",),
    }

    @field_validator("name", mode="before")
    @classmethod
    def _required_name(cls, value: object) -> str:
        text = _as_text(value)
        if not text:
            raise ValueError("uniqueStreamName is empty")
        return text

    @field_validator("type", "description", mode="before")
    @classmethod
    def _text(cls, value: object) -> str:
        return _as_text(value)

    @field_validator("stream_stretching", mode="before")
    @classmethod
    def _optional_text(cls, value: object) -> str | None:
        return _as_text(value) or None

    @field_validator(
        "player_width",
        "player_height",
        "video_bit_rate_kbps",
        "audio_bit_rate_kbps",
        "stream_width",
        "stream_height",
        mode="before",
    )
    @classmethod
    def _int(cls, value: object) -> int | None:
        return _as_int(value)

    @field_validator("fixed_size", "controls", "fullscreen", mode="before")
    @classmethod
    def _bool(cls, value: object) -> bool | None:
        return _as_bool(value)

    @field_validator("geo_country_allow", "geo_country_block", mode="before")
    @classmethod
    def _geo(cls, value: object) -> tuple[str, ...]:
        return parse_code_list(value)

    @property
    def is_ultra_low_latency(self) -> bool:
        return self.type.upper() in ("ULL", "HESP") or self.name.upper().startswith("ULL")


class Sport(UpstreamModel):
    code: str
    name: str = ""

    @field_validator("code", mode="before")
    @classmethod
    def _required_code(cls, value: object) -> str:
        text = _as_text(value).upper()
        if not text:
            raise ValueError("Code is empty")
        return text

    @field_validator("name", mode="before")
    @classmethod
    def _text(cls, value: object) -> str:
        return _as_text(value)


class StreamLink(UpstreamModel):
    """Answer of stream/link: an encoded transaction reference (raw) or a player URL."""

    stream_link: str
    stream_type: str = ""
    provider: str = ""
    message: str = ""

    @field_validator("stream_link", mode="before")
    @classmethod
    def _required_link(cls, value: object) -> str:
        text = _as_text(value)
        if not text:
            raise ValueError("streamLink is empty")
        return text

    @field_validator("stream_type", "provider", "message", mode="before")
    @classmethod
    def _text(cls, value: object) -> str:
        return _as_text(value)


HLS_STREAM_TYPE = 2
THEOLIVE_STREAM_TYPE = 4


class LiveStream(UpstreamModel):
    """Answer of liveStream: StreamType 2 is an HLS URL, 4 a THEOlive channel id + token."""

    stream_link: str
    stream_type: int
    content_delivery_network: str = ""
    transaction_id: str = ""
    stream_token: str = ""
    event_id: str = ""
    message: str = ""

    @field_validator("stream_link", mode="before")
    @classmethod
    def _required_link(cls, value: object) -> str:
        text = _as_text(value)
        if not text:
            raise ValueError("StreamLink is empty")
        return text

    @field_validator("stream_type", mode="before")
    @classmethod
    def _stream_type(cls, value: object) -> int:
        number = _as_int(value)
        if number is None:
            raise ValueError("StreamType is not a number")
        return number

    @field_validator(
        "content_delivery_network",
        "transaction_id",
        "stream_token",
        "event_id",
        "message",
        mode="before",
    )
    @classmethod
    def _text(cls, value: object) -> str:
        return _as_text(value)
