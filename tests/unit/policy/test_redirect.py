from __future__ import annotations

import pytest

from app.policy.redirect import MAX_URL_LENGTH, RedirectReason, RedirectVerdict, redirect_verdict

HOSTS = ("good.com", "*.cdn.example.com", "xn--bcher-kva.de", "[::1]", "10.0.0.1")
DEFAULT = "https://operator.example/after-stream"

A = RedirectReason.ACCEPTED
I = RedirectReason.INVALID  # noqa: E741
N = RedirectReason.HOST_NOT_ALLOWED

# id, url, reason (accepted URLs come back unchanged)
LISTED: list[tuple[str, str, RedirectReason]] = [
    ("exact-host", "https://good.com/after?x=1#top", A),
    ("http-allowed", "http://good.com/", A),
    ("upper-case-host", "https://GOOD.COM/path", A),
    ("upper-case-scheme", "HTTPS://good.com/", A),
    ("with-port", "https://good.com:8443/x", A),
    ("trailing-dot-host", "https://good.com./x", A),
    ("no-path", "https://good.com", A),
    ("wildcard-subdomain", "https://a.cdn.example.com/x", A),
    ("wildcard-deep-subdomain", "https://a.b.cdn.example.com/x", A),
    ("wildcard-not-apex", "https://cdn.example.com/x", N),
    ("wildcard-suffix-trick", "https://evilcdn.example.com/x", N),
    ("subdomain-of-exact-not-allowed", "https://www.good.com/", N),
    ("suffix-trick", "https://good.com.evil.com/", N),
    ("prefix-trick", "https://evilgood.com/", N),
    ("userinfo-trick", "https://good.com@evil.com/", I),
    ("userinfo-with-password", "https://user:pw@good.com/", I),
    ("encoded-at-in-userinfo", "https://good.com%40evil.com@evil.com/", I),
    ("backslash-at-trick", "https://evil.com\\@good.com/", I),
    ("backslash-path", "https://good.com\\evil.com", I),
    ("backslash-scheme", "https:\\\\evil.com", I),
    ("fragment-at-trick", "https://evil.com#@good.com", N),
    ("query-at-trick", "https://evil.com?@good.com", N),
    ("other-host", "https://evil.com/", N),
    ("protocol-relative", "//evil.com/", I),
    ("relative-path", "/after", I),
    ("single-slash-scheme", "https:/evil.com", I),
    ("no-slash-scheme", "https:evil.com", I),
    ("triple-slash", "https:///evil.com", I),
    ("javascript", "javascript:alert(1)//good.com", I),
    ("data-uri", "data:text/html,<script>alert(1)</script>", I),
    ("ftp", "ftp://good.com/", I),
    ("space-in-url", "https://good.com/a b", I),
    ("leading-space", " https://good.com/", I),
    ("tab-in-host", "https://go\tod.com/", I),
    ("crlf-injection", "https://good.com/\r\nSet-Cookie:x=1", I),
    ("lf-only", "https://good.com/\n", I),
    ("nul", "https://good.com/\x00", I),
    ("del", "https://good.com/\x7f", I),
    ("zero-width-space", "https://good.com\u200b.evil.com/", I),
    ("rtl-override", "https://good.com/\u202e", I),
    ("percent-encoded-host", "https://%67ood.com/", I),
    ("encoded-nul-host", "https://good.com%00.evil.com/", I),
    ("bad-port", "https://good.com:99999/", I),
    ("non-numeric-port", "https://good.com:http/", I),
    ("cyrillic-lookalike", "https://g\u043e\u043ed.com/", N),
    ("fullwidth-dot", "https://good\uff0ecom.evil.com/", N),
    ("fullwidth-solidus", "https://evil.com\uff0f.good.com/", I),
    ("non-ascii-path", "https://good.com/caf\u00e9", I),
    ("underscore-label", "https://a_b.cdn.example.com/", A),
    ("empty-label", "https://good..com/", I),
    ("ipv6-listed", "https://[::1]:8080/x", A),
    ("ipv6-listed-long-form", "https://[0:0::1]/x", A),
    ("ipv6-other", "https://[::2]/x", N),
    ("ipv6-zone-id", "https://[fe80::1%25eth0]/", I),
    ("ipv4-listed", "http://10.0.0.1/x", A),
    ("ipv4-other", "http://10.0.0.2/x", N),
    ("too-long", "https://good.com/" + "a" * (MAX_URL_LENGTH - 16), I),
    ("at-limit", "https://good.com/" + "a" * (MAX_URL_LENGTH - 17), A),
]


@pytest.mark.parametrize(
    ("url", "reason"), [pytest.param(*case[1:], id=case[0]) for case in LISTED]
)
def test_with_allowed_hosts(url: str, reason: RedirectReason) -> None:
    verdict = redirect_verdict(url, default=DEFAULT, allowed_hosts=HOSTS)
    expected_url = url if reason is RedirectReason.ACCEPTED else None
    assert verdict == RedirectVerdict(url=expected_url, reason=reason)
    assert verdict.allowed is (reason is RedirectReason.ACCEPTED)


# With no allow list any well-formed absolute http(s) URL passes; the rest do not.
OPEN: list[tuple[str, str, RedirectReason]] = [
    ("any-host", "https://anywhere.example/x", A),
    ("ip-literal", "http://192.0.2.1:8080/", A),
    ("userinfo-still-refused", "https://good.com@evil.com/", I),
    ("backslash-still-refused", "https://evil.com\\@good.com/", I),
    ("crlf-still-refused", "https://good.com/%0d%0a\r\n", I),
    ("scheme-still-refused", "javascript:alert(1)", I),
    ("unicode-host-refused", "https://b\u00fccher.de/", N),
]


@pytest.mark.parametrize(("url", "reason"), [pytest.param(*case[1:], id=case[0]) for case in OPEN])
def test_without_allowed_hosts(url: str, reason: RedirectReason) -> None:
    verdict = redirect_verdict(url, default=None, allowed_hosts=())
    assert verdict.reason is reason
    assert verdict.url == (url if reason is RedirectReason.ACCEPTED else None)


@pytest.mark.parametrize(
    ("url", "default", "expected"),
    [
        pytest.param(None, DEFAULT, RedirectVerdict(DEFAULT, RedirectReason.DEFAULT), id="none"),
        pytest.param("", DEFAULT, RedirectVerdict(DEFAULT, RedirectReason.DEFAULT), id="empty"),
        pytest.param("  ", DEFAULT, RedirectVerdict(DEFAULT, RedirectReason.DEFAULT), id="blank"),
        pytest.param(None, None, RedirectVerdict(None, RedirectReason.MISSING), id="no-default"),
        pytest.param(
            "https://evil.com/", DEFAULT, RedirectVerdict(None, N), id="bad-url-not-defaulted"
        ),
    ],
)
def test_missing_url_falls_back_to_default(
    url: str | None, default: str | None, expected: RedirectVerdict
) -> None:
    assert redirect_verdict(url, default=default, allowed_hosts=HOSTS) == expected


def test_unicode_host_listed_as_punycode_comes_back_as_punycode() -> None:
    verdict = redirect_verdict("https://b\u00fccher.de/x?q=1", default=None, allowed_hosts=HOSTS)
    assert verdict == RedirectVerdict("https://xn--bcher-kva.de/x?q=1", A)


def test_punycode_host_listed() -> None:
    url = "https://xn--bcher-kva.de/x"
    assert redirect_verdict(url, default=None, allowed_hosts=HOSTS) == RedirectVerdict(url, A)


def test_unicode_host_does_not_match_a_wildcard() -> None:
    verdict = redirect_verdict("https://\u00fc.cdn.example.com/", default=None, allowed_hosts=HOSTS)
    assert verdict.reason is N


def test_allow_list_entries_are_compared_case_insensitively() -> None:
    verdict = redirect_verdict("https://good.com/", default=None, allowed_hosts=(" Good.COM ",))
    assert verdict.reason is A
