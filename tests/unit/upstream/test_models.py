"""The payload models against the guide's quirks (table-driven), and properties: no
JSON-shaped input makes a model raise anything but ``ValidationError``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.upstream.models import (
    HLS_STREAM_TYPE,
    THEOLIVE_STREAM_TYPE,
    Event,
    LiveStream,
    Sport,
    Stream,
    StreamLink,
    UpstreamModel,
    parse_upstream_time,
)

# The guide's own example event, its malformed times included.
GUIDE_EVENT: dict[str, object] = {
    "eventId": "013WOFT640-32325",
    "locationCode": "013WOFT640",
    "locationName": "Dutch Eredivisie 2015",
    "sportCode": "FT",
    "eventStatusCode": "P",
    "eventNumber": "32325",
    "title": "NEC v FC Twente",
    "startTime": "2020-11-09T:00:00:00",
    "estimatedEndTime": "2020-11-09T:02:00:00",
    "geoAllow": "GB,IE",
    "geoBlock": "",
}

NOV_9_10H = datetime(2020, 11, 9, 10, 0, tzinfo=UTC)

# --- times ----------------------------------------------------------------------

TIMES: list[tuple[str, object, datetime | None]] = [
    ("guide-malformed-T-colon", "2020-11-09T:00:00:00", None),
    ("z-suffix", "2020-11-09T10:00:00Z", NOV_9_10H),
    ("lowercase-z", "2020-11-09T10:00:00z", NOV_9_10H),
    ("colon-offset-zero", "2020-11-09T10:00:00+00:00", NOV_9_10H),
    ("compact-offset-zero", "2020-11-09T10:00:00+0000", NOV_9_10H),
    ("compact-offset-plus-one", "2020-11-09T11:00:00+0100", NOV_9_10H),
    ("negative-offset", "2020-11-09T05:00:00-05:00", NOV_9_10H),
    ("no-zone-is-utc", "2020-11-09T10:00:00", NOV_9_10H),
    ("three-digit-fraction", "2020-11-09T10:00:00.000", NOV_9_10H),
    (
        "seven-digit-fraction",
        "2020-11-09T10:00:00.1234567",
        NOV_9_10H.replace(microsecond=123456),
    ),
    (
        "seven-digit-fraction-and-z",
        "2020-11-09T10:00:00.0000000Z",
        NOV_9_10H,
    ),
    (
        "seven-digit-fraction-compact-offset",
        "2020-11-09T10:00:00.5000000+0000",
        NOV_9_10H.replace(microsecond=500000),
    ),
    ("surrounding-blanks", "  2020-11-09T10:00:00Z ", NOV_9_10H),
    ("empty", "", None),
    ("blank", "   ", None),
    ("none", None, None),
    ("number", 1604916000, None),
    ("words", "tomorrow", None),
    ("just-z", "Z", None),
    ("hour-25", "2020-11-09T25:00:00", None),
    ("before-datetime-min-in-utc", "0001-01-01T00:00:00+01:00", None),
    ("after-datetime-max-in-utc", "9999-12-31T23:59:59-01:00", None),
    (
        "aware-datetime-object",
        datetime(2020, 11, 9, 11, tzinfo=timezone(timedelta(hours=1))),
        NOV_9_10H,
    ),
    ("naive-datetime-object", datetime(2020, 11, 9, 10), NOV_9_10H),
]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in TIMES], ids=[c[0] for c in TIMES])
def test_upstream_times(raw: object, expected: datetime | None) -> None:
    parsed = parse_upstream_time(raw)
    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() == timedelta(0)


def test_the_guide_example_event_is_kept_with_unreadable_times() -> None:
    event = Event.model_validate(GUIDE_EVENT)
    assert event.event_id == "013WOFT640-32325"
    assert event.title == "NEC v FC Twente"
    assert event.start_time is None
    assert event.estimated_end_time is None
    assert event.geo_allow == ("GB", "IE")
    assert event.geo_block == ()
    assert event.event_status_code == "P"


# --- geo lists --------------------------------------------------------------------

GEO: list[tuple[str, object, tuple[str, ...]]] = [
    ("comma-no-spaces", "GB,IE", ("GB", "IE")),
    ("comma-and-space-uk-is-gb", "UK, US", ("GB", "US")),
    ("lowercase", "gb,ie", ("GB", "IE")),
    ("lowercase-uk", "uk", ("GB",)),
    ("duplicates-and-uk-alias-collapse", "GB, UK, gb", ("GB",)),
    ("subdivisions-kept-whole", "US-NJ,US-PA", ("US-NJ", "US-PA")),
    ("subdivision-lowercase", "us-nj", ("US-NJ",)),
    ("mixed", "GB, IE, US-NJ", ("GB", "IE", "US-NJ")),
    ("stray-commas-and-blanks", " GB ,, IE , ", ("GB", "IE")),
    ("empty-string", "", ()),
    ("null", None, ()),
    ("unreadable-entries-dropped", "GBR, 12, G, FR", ("FR",)),
    ("json-list", ["uk", "US"], ("GB", "US")),
    ("number", 44, ()),
]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in GEO], ids=[c[0] for c in GEO])
def test_geo_lists(raw: object, expected: tuple[str, ...]) -> None:
    event = Event.model_validate({"eventId": "E-1", "geoAllow": raw, "geoBlock": raw})
    stream = Stream.model_validate(
        {"uniqueStreamName": "HLS", "geoCountryAllow": raw, "geoCountryBlock": raw}
    )
    assert event.geo_allow == event.geo_block == expected
    assert stream.geo_country_allow == stream.geo_country_block == expected


# --- key casing -------------------------------------------------------------------

CASINGS: list[tuple[str, type[UpstreamModel], dict[str, object], str, object]] = [
    ("event-camel", Event, {"eventId": "E-1"}, "event_id", "E-1"),
    ("event-pascal", Event, {"EventId": "E-1", "Title": "A v B"}, "title", "A v B"),
    ("event-upper", Event, {"EVENTID": "E-1", "SPORTCODE": "FT"}, "sport_code", "FT"),
    ("event-lower", Event, {"eventid": "E-1", "geoallow": "UK"}, "geo_allow", ("GB",)),
    ("stream-camel", Stream, {"uniqueStreamName": "HLS"}, "name", "HLS"),
    ("stream-pascal", Stream, {"UniqueStreamName": "ULL", "StreamType": "ULL"}, "type", "ULL"),
    ("stream-lower", Stream, {"uniquestreamname": "HLS", "playerwidth": 640}, "player_width", 640),
    ("sport-pascal", Sport, {"Code": "HR", "Name": "Horse Racing"}, "name", "Horse Racing"),
    ("sport-camel", Sport, {"code": "hr", "name": "Horse Racing"}, "code", "HR"),
    ("link-camel", StreamLink, {"streamLink": "abc", "provider": "XVI"}, "provider", "XVI"),
    ("link-pascal", StreamLink, {"StreamLink": "abc", "Provider": "XVI"}, "stream_link", "abc"),
    ("live-pascal", LiveStream, {"StreamLink": "x", "StreamType": 2}, "stream_type", 2),
    ("live-camel", LiveStream, {"streamLink": "x", "streamType": 4}, "stream_type", 4),
]


@pytest.mark.parametrize(
    ("model", "data", "field", "expected"),
    [c[1:] for c in CASINGS],
    ids=[c[0] for c in CASINGS],
)
def test_keys_are_read_whatever_their_casing(
    model: type[UpstreamModel], data: dict[str, object], field: str, expected: object
) -> None:
    assert getattr(model.model_validate(data), field) == expected


# --- numbers and booleans as strings ------------------------------------------------

STREAM_VALUES: list[tuple[str, str, object, object]] = [
    ("int", "playerWidth", 640, 640),
    ("int-as-string", "playerWidth", "640", 640),
    ("int-as-padded-string", "videoBitRateKbps", " 500 ", 500),
    ("integral-float", "audioBitRateKbps", 22.0, 22),
    ("fractional-float", "audioBitRateKbps", 22.5, None),
    ("not-a-number", "streamWidth", "wide", None),
    ("empty-value", "streamHeight", "", None),
    ("bool-is-not-a-number", "streamHeight", True, None),
    ("bool", "fixedSize", True, True),
    ("bool-as-string", "controls", "false", False),
    ("bool-as-capital-string", "fullscreen", "True", True),
    ("bool-as-int", "fixedSize", 0, False),
    ("bool-unreadable", "fixedSize", "maybe", None),
    ("text-blank-is-none", "streamStretching", "  ", None),
]


@pytest.mark.parametrize(
    ("key", "raw", "expected"), [c[1:] for c in STREAM_VALUES], ids=[c[0] for c in STREAM_VALUES]
)
def test_stream_numbers_and_flags(key: str, raw: object, expected: object) -> None:
    stream = Stream.model_validate({"uniqueStreamName": "HLS", key: raw})
    attribute = {
        "playerWidth": "player_width",
        "videoBitRateKbps": "video_bit_rate_kbps",
        "audioBitRateKbps": "audio_bit_rate_kbps",
        "streamWidth": "stream_width",
        "streamHeight": "stream_height",
        "fixedSize": "fixed_size",
        "controls": "controls",
        "fullscreen": "fullscreen",
        "streamStretching": "stream_stretching",
    }[key]
    assert getattr(stream, attribute) == expected


def test_event_text_fields_accept_numbers() -> None:
    event = Event.model_validate({"eventId": 42, "eventNumber": 32325, "eventStatusCode": "o"})
    assert (event.event_id, event.event_number, event.event_status_code) == ("42", "32325", "O")


def test_live_stream_type_as_string() -> None:
    live = LiveStream.model_validate({"StreamLink": "u", "StreamType": "4"})
    assert live.stream_type == THEOLIVE_STREAM_TYPE


def test_the_guide_live_stream_examples() -> None:
    hls = LiveStream.model_validate(
        {
            "StreamLink": "https://dev.cdn.video.igame.media/abr/test1/playlist.m3u8",
            "StreamType": 2,
            "ContentDeliveryNetwork": "AAA",
            "TransactionId": "476022526",
            "StreamToken": "b05a5d55-231b-46e1-863d-d6cb096815b2",
            "EventId": "DEMO-20221023",
            "Message": "Success",
            "OperationCode": 200,
        }
    )
    assert hls.stream_type == HLS_STREAM_TYPE
    assert hls.stream_link.endswith("playlist.m3u8")
    assert hls.transaction_id == "476022526"
    ull = LiveStream.model_validate(
        {"StreamLink": "00r0s8gla5b1jg36npzeayfd1", "StreamType": 4, "StreamToken": "3bc0"}
    )
    assert (ull.stream_type, ull.stream_link, ull.stream_token) == (
        THEOLIVE_STREAM_TYPE,
        "00r0s8gla5b1jg36npzeayfd1",
        "3bc0",
    )


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [("ULL", "ULL", True), ("HLS", "HLS", False), ("ULL-2", "", True), ("X", "hesp", True)],
)
def test_ultra_low_latency_streams_are_recognised(name: str, kind: str, expected: bool) -> None:
    stream = Stream.model_validate({"uniqueStreamName": name, "streamType": kind})
    assert stream.is_ultra_low_latency is expected


# --- what makes an item unusable ------------------------------------------------------

UNUSABLE: list[tuple[str, type[UpstreamModel], object]] = [
    ("event-without-id", Event, {"title": "A v B"}),
    ("event-blank-id", Event, {"eventId": "  "}),
    ("event-null-id", Event, {"eventId": None}),
    ("event-not-an-object", Event, "E-1"),
    ("event-list", Event, [{"eventId": "E-1"}]),
    ("stream-without-name", Stream, {"streamType": "HLS"}),
    ("sport-without-code", Sport, {"Name": "Darts"}),
    ("link-without-link", StreamLink, {"streamLink": None, "operationCode": 200}),
    ("live-without-type", LiveStream, {"StreamLink": "x"}),
    ("live-type-not-a-number", LiveStream, {"StreamLink": "x", "StreamType": "HLS"}),
]


@pytest.mark.parametrize(("model", "data"), [c[1:] for c in UNUSABLE], ids=[c[0] for c in UNUSABLE])
def test_unusable_items_fail_validation(model: type[UpstreamModel], data: object) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(data)


def test_models_serialise_camel_case() -> None:
    event = Event.model_validate(GUIDE_EVENT)
    dumped = event.model_dump(mode="json")
    assert dumped["eventId"] == "013WOFT640-32325"
    assert dumped["geoAllow"] == ["GB", "IE"]
    assert Event.model_validate(dumped) == event


# --- properties ---------------------------------------------------------------------

KEYS = [
    "eventId", "EventId", "EVENTID", "title", "startTime", "StartTime", "estimatedEndTime",
    "geoAllow", "GeoBlock", "eventStatusCode", "eventNumber", "uniqueStreamName",
    "UniqueStreamName", "streamType", "StreamType", "playerWidth", "fixedSize",
    "geoCountryAllow", "geoCountryBlock", "videoBitRateKbps", "Code", "Name", "streamLink",
    "StreamLink", "StreamToken", "TransactionId", "operationCode", "message",
]  # fmt: skip

# Whole-minute offsets: ISO 8601 has no seconds in an offset.
OFFSETS = st.integers(-23 * 60, 23 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
# The whole range, with its two ends drawn often: there an offset moves the UTC instant
# out of what datetime can hold.
DATETIMES = st.one_of(
    st.datetimes(timezones=OFFSETS),
    st.datetimes(max_value=datetime(1, 1, 2), timezones=OFFSETS),
    st.datetimes(min_value=datetime(9999, 12, 30), timezones=OFFSETS),
)
TIME_TEXT = st.one_of(
    DATETIMES.map(lambda moment: moment.isoformat()),
    DATETIMES.map(lambda moment: moment.strftime("%Y-%m-%dT:%H:%M:%S")),
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}T[\d:.]{0,14}(Z|[+-]\d{2}:?\d{2})?\Z"),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["UK, US", "us-nj", "GB,IE", "", "2", "true", "ULL", "-RAW"]),
    TIME_TEXT,
)
JSONISH = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=6
        ),
    ),
    max_leaves=12,
)
OBJECTS = st.dictionaries(st.sampled_from(KEYS), JSONISH, max_size=12)
CODE = re.compile(r"\A[A-Z]{2}(-[A-Z0-9]{1,3})?\Z")


def _validate_or_reject(model: type[UpstreamModel], data: Any) -> UpstreamModel | None:
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


@pytest.mark.parametrize("model", [Event, Stream, Sport, StreamLink, LiveStream])
@settings(max_examples=60)
@given(data=st.one_of(OBJECTS, JSONISH))
def test_no_input_makes_a_model_raise_anything_but_validation_error(
    model: type[UpstreamModel], data: Any
) -> None:
    parsed = _validate_or_reject(model, data)
    if isinstance(parsed, Event):
        for moment in (parsed.start_time, parsed.estimated_end_time):
            assert moment is None or moment.utcoffset() == timedelta(0)
        for code in parsed.geo_allow + parsed.geo_block:
            assert CODE.match(code)
            assert code.partition("-")[0] != "UK"
        assert parsed.event_id
        assert parsed.event_id == parsed.event_id.strip()
    if isinstance(parsed, Stream):
        assert parsed.name
        for code in parsed.geo_country_allow + parsed.geo_country_block:
            assert CODE.match(code)


@given(raw=st.one_of(JSONISH, TIME_TEXT))
def test_times_parse_to_aware_utc_or_none(raw: object) -> None:
    parsed = parse_upstream_time(raw)
    assert parsed is None or parsed.utcoffset() == timedelta(0)


@given(moment=DATETIMES, style=st.sampled_from(["iso", "z", "compact", "seven", "naive"]))
def test_well_formed_times_round_trip(moment: datetime, style: str) -> None:
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        assert parse_upstream_time(moment.isoformat()) is None
        return
    assume(utc.year >= 1000)  # ISO 8601 needs four digits; strftime('%Y') gives fewer
    if style == "iso":
        text = moment.isoformat()
    elif style == "z":
        text = utc.replace(tzinfo=None).isoformat() + "Z"
    elif style == "compact":
        text = moment.strftime("%Y-%m-%dT%H:%M:%S.%f%z")
    elif style == "seven":
        text = utc.strftime("%Y-%m-%dT%H:%M:%S.%f") + "9+00:00"
    else:
        text = utc.replace(tzinfo=None).isoformat()
    assert parse_upstream_time(text) == utc
