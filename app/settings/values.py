"""How a setting's environment text becomes its value: comma lists, CIDR networks,
``host:port`` pairs, origins, Redis URLs, play ladders and claim rules, and ``NAME=``
(as a ``.env`` template leaves it) as unset. An error says what was expected and never
echoes the value: a secret pasted into the wrong setting stays out of the message.
"""

from __future__ import annotations

import ipaddress
import re

from app.links.ladder import LadderError, parse_ladder
from app.watch.claims import ClaimRuleError, parse_claim_rules

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_ORIGIN = re.compile(
    r"https?://(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+(?::[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?"
)


def comma_list(value: object) -> object:
    """Comma-separated environment values become lists; blanks are dropped."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def blank_is_unset(value: object) -> object:
    """``NAME=`` (as a .env template leaves it) means unset, not an empty value."""
    return None if isinstance(value, str) and not value.strip() else value


def origins(value: list[str]) -> list[str]:
    for origin in value:
        if not _ORIGIN.fullmatch(origin):
            raise ValueError("expected a comma list of origins (https://host[:port])")
    return value


def networks(value: object) -> object:
    value = comma_list(value)
    if not isinstance(value, list):
        return value
    try:
        return [ipaddress.ip_network(str(item), strict=False) for item in value]
    except ValueError:
        # ipaddress quotes the input; a secret pasted here must not be printed
        raise ValueError("expected a comma list of CIDR networks") from None


def redis_url(value: str | None) -> str | None:
    if value is not None and not value.lower().startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("expected a redis://, rediss:// or unix:// URL")
    return value


def sentinels(value: object) -> object:
    value = comma_list(value)
    if not isinstance(value, list):
        return value
    parsed: list[tuple[str, int]] = []
    for item in value:
        if isinstance(item, tuple | list):
            parsed.append((str(item[0]), int(item[1])))
            continue
        host, _, port = str(item).rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected a comma list of host:port")
        parsed.append((host.strip("[]"), int(port)))
    return parsed


def lower_hosts(value: list[str]) -> list[str]:
    return [host.lower() for host in value]


def ladder(value: str) -> str:
    try:
        parse_ladder(value)
    except LadderError as exc:
        raise ValueError(str(exc)) from None
    return value


def claim_rules(value: str) -> str:
    try:
        parse_claim_rules(value)
    except ClaimRuleError as exc:
        raise ValueError(str(exc)) from None
    return value
