"""Whether a viewer may be sent on to a caller-supplied URL after the stream.

A redirect target comes from the client, so it is the classic open-redirect hole. A
URL is accepted only when it is plainly what it looks like:

- absolute ``http``/``https`` with ``scheme://`` spelled out, and a host;
- no userinfo (``user:pw@host``), no backslash, no whitespace or control characters
  anywhere (browsers silently drop tabs and newlines, ``urlsplit`` too), no more than
  2048 characters, ASCII only outside the host;
- a host of ASCII letters, digits, ``-`` and ``_`` (or an IP literal); a Unicode host is
  accepted only when its IDNA (punycode) form is an exact entry of the allow list, and
  the verdict then carries the punycode URL, so the browser goes where we checked;
- with a non-empty ``allowed_hosts``, a host equal to an entry or, for an entry
  ``*.example.com``, a strict subdomain of ``example.com``; case-insensitive.

A missing URL falls back to the configured default (trusted configuration, returned
as is); an invalid one is refused, not replaced: the caller asked for something else.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import SplitResult, urlsplit, urlunsplit

MAX_URL_LENGTH = 2048

_SCHEMES = ("http", "https")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


class RedirectReason(StrEnum):
    ACCEPTED = "accepted"
    DEFAULT = "default"
    MISSING = "missing"
    INVALID = "invalid"
    HOST_NOT_ALLOWED = "host_not_allowed"


@dataclass(frozen=True, slots=True)
class RedirectVerdict:
    """``url`` is where to send the viewer, or None when the redirect is refused."""

    url: str | None
    reason: RedirectReason

    @property
    def allowed(self) -> bool:
        return self.url is not None


def _refused(reason: RedirectReason) -> RedirectVerdict:
    return RedirectVerdict(url=None, reason=reason)


def _has_forbidden_character(url: str) -> bool:
    """Backslashes, whitespace, control and format characters (Unicode ones too)."""
    for char in url:
        if char == "\\" or char.isspace():
            return True
        if unicodedata.category(char)[0] in "CZ":  # Cc, Cf, Cs, Co, Cn, Zs, Zl, Zp
            return True
    return False


def _valid_ascii_host(host: str) -> bool:
    if "%" in host:  # percent-escapes, IPv6 zone ids
        return False
    if ":" in host:  # an IPv6 literal (urlsplit has taken the brackets off)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    labels = host.split(".")
    return len(host) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


def _canonical_host(host: str) -> str:
    """Lower case, no trailing dot; IPv6 literals unbracketed and compressed."""
    host = host.strip().lower().removesuffix(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            return host
    return host


def _host_allowed(host: str, entries: Sequence[str]) -> bool:
    for raw in entries:
        entry = _canonical_host(raw)
        if entry.startswith("*."):
            suffix = entry[1:]  # ".example.com"
            if host.endswith(suffix) and len(host) > len(suffix):
                return True
        elif entry and host == entry:
            return True
    return False


def _punycode(host: str) -> str | None:
    try:
        encoded = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    return encoded if _valid_ascii_host(encoded) else None


def _with_host(parts: SplitResult, host: str) -> str:
    port = parts.port
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _judge(url: str, allowed_hosts: Sequence[str]) -> RedirectVerdict:
    if len(url) > MAX_URL_LENGTH or _has_forbidden_character(url):
        return _refused(RedirectReason.INVALID)
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return _refused(RedirectReason.INVALID)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES or url[: len(scheme) + 3].lower() != f"{scheme}://":
        return _refused(RedirectReason.INVALID)
    if "@" in parts.netloc or not parts.hostname:
        return _refused(RedirectReason.INVALID)
    if not (parts.path + parts.query + parts.fragment).isascii():
        return _refused(RedirectReason.INVALID)

    host = parts.hostname.removesuffix(".")  # already lower-cased by urlsplit
    if host.isascii():
        if not _valid_ascii_host(host):
            return _refused(RedirectReason.INVALID)
        host = _canonical_host(host)
        if allowed_hosts and not _host_allowed(host, allowed_hosts):
            return _refused(RedirectReason.HOST_NOT_ALLOWED)
        return RedirectVerdict(url=url, reason=RedirectReason.ACCEPTED)

    # A Unicode host: only the punycode spelling of an exact entry gets through.
    encoded = _punycode(host)
    if encoded is None:
        return _refused(RedirectReason.INVALID)
    exact = [entry for entry in allowed_hosts if not entry.strip().startswith("*")]
    if not _host_allowed(encoded, exact):
        return _refused(RedirectReason.HOST_NOT_ALLOWED)
    return RedirectVerdict(url=_with_host(parts, encoded), reason=RedirectReason.ACCEPTED)


def redirect_verdict(
    url: str | None, *, default: str | None, allowed_hosts: Sequence[str]
) -> RedirectVerdict:
    """Where to send the viewer: ``url`` if it is safe, the default if there is none."""
    if url is None or not url.strip():
        if default is None:
            return _refused(RedirectReason.MISSING)
        return RedirectVerdict(url=default, reason=RedirectReason.DEFAULT)
    return _judge(url, allowed_hosts)
