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
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator
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


def _required_text(value: object) -> str:
    text = _as_text(value)
    if not text:
        raise ValueError("must not be empty")
    return text


def _required_int(value: object) -> int:
    number = _as_int(value)
    if number is None:
        raise ValueError("must be a whole number")
    return number


# Field types that read the upstream's loose values (see the module docstring).
Text = Annotated[str, BeforeValidator(_as_text)]
RequiredText = Annotated[str, BeforeValidator(_required_text)]
UpperText = Annotated[str, BeforeValidator(lambda value: _as_text(value).upper())]
Number = Annotated[int | None, BeforeValidator(_as_int)]
RequiredNumber = Annotated[int, BeforeValidator(_required_int)]
Flag = Annotated[bool | None, BeforeValidator(_as_bool)]
OptionalText = Annotated[str | None, BeforeValidator(lambda value: _as_text(value) or None)]
Countries = Annotated[tuple[str, ...], BeforeValidator(parse_code_list)]
UpstreamTime = Annotated[datetime | None, BeforeValidator(parse_upstream_time)]


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
    event_id: RequiredText
    title: Text = ""
    sport_code: Text = ""
    location_code: Text = ""
    location_name: Text = ""
    event_number: Text = ""
    event_status_code: UpperText = ""
    start_time: UpstreamTime = None
    estimated_end_time: UpstreamTime = None
    geo_allow: Countries = ()
    geo_block: Countries = ()


class Stream(UpstreamModel):
    name: RequiredText
    type: Text = ""
    description: Text = ""
    geo_country_allow: Countries = ()
    geo_country_block: Countries = ()
    player_width: Number = None
    player_height: Number = None
    fixed_size: Flag = None
    controls: Flag = None
    fullscreen: Flag = None
    video_bit_rate_kbps: Number = None
    audio_bit_rate_kbps: Number = None
    stream_stretching: OptionalText = None
    stream_width: Number = None
    stream_height: Number = None

    upstream_keys: ClassVar[dict[str, tuple[str, ...]]] = {
        "name": ("uniqueStreamName",),
        "type": ("streamType",),
    }

    @property
    def is_ultra_low_latency(self) -> bool:
        return self.type.upper() in ("ULL", "HESP") or self.name.upper().startswith("ULL")


class Sport(UpstreamModel):
    code: Annotated[str, BeforeValidator(lambda value: _required_text(value).upper())]
    name: Text = ""


class StreamLink(UpstreamModel):
    """Answer of stream/link: an encoded transaction reference (raw) or a player URL."""

    stream_link: RequiredText
    stream_type: Text = ""
    provider: Text = ""
    message: Text = ""


HLS_STREAM_TYPE = 2
THEOLIVE_STREAM_TYPE = 4


class LiveStream(UpstreamModel):
    """Answer of liveStream: StreamType 2 is an HLS URL, 4 a THEOlive channel id + token."""

    stream_link: RequiredText
    stream_type: RequiredNumber
    content_delivery_network: Text = ""
    transaction_id: Text = ""
    stream_token: Text = ""
    event_id: Text = ""
    message: Text = ""
