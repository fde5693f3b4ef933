from __future__ import annotations

import pytest

from app.simulator.__main__ import parse_args
from app.simulator.config import DEFAULT_IP_COUNTRIES, SimulatorConfig, SimulatorConfigError


def test_defaults_when_nothing_is_set() -> None:
    config = SimulatorConfig.from_env({})
    assert config == SimulatorConfig()
    assert config.customer_uid == "demo-customer-uid"
    assert config.server_ips == ("127.0.0.1",)
    assert config.events_min_interval_s == 10.0
    assert config.link_rate_per_s == 150
    assert config.seed == 1
    assert config.ip_countries == DEFAULT_IP_COUNTRIES


def test_every_variable_is_read() -> None:
    config = SimulatorConfig.from_env(
        {
            "SIM_CUSTOMER_UID": " operator-uid ",
            "SIM_SERVER_IPS": "10.0.0.1, 10.0.0.2,,",
            "SIM_EVENTS_MIN_INTERVAL_S": "0.5",
            "SIM_LINK_RATE_PER_S": "20",
            "SIM_SEED": "42",
            "SIM_IP_COUNTRIES": "1.2.3.4=US, 5.6.0.0/16=us-nj",
            "SIM_HLS_URL": "/_demo/hls/{event_id}/playlist.m3u8",
            "SIM_PLAYER_URL": "http://lb.example/_demo/player/{event_id}",
            "UNRELATED": "x",
        }
    )
    assert config.customer_uid == "operator-uid"
    assert config.server_ips == ("10.0.0.1", "10.0.0.2")
    assert config.events_min_interval_s == 0.5
    assert config.link_rate_per_s == 20
    assert config.seed == 42
    assert config.ip_countries[-2:] == (("1.2.3.4", "US"), ("5.6.0.0/16", "us-nj"))
    assert config.hls_link("E1") == "/_demo/hls/E1/playlist.m3u8"
    assert config.player_link("E1", "42", "tok") == (
        "http://lb.example/_demo/player/E1?tid=42&tk=tok"
    )


def test_default_links_are_the_guides() -> None:
    config = SimulatorConfig()
    assert config.hls_link("E1") == "https://dev.cdn.video.igame.media/abr/E1/playlist.m3u8"
    assert config.player_link("E1", "42", "tok") == (
        "https://player-test.igamemedia.com/liveplayerlegacy?tid=42&tk=tok"
    )


@pytest.mark.parametrize(
    "env",
    [
        {"SIM_LINK_RATE_PER_S": "fast"},
        {"SIM_EVENTS_MIN_INTERVAL_S": "-1"},
        {"SIM_SEED": "1.5"},
        {"SIM_IP_COUNTRIES": "1.2.3.4"},
    ],
    ids=["rate-not-a-number", "negative-interval", "seed-not-int", "geo-entry-without-code"],
)
def test_unreadable_values_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(SimulatorConfigError):
        SimulatorConfig.from_env(env)


def test_command_line() -> None:
    args = parse_args(["--host", "0.0.0.0", "--port", "9000"])
    assert (args.host, args.port, args.log_level) == ("0.0.0.0", 9000, "warning")
    defaults = parse_args([])
    assert (defaults.host, defaults.port) == ("127.0.0.1", 8081)
