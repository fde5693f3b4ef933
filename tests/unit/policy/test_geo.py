from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.policy.countries import parse_code_list
from app.policy.geo import GeoReason, GeoVerdict, ViewerLocation, geo_verdict

US_NJ = ViewerLocation("US", "US-NJ", "geoip")
US_NY = ViewerLocation("US", "US-NY", "geoip")
US_SOMEWHERE = ViewerLocation("US", None, "header")
GB = ViewerLocation("GB", None, "header")
GB_ENG = ViewerLocation("GB", "GB-ENG", "geoip")
IE = ViewerLocation("IE", None, "geoip")
FR = ViewerLocation("FR", None, "geoip")
UNKNOWN = ViewerLocation(None, None, "unknown")


@dataclass(frozen=True)
class Lists:
    event_allow: str = ""
    event_block: str = ""
    stream_allow: str = ""
    stream_block: str = ""
    unknown_allowed: bool = False


OK = GeoReason.ALLOWED
EB = GeoReason.EVENT_BLOCKED
ENA = GeoReason.EVENT_NOT_ALLOWED
SB = GeoReason.STREAM_BLOCKED
SNA = GeoReason.STREAM_NOT_ALLOWED
CU = GeoReason.COUNTRY_UNKNOWN

# The lists are written the way the upstream sends them and normalised with
# parse_code_list, as the models do: "UK" arrives as "GB".
CASES: list[tuple[str, ViewerLocation, Lists, GeoReason]] = [
    ("no-lists-anyone", FR, Lists(), OK),
    ("no-lists-unknown-viewer", UNKNOWN, Lists(), OK),
    ("event-allow-hit", GB, Lists(event_allow="GB,IE"), OK),
    ("event-allow-second-entry", IE, Lists(event_allow="GB,IE"), OK),
    ("event-allow-miss", FR, Lists(event_allow="GB,IE"), ENA),
    ("event-allow-uk-means-gb", GB, Lists(event_allow="UK"), OK),
    ("event-allow-lower-case-spaces", GB, Lists(event_allow=" gb , ie "), OK),
    ("event-block-uk-blocks-gb", GB, Lists(event_block="UK"), EB),
    ("event-block-hit", FR, Lists(event_block="FR"), EB),
    ("event-block-miss", GB, Lists(event_block="FR"), OK),
    ("block-beats-allow-same-list-pair", GB, Lists(event_allow="GB", event_block="GB"), EB),
    ("country-allow-covers-subdivision", US_NJ, Lists(event_allow="US"), OK),
    ("country-allow-covers-unknown-subdivision", US_SOMEWHERE, Lists(event_allow="US"), OK),
    ("country-block-covers-subdivision", US_NJ, Lists(event_block="US"), EB),
    ("subdivision-allow-hit", US_NJ, Lists(event_allow="US-NJ"), OK),
    ("subdivision-allow-other-state", US_NY, Lists(event_allow="US-NJ"), ENA),
    ("subdivision-allow-state-unknown", US_SOMEWHERE, Lists(event_allow="US-NJ"), ENA),
    ("subdivision-allow-among-countries", US_NJ, Lists(event_allow="GB,US-NJ"), OK),
    ("subdivision-block-hit", US_NJ, Lists(event_block="US-NJ"), EB),
    ("subdivision-block-other-state", US_NY, Lists(event_block="US-NJ"), OK),
    ("subdivision-block-state-unknown-blocks", US_SOMEWHERE, Lists(event_block="US-NJ"), EB),
    ("subdivision-block-other-country", GB, Lists(event_block="US-NJ"), OK),
    (
        "country-allow-subdivision-block",
        US_NJ,
        Lists(event_allow="US", event_block="US-NJ"),
        EB,
    ),
    (
        "country-allow-subdivision-block-other-state",
        US_NY,
        Lists(event_allow="US", event_block="US-NJ"),
        OK,
    ),
    ("gb-subdivision-allow", GB_ENG, Lists(event_allow="GB-ENG"), OK),
    ("uk-subdivision-alias-block", GB_ENG, Lists(event_block="UK-ENG"), EB),
    ("unknown-viewer-allow-list", UNKNOWN, Lists(event_allow="GB"), CU),
    (
        "unknown-viewer-allow-list-permitted",
        UNKNOWN,
        Lists(event_allow="GB", unknown_allowed=True),
        OK,
    ),
    ("unknown-viewer-not-blocked", UNKNOWN, Lists(event_block="GB,US-NJ"), OK),
    ("unknown-viewer-stream-allow", UNKNOWN, Lists(stream_allow="GB"), CU),
    ("stream-allow-hit", GB, Lists(stream_allow="UK, US"), OK),
    ("stream-allow-miss", FR, Lists(stream_allow="UK, US"), SNA),
    ("stream-block-guide-example", GB, Lists(stream_allow="UK, US", stream_block="GB, AT"), SB),
    ("stream-block-beats-event-allow", GB, Lists(event_allow="GB", stream_block="GB"), SB),
    ("event-block-beats-stream-allow", GB, Lists(event_block="GB", stream_allow="GB"), EB),
    ("event-checked-before-stream", FR, Lists(event_allow="GB", stream_block="FR"), ENA),
    ("event-ok-stream-not", IE, Lists(event_allow="GB,IE", stream_allow="GB"), SNA),
    ("both-allow", IE, Lists(event_allow="GB,IE", stream_allow="IE"), OK),
    ("unreadable-entries-dropped", GB, Lists(event_allow="G1,GB"), OK),
]


@pytest.mark.parametrize(
    ("viewer", "lists", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_geo_verdict(viewer: ViewerLocation, lists: Lists, reason: GeoReason) -> None:
    verdict = geo_verdict(
        viewer,
        event_allow=parse_code_list(lists.event_allow),
        event_block=parse_code_list(lists.event_block),
        stream_allow=parse_code_list(lists.stream_allow),
        stream_block=parse_code_list(lists.stream_block),
        unknown_allowed=lists.unknown_allowed,
    )
    assert verdict == GeoVerdict(allowed=reason is GeoReason.ALLOWED, reason=reason)


def test_unknown_allowed_does_not_admit_a_known_country_outside_the_list() -> None:
    verdict = geo_verdict(
        FR,
        event_allow=("GB",),
        event_block=(),
        stream_allow=(),
        stream_block=(),
        unknown_allowed=True,
    )
    assert verdict.reason == "event_not_allowed"
    assert not verdict.allowed
