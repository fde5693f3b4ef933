"""The play ladder: parsing the settings, and which steps one event gets."""

from __future__ import annotations

import pytest

from app.links.ladder import DEFAULT_LADDERS, LadderError, PlayStep, candidates, parse_ladder

ULL_RAW = PlayStep("ULL", "raw")
HLS_RAW = PlayStep("HLS", "raw")
HLS_PLAYER = PlayStep("HLS", "player")
WEB = (ULL_RAW, HLS_RAW, HLS_PLAYER)


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("ULL:raw,HLS:raw,HLS:player", WEB),
        ("HLS:raw", (HLS_RAW,)),
        (" HLS : player , ULL:raw ", (HLS_PLAYER, ULL_RAW)),
        ("HLS-EN:raw", (PlayStep("HLS-EN", "raw"),)),
    ],
    ids=["web-default", "one-step", "spaces", "other-stream-name"],
)
def test_ladders_parse(text: str, steps: tuple[PlayStep, ...]) -> None:
    assert parse_ladder(text) == steps


@pytest.mark.parametrize(
    "text",
    ["", "HLS", "HLS:hls", ":raw", "HLS:raw,,ULL:raw", "HLS:raw,HLS:raw", "HLS:RAW"],
    ids=["empty", "no-kind", "unknown-kind", "no-stream", "empty-step", "twice", "kind-case"],
)
def test_malformed_ladders_are_refused(text: str) -> None:
    with pytest.raises(LadderError):
        parse_ladder(text)


def test_every_default_ladder_parses_and_app_is_hls_raw() -> None:
    assert parse_ladder(DEFAULT_LADDERS["app"]) == (HLS_RAW,)
    for device in ("web", "mobile", "tablet", "tv"):
        assert parse_ladder(DEFAULT_LADDERS[device]) == WEB


@pytest.mark.parametrize(
    ("ull", "stream_names", "expected"),
    [
        (True, ["HLS", "ULL"], WEB),
        (False, ["HLS", "ULL"], (HLS_RAW, HLS_PLAYER)),
        (True, ["HLS"], (HLS_RAW, HLS_PLAYER)),
        (True, ["hls", "ull"], WEB),
        (True, None, WEB),
        (False, None, (HLS_RAW, HLS_PLAYER)),
        (True, [], (HLS_RAW, HLS_PLAYER)),
    ],
    ids=[
        "ull-player-ull-event",
        "no-ull-player",
        "event-without-ull",
        "names-any-case",
        "streams-unknown-ull",
        "streams-unknown-no-ull",
        "no-streams",
    ],
)
def test_candidates(
    ull: bool, stream_names: list[str] | None, expected: tuple[PlayStep, ...]
) -> None:
    assert candidates(WEB, ull=ull, stream_names=stream_names) == expected
