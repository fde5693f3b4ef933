"""The local rules, table-driven: the event's status, the redirect URL, the stream's
existence and the geo lists decide without the store or the upstream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import ip_address

import pytest

from app.errors import GatewayError
from app.links.ladder import PlayStep
from app.links.rules import Candidate, Viewer, check_step, event_refusal, find_stream
from app.policy.geo import ViewerLocation
from tests.unit.links.fakes import EPOCH, REDIRECT, RULES, VIEWER, event, stream

HLS = PlayStep("HLS", "raw")
STARTED = datetime.fromtimestamp(EPOCH, UTC) - timedelta(minutes=5)
LATER = datetime.fromtimestamp(EPOCH, UTC) + timedelta(hours=2)


def viewer_in(country: str | None, subdivision: str | None = None) -> Viewer:
    location = ViewerLocation(country, subdivision, "header" if country else "unknown")
    return Viewer(ip_address("198.51.100.7"), location)


# --- status -------------------------------------------------------------------------


def test_an_open_event_proceeds() -> None:
    assert event_refusal("E-1", event(status="O"), EPOCH) is None


@pytest.mark.parametrize(
    ("status", "http_status", "code", "operation_code"),
    [
        ("P", 409, "event_pending", 402),
        ("C", 410, "event_closed", 403),
        ("V", 410, "event_cancelled", 404),
    ],
    ids=["pending", "closed", "void"],
)
def test_events_not_in_progress_are_refused(
    status: str, http_status: int, code: str, operation_code: int
) -> None:
    refusal = event_refusal("E-1", event(status=status, startTime=LATER.isoformat()), EPOCH)
    assert refusal is not None
    assert (refusal.status, refusal.code, refusal.operation_code) == (
        http_status,
        code,
        operation_code,
    )


def test_a_pending_event_names_its_start() -> None:
    refusal = event_refusal("E-1", event(status="P", startTime=LATER.isoformat()), EPOCH)
    assert refusal is not None
    assert refusal.extra == {
        "eventId": "E-1",
        "startTime": LATER.isoformat().replace("+00:00", "Z"),
    }


def test_a_pending_event_past_its_start_proceeds() -> None:
    """The cached status is stale: the upstream has the last word."""
    assert event_refusal("E-1", event(status="P", startTime=STARTED.isoformat()), EPOCH) is None


def test_an_event_with_an_unknown_status_is_not_found() -> None:
    refusal = event_refusal("E-1", event(status="X"), EPOCH)
    assert refusal is not None
    assert (refusal.status, refusal.code) == (404, "event_not_found")


# --- redirect, stream, geo ------------------------------------------------------------


def test_a_step_that_passes_every_rule_is_a_candidate() -> None:
    hls = stream("HLS")
    checked = check_step(RULES, event(), (hls,), HLS, VIEWER, None)
    assert checked == Candidate(HLS, hls, REDIRECT)


@pytest.mark.parametrize(
    "redirect_url",
    ["https://elsewhere.example/", "javascript:alert(1)", "/relative"],
    ids=["host-not-allowed", "not-http", "relative"],
)
def test_a_refused_redirect_url(redirect_url: str) -> None:
    checked = check_step(RULES, event(), (stream("HLS"),), HLS, VIEWER, redirect_url)
    assert isinstance(checked, GatewayError)
    assert (checked.status, checked.code, checked.operation_code) == (
        422,
        "invalid_redirect_url",
        305,
    )


def test_an_allowed_redirect_url_is_used() -> None:
    url = "https://operator.example/other"
    checked = check_step(RULES, event(), (stream("HLS"),), HLS, VIEWER, url)
    assert isinstance(checked, Candidate)
    assert checked.redirect == url


def test_an_unknown_stream_is_refused() -> None:
    checked = check_step(RULES, event(), (stream("ULL"),), HLS, VIEWER, None)
    assert isinstance(checked, GatewayError)
    assert (checked.status, checked.code, checked.operation_code) == (404, "stream_not_found", 304)


def test_stream_names_match_whatever_their_case() -> None:
    hls = stream("HLS")
    checked = check_step(RULES, event(), (hls,), PlayStep("hls", "raw"), VIEWER, None)
    assert isinstance(checked, Candidate)
    assert checked.stream is hls


def test_an_exact_name_wins_over_one_differing_in_case() -> None:
    upper, lower = stream("HLS"), stream("hls")
    assert find_stream((upper, lower), "hls") is lower
    assert find_stream((upper, lower), "Hls") is upper


@pytest.mark.parametrize(
    ("event_geo", "stream_geo", "country", "allowed"),
    [
        ({"geoAllow": "GB,IE"}, {}, "GB", True),
        ({"geoAllow": "IE"}, {}, "GB", False),
        ({"geoBlock": "GB"}, {}, "GB", False),
        ({"geoBlock": "FR"}, {}, "GB", True),
        ({}, {"geoCountryAllow": "GB"}, "GB", True),
        ({}, {"geoCountryAllow": "IE"}, "GB", False),
        ({}, {"geoCountryBlock": "GB"}, "GB", False),
        ({"geoAllow": "GB"}, {"geoCountryBlock": "GB"}, "GB", False),
        ({}, {}, "GB", True),
        ({"geoAllow": "GB"}, {}, None, False),
    ],
    ids=[
        "event-allows",
        "event-allows-others",
        "event-blocks",
        "event-blocks-others",
        "stream-allows",
        "stream-allows-others",
        "stream-blocks",
        "event-allows-stream-blocks",
        "no-lists",
        "unknown-country",
    ],
)
def test_geo_lists(
    event_geo: dict[str, str], stream_geo: dict[str, str], country: str | None, allowed: bool
) -> None:
    checked = check_step(
        RULES, event(**event_geo), (stream("HLS", **stream_geo),), HLS, viewer_in(country), None
    )
    if allowed:
        assert isinstance(checked, Candidate)
    else:
        assert isinstance(checked, GatewayError)
        assert (checked.status, checked.code, checked.operation_code) == (403, "geo_blocked", 306)
        assert checked.extra["country"] == country


def test_the_redirect_is_checked_before_the_stream() -> None:
    checked = check_step(RULES, event(), (), HLS, VIEWER, "https://elsewhere.example/")
    assert isinstance(checked, GatewayError)
    assert checked.code == "invalid_redirect_url"
