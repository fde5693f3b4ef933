"""Claim rules: parsing WATCH_REQUIRE_CLAIMS, and which claims satisfy them."""

from __future__ import annotations

from typing import Any

import pytest

from app.watch.claims import ClaimRule, ClaimRuleError, first_unmet, parse_claim_rules


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        ("", ()),
        ("funded:true", (ClaimRule("funded", "true"),)),
        ("verified", (ClaimRule("verified"),)),
        (" funded : true , tier:gold ", (ClaimRule("funded", "true"), ClaimRule("tier", "gold"))),
        ("roles:viewer,kyc", (ClaimRule("roles", "viewer"), ClaimRule("kyc"))),
        ("https.x-y_z:1", (ClaimRule("https.x-y_z", "1"),)),
    ],
    ids=["none", "equals", "present", "spaces", "mixed", "name-chars"],
)
def test_rules_parse(text: str, rules: tuple[ClaimRule, ...]) -> None:
    assert parse_claim_rules(text) == rules


@pytest.mark.parametrize(
    "text",
    [":true", "funded:", "fun ded:true", "funded$:x"],
    ids=["no-name", "no-value", "space", "bad-char"],
)
def test_malformed_rules_are_refused(text: str) -> None:
    with pytest.raises(ClaimRuleError):
        parse_claim_rules(text)


FUNDED = ClaimRule("funded", "true")
VERIFIED = ClaimRule("verified")
VIEWER_ROLE = ClaimRule("roles", "viewer")
TIER_2 = ClaimRule("tier", "2")


@pytest.mark.parametrize(
    ("rules", "claims", "unmet"),
    [
        ((FUNDED,), {"funded": True}, None),
        ((FUNDED,), {"funded": "true"}, None),
        ((FUNDED,), {"funded": False}, FUNDED),
        ((FUNDED,), {"funded": "yes"}, FUNDED),
        ((FUNDED,), {}, FUNDED),
        ((FUNDED,), None, FUNDED),
        ((VERIFIED,), {"verified": 1}, None),
        ((VERIFIED,), {"verified": "x"}, None),
        ((VERIFIED,), {"verified": False}, VERIFIED),
        ((VERIFIED,), {"verified": None}, VERIFIED),
        ((VERIFIED,), {"verified": ""}, VERIFIED),
        ((VERIFIED,), {"verified": []}, VERIFIED),
        ((VIEWER_ROLE,), {"roles": ["admin", "viewer"]}, None),
        ((VIEWER_ROLE,), {"roles": ["admin"]}, VIEWER_ROLE),
        ((VIEWER_ROLE,), {"roles": "viewer"}, None),
        ((VIEWER_ROLE,), {"roles": "viewers"}, VIEWER_ROLE),
        ((TIER_2,), {"tier": 2}, None),
        ((TIER_2,), {"tier": [1, 2]}, None),
        ((FUNDED, VERIFIED), {"funded": True}, VERIFIED),
        ((FUNDED, VERIFIED), {"verified": True}, FUNDED),
        ((FUNDED, VERIFIED), {"funded": True, "verified": True}, None),
        ((), None, None),
    ],
    ids=[
        "bool-true",
        "string-true",
        "bool-false",
        "other-string",
        "absent",
        "no-claims",
        "present-number",
        "present-string",
        "present-false",
        "present-null",
        "present-empty",
        "present-empty-list",
        "list-contains",
        "list-lacks",
        "string-equals",
        "string-not-substring",
        "number-as-text",
        "number-in-list",
        "second-rule-unmet",
        "first-rule-unmet",
        "both-met",
        "no-rules",
    ],
)
def test_first_unmet_rule(
    rules: tuple[ClaimRule, ...], claims: dict[str, Any] | None, unmet: ClaimRule | None
) -> None:
    assert first_unmet(rules, claims) == unmet


def test_a_rule_refuses_with_a_stable_reason() -> None:
    assert FUNDED.reason == "claim_funded"
