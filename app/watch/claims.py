"""Claim rules (``WATCH_REQUIRE_CLAIMS``): conditions on a viewer's JWT claims.

A rule is ``name`` (the claim must be present and not empty/false/null) or
``name:value`` (the claim must equal ``value``, or, when the claim is a list, contain
it). Values compare as text, with JSON's ``true``/``false`` for booleans:
``funded:true`` holds for ``"funded": true`` and ``"funded": "true"``. Rules are
separated by commas; every rule must hold. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


@dataclass(frozen=True, slots=True)
class ClaimRule:
    name: str
    value: str | None = None  # None: the claim must be present

    @property
    def reason(self) -> str:
        """The stable key a front end translates when this rule refuses a viewer."""
        return f"claim_{self.name}"


class ClaimRuleError(ValueError):
    pass


def parse_claim_rules(text: str) -> tuple[ClaimRule, ...]:
    rules = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition(":")
        name, value = name.strip(), value.strip()
        if not name or not set(name) <= _NAME_CHARS:
            raise ClaimRuleError(f"'{part}': a claim name is letters, digits, '_', '-', '.'")
        if sep and not value:
            raise ClaimRuleError(f"'{part}': a value is needed after ':'")
        rules.append(ClaimRule(name, value if sep else None))
    return tuple(rules)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _holds(rule: ClaimRule, claims: Mapping[str, Any]) -> bool:
    if rule.name not in claims:
        return False
    value = claims[rule.name]
    if rule.value is None:
        return value not in (None, False, "", [], {})
    if isinstance(value, list):
        return any(_text(item) == rule.value for item in value)
    return _text(value) == rule.value


def first_unmet(rules: Sequence[ClaimRule], claims: Mapping[str, Any] | None) -> ClaimRule | None:
    """The first rule the claims do not satisfy (every rule fails without claims), or
    None when all hold."""
    for rule in rules:
        if claims is None or not _holds(rule, claims):
            return rule
    return None
