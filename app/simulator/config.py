"""Settings of the ONEPlatform simulator, and how they are read from the environment.

Environment variables (all optional)::

    SIM_CUSTOMER_UID            the one accepted customerUid        (demo-customer-uid)
    SIM_SERVER_IPS              whitelisted caller IPs, comma list  (127.0.0.1)
    SIM_EVENTS_MIN_INTERVAL_S   spacing of the two event methods    (10)
    SIM_LINK_RATE_PER_S         link calls per sliding second       (150)
    SIM_SEED                    seed of the generated schedule      (1)
    SIM_IP_COUNTRIES            extra geo entries, "1.2.3.4=US,10.1.0.0/16=US-NJ"
    SIM_HLS_URL                 liveStream's HLS link, ``{event_id}`` filled in  (the guide's)
    SIM_PLAYER_URL              stream/link's player link, before ``?tid=..&tk=..`` (the guide's)

The two link templates may be relative (``/_demo/hls/{event_id}/playlist.m3u8``): a
gateway in demo mode serves a real stream and player page there, and a page resolves
the link against its own origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

_Num = TypeVar("_Num", int, float)

DEFAULT_IP_COUNTRIES: tuple[tuple[str, str], ...] = (
    ("127.0.0.0/8", "GB"),
    ("::1/128", "GB"),
    ("10.0.0.0/8", "US-NJ"),
    ("192.0.2.0/24", "FR"),
    ("198.51.100.0/24", "DE"),
    ("203.0.113.0/24", "US-NY"),
)


HLS_URL = "https://dev.cdn.video.igame.media/abr/{event_id}/playlist.m3u8"
PLAYER_URL = "https://player-test.igamemedia.com/liveplayerlegacy"
# What a gateway in demo mode serves itself (app/demo/routes.py).
DEMO_HLS_URL = "/_demo/hls/{event_id}/playlist.m3u8"
DEMO_PLAYER_URL = "/_demo/player/{event_id}"


class SimulatorConfigError(ValueError):
    """An environment variable of the simulator could not be read."""


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything the simulator is started with; limits can change later at run time."""

    customer_uid: str = "demo-customer-uid"
    server_ips: tuple[str, ...] = ("127.0.0.1",)
    events_min_interval_s: float = 10.0
    link_rate_per_s: int = 150
    seed: int = 1
    ip_countries: tuple[tuple[str, str], ...] = DEFAULT_IP_COUNTRIES
    hls_url: str = HLS_URL
    player_url: str = PLAYER_URL

    def hls_link(self, event_id: str) -> str:
        return self.hls_url.replace("{event_id}", event_id)

    def player_link(self, event_id: str, transaction_id: str, token: str) -> str:
        base = self.player_url.replace("{event_id}", event_id)
        return f"{base}?tid={transaction_id}&tk={token}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SimulatorConfig:
        """Read the ``SIM_*`` variables of ``env``; unset ones keep their defaults."""
        defaults = cls()
        server_ips = _split(env.get("SIM_SERVER_IPS", ""))
        extra = tuple(_pair(item) for item in _split(env.get("SIM_IP_COUNTRIES", "")))
        return cls(
            customer_uid=env.get("SIM_CUSTOMER_UID", "").strip() or defaults.customer_uid,
            server_ips=server_ips or defaults.server_ips,
            events_min_interval_s=_number(
                env, "SIM_EVENTS_MIN_INTERVAL_S", defaults.events_min_interval_s, float
            ),
            link_rate_per_s=_number(env, "SIM_LINK_RATE_PER_S", defaults.link_rate_per_s, int),
            seed=_number(env, "SIM_SEED", defaults.seed, int),
            ip_countries=defaults.ip_countries + extra,
            hls_url=env.get("SIM_HLS_URL", "").strip() or defaults.hls_url,
            player_url=env.get("SIM_PLAYER_URL", "").strip() or defaults.player_url,
        )


def _split(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _pair(item: str) -> tuple[str, str]:
    network, sep, country = item.partition("=")
    if not sep or not network.strip() or not country.strip():
        raise SimulatorConfigError(f"SIM_IP_COUNTRIES entry {item!r} is not NETWORK=COUNTRY")
    return network.strip(), country.strip()


def _number(env: Mapping[str, str], name: str, default: _Num, kind: type[_Num]) -> _Num:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise SimulatorConfigError(f"{name}={raw!r} is not a number") from exc
    if value < 0:
        raise SimulatorConfigError(f"{name} must not be negative")
    return value
